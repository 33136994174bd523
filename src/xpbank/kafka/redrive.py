"""Dead letters read back, filtered and re-driven (`xpbank dead-letters`), for any
dead-letter topic: a `Source` says how to read one of its records as a `Letter` and
where a re-drive sends it (`input_letters.py` for `xp.dead-letters.v1`).

A re-drive republishes the original record (its key, payload and timestamp) with the
header `xpbank-redriven-from: <dead-letter topic>/<partition>/<offset>`. Each original
is re-driven at most once: a compacted topic, `<prefix>xpbank-redriven`, keyed by the
original's position, records every re-drive, written in the same Kafka transaction as
the republished record. The producer's transactional id is fixed, so a second `redrive`
running at once fences the first, whose transaction is then aborted (decisions.md 11)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import orjson
from aiokafka import AIOKafkaProducer

from xpbank.config import ConfigError, Settings
from xpbank.contract.times import format_time, parse_time
from xpbank.contract.topics import base_name
from xpbank.kafka.admin import Admin
from xpbank.kafka.clients import read_topic
from xpbank.kafka.connection import aiokafka_options

HEADER = "xpbank-redriven-from"
MARKERS = "xpbank-redriven"  # after XPBANK_TOPIC_PREFIX
MARKER_CONFIGS = (("cleanup.policy", "compact"),)
PER_TRANSACTION = 500


@dataclass(frozen=True)
class Letter:
    """A dead letter as the commands see it, whatever its topic."""

    topic: str  # the dead-letter topic (as on the broker) and the letter's place in it
    partition: int
    offset: int
    reason: str
    detail: str
    original: str  # the original record's topic (as on the broker), partition and offset
    original_partition: int | None
    original_offset: int | None
    key: bytes | None
    value: bytes | None  # the original payload, decoded
    timestamp_ms: int | None  # the original record's timestamp
    users: tuple[str, ...] = ()
    document: dict = field(default_factory=dict, compare=False)  # the dead letter as published

    @property
    def id(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def origin(self) -> str:
        """The original's position: what is re-driven at most once."""
        if self.original_partition is None or self.original_offset is None:
            return self.id
        return f"{self.original}/{self.original_partition}/{self.original_offset}"


class Source(Protocol):
    topic: str  # the dead-letter topic's registry name

    def letter(self, message, prefix: str) -> Letter | None:
        """A record of the dead-letter topic as a Letter (None: not one to handle)."""

    def target(self, letter: Letter, prefix: str) -> tuple[str | None, str]:
        """(topic to republish to, "") or (None, why this letter cannot be re-driven)."""


@dataclass(frozen=True)
class Filters:
    reasons: frozenset[str] = frozenset()
    topics: frozenset[str] = frozenset()  # registry names of the original topics
    since_ms: int | None = None
    users: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return not (self.reasons or self.topics or self.users) and self.since_ms is None


def matches(letter: Letter, filters: Filters, prefix: str) -> bool:
    if filters.reasons and letter.reason not in filters.reasons:
        return False
    if filters.topics and base_name(letter.original, prefix) not in filters.topics:
        return False
    if filters.since_ms is not None and (letter.timestamp_ms is None or letter.timestamp_ms < filters.since_ms):
        return False
    return not filters.users or bool(filters.users & set(letter.users))


DURATION = re.compile(r"(\d+)([smhd])")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str, now: datetime) -> int:
    """`--since`: an ISO-8601 time with a zone, or a duration back from now (`90s`,
    `30m`, `6h`, `7d`); milliseconds since the epoch."""
    found = DURATION.fullmatch(text.strip())
    try:
        moment = now - timedelta(**{UNITS[found[2]]: int(found[1])}) if found else parse_time(text.strip())
    except ValueError as exc:
        raise ConfigError(f"--since {text!r}: an ISO-8601 time with a zone, or 90s, 30m, 6h, 7d ({exc})") from None
    return int(moment.timestamp() * 1000)


