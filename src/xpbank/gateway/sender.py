"""The gateway's one Kafka producer: idempotent, acks=all, batching with a short linger,
keyed records partitioned by aiokafka's default partitioner (murmur2, as the workers
assume). Memory is bounded: a request reserves the bytes of the records it will produce
(keys and values, once its body is read and split) and gives them back once every record
of it is acknowledged or failed; past `XPBANK_GATEWAY_BUFFER_BYTES` requests get 503 with
Retry-After, as they do while the broker is unreachable or slower than
`XPBANK_GATEWAY_ACK_TIMEOUT_SECONDS`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch, KafkaError, OutOfOrderSequenceNumber, ProducerClosed, ProducerFenced, UnknownProducerId,
)

from xpbank.gateway.problems import Refused
from xpbank.gateway.settings import GatewaySettings
from xpbank.kafka.connection import aiokafka_options

log = logging.getLogger("xpbank.gateway")

LINGER_MS = 5  # batches fill for up to 5 ms: more records per produce request under load
MAX_BATCH_BYTES = 256 * 1024
RETRY_AFTER_FULL = "1"
RETRY_AFTER_DOWN = "5"
HEALTH_CACHE_SECONDS = 1.0
# An idempotent producer whose sequence the broker lost (a broker restarted with records
# in flight) fails every later send with these: only a new producer (a new id) goes on.
STUCK = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch, ProducerFenced, ProducerClosed)

Outgoing = tuple[bytes, bytes | None, int]  # key, value, timestamp ms


def _settle(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


class Lease:
    """Bytes one request holds from the buffer, until its records are all settled
    (acknowledged or failed, even after the request was answered)."""

    def __init__(self, sender: Sender, size: int) -> None:
        self.sender, self.size, self.pending = sender, size, 0
        self.closed = False
        self._all_settled: asyncio.Future | None = None

    def track(self, futures: list[asyncio.Future], all_settled: asyncio.Future) -> None:
        """Follow the records' futures; `all_settled` is resolved once none is pending."""
        self._all_settled = all_settled
        for future in futures:
            if not future.done():
                self.pending += 1
                future.add_done_callback(self._settled)
        if not self.pending:
            _settle(all_settled)

    def _settled(self, _future: asyncio.Future) -> None:
        self.pending -= 1
        if not self.pending:
            _settle(self._all_settled)
        self._maybe_release()

    def close(self) -> None:
        self.closed = True
        self._maybe_release()

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _maybe_release(self) -> None:
        if self.closed and self.pending == 0 and self.size:
            self.sender.held -= self.size
            self.size = 0


