"""The Quix Streams peer: a Quix app that decodes each record and keeps the seconds per
learner and resource in Quix's changelog-backed state (RocksDB, one changelog record per
changed key per checkpoint), committing every second. A program that needs none of
xpbank's rules, on the engine xpbank's second runtime uses. Run as `python -m
bench.quix_peer` with BENCH_PEER_TOPIC, BENCH_PEER_APP, XPBANK_BROKER, XPBANK_DATA_DIR;
prints "Worker ready" when assigned, so the benchmark times it like the others."""

from __future__ import annotations

import os
import warnings

warnings.filterwarnings("ignore", message="The httpx module is deprecated")

import orjson  # noqa: E402
from quixstreams import Application  # noqa: E402


def main() -> None:
    broker = os.environ.get("XPBANK_BROKER", "kafka://127.0.0.1:9092").split("://", 1)[-1]
    ready = []

    class Peer(Application):
        def _on_assign(self, consumer, topic_partitions):
            super()._on_assign(consumer, topic_partitions)
            if topic_partitions and not ready:
                ready.append(True)
                print("Worker ready", flush=True)

    app = Peer(broker_address=broker, consumer_group=os.environ["BENCH_PEER_APP"], auto_offset_reset="earliest",
               commit_interval=1.0, state_dir=os.environ["XPBANK_DATA_DIR"], loglevel="WARNING",
               consumer_extra_config={"fetch.wait.max.ms": 50},
               processing_guarantee=os.environ.get("BENCH_PEER_GUARANTEE", "at-least-once"))
    topic = app.topic(os.environ["BENCH_PEER_TOPIC"], key_deserializer="bytes", value_deserializer="bytes")

    def add(value: bytes, state) -> None:
        doc = orjson.loads(value)
        for item in doc.get("data", [doc]):  # a Caliper envelope or one event
            resource = item["object"]["activity"]["id"]
            state.set(resource, state.get(resource, 0) + item["generated"]["items"][0]["value"])

    app.dataframe(topic).update(add, stateful=True)
    app.run()


if __name__ == "__main__":
    main()
