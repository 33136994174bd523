"""The Faust floor: a minimal Faust app whose one agent only iterates the stream.
Run as `python -m bench.floor` with BENCH_PEER_TOPIC, BENCH_PEER_APP, XPBANK_BROKER and
XPBANK_DATA_DIR; commits like the xpbank worker (every 1000 records or 1 s)."""

from __future__ import annotations

import os

import faust
from faust.worker import Worker


def main() -> None:
    app = faust.App(
        os.environ["BENCH_PEER_APP"], broker=os.environ.get("XPBANK_BROKER", "kafka://127.0.0.1:9092"),
        store="memory://", datadir=os.environ["XPBANK_DATA_DIR"], web_enabled=False,
        consumer_auto_offset_reset="earliest", broker_commit_every=1000, broker_commit_interval=1.0,
        topic_replication_factor=1, topic_partitions=int(os.environ.get("XPBANK_PARTITIONS", "4")),
    )
    topic = app.topic(os.environ["BENCH_PEER_TOPIC"], key_type=bytes, value_type=bytes,
                      key_serializer="raw", value_serializer="raw")

    @app.agent(topic, name="bench.floor", concurrency=1)
    async def floor(stream):
        async for _event in stream.events():
            pass

    worker = Worker(app, loglevel="INFO", quiet=True)  # "Worker ready" marks the start
    worker.spinner = None
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