def users_of(payload: bytes | None) -> tuple[str, ...]:
    """The learners a payload names (for `--user`): `userSourcedId`, and the last segment
    of each Caliper event's `actor.id`; none for a payload that is not JSON."""
    try:
        doc = orjson.loads(payload) if payload else None
    except orjson.JSONDecodeError:
        return ()
    events = doc.get("data") if isinstance(doc, dict) and isinstance(doc.get("data"), list) else [doc]
    found: list[str] = []
    for event in events:
        if not isinstance(event, dict):
            continue
        actor = event.get("actor")
        ref = actor.get("id") if isinstance(actor, dict) else actor
        for user in (event.get("userSourcedId"), ref.rstrip("/").rsplit("/", 1)[-1] if isinstance(ref, str) else None):
            if isinstance(user, str) and user and user not in found:
                found.append(user)
    return tuple(found)


@dataclass
class Plan:
    """What a re-drive does: letters to send (to their target), and those left out."""

    send: list[tuple[Letter, str]] = field(default_factory=list)
    done_before: list[Letter] = field(default_factory=list)  # their original was re-driven already
    refused: list[tuple[Letter, str]] = field(default_factory=list)


def plan(letters: Iterable[Letter], sources: dict[str, Source], redriven: dict[str, dict], prefix: str) -> Plan:
    """Each original once: not again if a marker names it, and once for all the letters
    naming it (an envelope's several events, a letter published again after a crash)."""
    result, chosen = Plan(), set()
    for letter in letters:
        if letter.origin in redriven or letter.origin in chosen:
            result.done_before.append(letter)
            continue
        target, why = sources[base_name(letter.topic, prefix)].target(letter, prefix)
        if target is None:
            result.refused.append((letter, why))
            continue
        chosen.add(letter.origin)
        result.send.append((letter, target))
    return result


async def read_letters(settings: Settings, sources: Iterable[Source], filters: Filters) -> AsyncIterator[Letter]:
    """The letters of every source's topic that pass the filters, in topic order."""
    prefix = settings.topic_prefix
    present = {t for t, _ in await Admin(settings).partitions(prefix + s.topic for s in sources)}
    for source in sources:
        if prefix + source.topic not in present:
            continue
        async for message in read_topic(settings, prefix + source.topic):
            letter = source.letter(message, prefix)
            if letter is not None and matches(letter, filters, prefix):
                yield letter


async def read_markers(settings: Settings) -> dict[str, dict]:
    """Originals re-driven so far: position -> the marker (committed transactions only)."""
    name = settings.topic_prefix + MARKERS
    if not await Admin(settings).partitions([name]):
        return {}
    markers: dict[str, dict] = {}
    async for message in read_topic(settings, name):
        if message.key is not None and message.value is not None:
            markers[message.key.decode()] = orjson.loads(message.value)
    return markers


async def ensure_markers_topic(settings: Settings) -> None:
    from xpbank.contract.topics import TopicSetup

    admin = Admin(settings)
    setup = TopicSetup(settings.topic_prefix + MARKERS, 1, settings.replication_factor, MARKER_CONFIGS, "internal")
    await admin.create([setup])
    await admin.until_visible([setup])


async def redrive(settings: Settings, letters: list[Letter], sources: dict[str, Source], dry_run: bool) -> Plan:
    """Plan against the markers, then (unless `dry_run`) republish and mark in transactions."""
    producer = None
    if not dry_run:
        await ensure_markers_topic(settings)
        producer = AIOKafkaProducer(**aiokafka_options(settings), transactional_id=f"{settings.topic_prefix}xpbank-redrive",
                                    enable_idempotence=True, acks="all")
        await producer.start()  # fences a redrive still running elsewhere before the markers are read
    try:
        planned = plan(letters, sources, await read_markers(settings), settings.topic_prefix)
        if producer is not None:
            for start in range(0, len(planned.send), PER_TRANSACTION):
                async with producer.transaction():
                    for letter, target in planned.send[start:start + PER_TRANSACTION]:
                        await _send(producer, settings, letter, target)
        return planned
    finally:
        if producer is not None:
            await producer.stop()


async def _send(producer: AIOKafkaProducer, settings: Settings, letter: Letter, target: str) -> None:
    sent = await (await producer.send(target, value=letter.value, key=letter.key, timestamp_ms=letter.timestamp_ms,
                                      headers=[(HEADER, letter.id.encode())]))
    marker = {"deadLetter": letter.id, "reason": letter.reason, "topic": target, "partition": sent.partition,
              "offset": sent.offset, "at": format_time(datetime.now(UTC))}
    await producer.send(settings.topic_prefix + MARKERS, key=letter.origin.encode(), value=orjson.dumps(marker))
