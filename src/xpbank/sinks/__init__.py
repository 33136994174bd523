"""The write-back sinks (SPEC §3.7): `xpbank sink oneroster` and `xpbank sink caliper`,
consumers of `xp.facts.v1` that write to the platform's gradebook and analytics. Pure
mapping in `templates`, `gradebook`, `analytics` and `retry`; the HTTP edge in `http`
and `auth`; the Kafka edge in `consumer`, `sent` and `dead_letters`."""
