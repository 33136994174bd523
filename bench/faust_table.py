"""The naive Faust peer: a Faust app whose one agent decodes each record and keeps the
seconds per learner and resource in a changelog-backed table, one table write per
record. What a straightforward Faust program pays per record, for comparison with the
xpbank worker. Run as `python -m bench.faust_table` with BENCH_PEER_TOPIC, BENCH_PEER_APP,
XPBANK_BROKER and XPBANK_DATA_DIR; commits like the worker (every 1000 records or 1 s)."""

from __future__ import annotations

import os

import faust
import orjson
from faust.worker import Worker


def main() -> None:
    app = faust.App(
        os.environ["BENCH_PEER_APP"], broker=os.environ.get("XPBANK_BROKER", "kafka://127.0.0.1:9092"),
        store="rocksdb://", datadir=os.environ["XPBANK_DATA_DIR"], web_enabled=False,
        consumer_auto_offset_reset="earliest", broker_commit_every=1000, broker_commit_interval=1.0,
        topic_replication_factor=1, topic_partitions=int(os.environ.get("XPBANK_PARTITIONS", "4")),
        producer_linger_ms=10,
    )
    topic = app.topic(os.environ["BENCH_PEER_TOPIC"], key_type=bytes, value_type=bytes,
                      key_serializer="raw", value_serializer="raw")
    seconds = app.Table("seconds", default=int, partitions=int(os.environ.get("XPBANK_PARTITIONS", "4")))

    @app.agent(topic, name="bench.faust_table", concurrency=1)
    async def sums(stream):
        async for event in stream.events():
            doc = orjson.loads(event.message.value)
            for item in doc.get("data", [doc]):  # a Caliper envelope or one event
                key = f"{event.message.key.decode()}:{item['object']['activity']['id']}"
                seconds[key] += item["generated"]["items"][0]["value"]

    worker = Worker(app, loglevel="INFO", quiet=True)  # "Worker ready" marks the start
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
