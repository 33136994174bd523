"""The pure decision core: `(state, event) -> (new state, outputs)`.

Nothing in this package imports Kafka, Faust, Redis, a clock or uuid4: time comes from
events and every id is a uuid5 of its identity, so the same records always produce the
same decisions in `xpbank simulate` and in the worker."""