class Sender:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.producer: AIOKafkaProducer | None = None
        self.held = 0  # bytes of records waiting for the broker's acknowledgement
        self.last_error = "not connected yet"
        self._connecting: asyncio.Task | None = None
        self._health: tuple[float, bool] = (0.0, False)
        self.replaced = 0  # producers replaced after they got stuck

    # ---- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background, retrying: the gateway serves (503) meanwhile."""
        self._connecting = asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        delay = 0.5
        while True:
            producer = AIOKafkaProducer(
                **aiokafka_options(self.settings.base), acks="all", enable_idempotence=True,
                linger_ms=LINGER_MS, max_batch_size=MAX_BATCH_BYTES,
                request_timeout_ms=int(self.settings.ack_timeout_seconds * 1000))
            try:
                await producer.start()
            except Exception as exc:  # noqa: BLE001 - any failure to connect: say so, try again
                await producer.stop()
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("broker unreachable at %s (%s); trying again in %.1f s",
                            self.settings.base.broker, self.last_error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self.producer = producer
            log.info("connected to the broker at %s", self.settings.base.broker)
            return

    async def stop(self) -> None:
        if self._connecting and not self._connecting.done():
            self._connecting.cancel()
            await asyncio.gather(self._connecting, return_exceptions=True)
        if self.producer is not None:
            await self.producer.stop()  # flushes what is still buffered
            self.producer = None

    # ---- sending -----------------------------------------------------------------

    def require(self) -> None:
        """503 while there is no producer (nothing is read meanwhile)."""
        if self.producer is None:
            raise self._unreachable()

    def lease(self, size: int) -> Lease:
        """Reserve `size` bytes (the records about to be sent) or refuse with 503."""
        self.require()
        if self.held + size > self.settings.buffer_bytes:
            raise Refused(503, f"the gateway's buffer for the broker is full ({self.held:,} of "
                               f"{self.settings.buffer_bytes:,} bytes waiting for acknowledgements); try again",
                          headers={"Retry-After": RETRY_AFTER_FULL})
        self.held += size
        return Lease(self, size)

    async def send(self, lease: Lease, topic: str, records: Sequence[Outgoing]) -> None:
        """Send the records and wait until the broker acknowledged every one (acks=all), at
        most XPBANK_GATEWAY_ACK_TIMEOUT_SECONDS (one timer per request: asyncio.timeout and
        asyncio.wait cost 6 % of the single-event throughput)."""
        producer = self.producer
        if producer is None:
            raise self._unreachable()
        full_topic = self.settings.base.topic_prefix + topic
        loop = asyncio.get_running_loop()
        acked = loop.create_future()
        timer = loop.call_later(self.settings.ack_timeout_seconds, _settle, acked)
        try:
            futures = []
            for key, value, timestamp_ms in records:
                # waits only for topic metadata or a full batch, both bounded by the
                # producer's request timeout (= the ack timeout)
                futures.append(await producer.send(full_topic, value=value, key=key, timestamp_ms=timestamp_ms))
            lease.track(futures, acked)
            await acked
        except KafkaError as exc:
            lease.track(futures, acked)  # the records taken so far keep their bytes leased
            self._replace_if_stuck(producer, [exc])
            raise Refused(503, f"the broker did not take the records: {type(exc).__name__}",
                          headers={"Retry-After": RETRY_AFTER_DOWN}) from None
        finally:
            timer.cancel()
        if lease.pending:
            raise self._slow()
        failed = [f.exception() for f in futures if f.exception() is not None]
        if failed:
            self._replace_if_stuck(producer, failed)
            raise Refused(503, f"the broker did not acknowledge {len(failed)} of {len(futures)} records: "
                               f"{type(failed[0]).__name__}", headers={"Retry-After": RETRY_AFTER_DOWN})

    def _replace_if_stuck(self, producer: AIOKafkaProducer, errors: list[BaseException]) -> None:
        """A producer stuck on a lost sequence is replaced (503 meanwhile): a new one has a
        new producer id. Records it took are still settled (failed) by the old one."""
        stuck = next((e for e in errors if isinstance(e, STUCK)), None)
        if stuck is None or self.producer is not producer:
            return
        self.producer, self.last_error = None, f"{type(stuck).__name__}: a new producer is being started"
        self.replaced += 1
        log.warning("the producer is stuck (%s): starting a new one", type(stuck).__name__)
        loop = asyncio.get_running_loop()
        loop.create_task(producer.stop())
        self._connecting = loop.create_task(self._connect())

    def _unreachable(self) -> Refused:
        return Refused(503, f"the broker is unreachable ({self.last_error})", headers={"Retry-After": RETRY_AFTER_DOWN})

    def _slow(self) -> Refused:
        return Refused(503, f"the broker has not acknowledged within {self.settings.ack_timeout_seconds:g} s "
                            "(the records may still arrive: sending them again is safe, ids deduplicate)",
                       headers={"Retry-After": RETRY_AFTER_DOWN})

    # ---- health ------------------------------------------------------------------

    async def reachable(self) -> bool:
        """The broker answers a metadata request (cached for a second)."""
        checked, answer = self._health
        if time.monotonic() - checked < HEALTH_CACHE_SECONDS:
            return answer
        answer = False
        if self.producer is not None:
            try:
                await asyncio.wait_for(self.producer.client.fetch_all_metadata(), 3)
                answer = True
            except (KafkaError, TimeoutError, OSError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
        self._health = (time.monotonic(), answer)
        return answer
