"""The Caliper sink's batch logic with an in-memory server and store (the real ones are
in tests/e2e/test_sinks*.py): events written ahead, a crash at either side of the POST
resends the same bytes, refusals are dead-lettered one by one and their xp carried by
the fact's next change, and the store keeps one record per fact."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

import orjson

from xpbank.contract.outputs import XpFact
from xpbank.sinks.caliper import CaliperSink
from xpbank.sinks.http import Reply
from xpbank.sinks.metrics import SinkMetrics
from xpbank.sinks.sent import fold, held_of
from xpbank.sinks.settings import CaliperSettings

SETTINGS = CaliperSettings.from_env({"XPBANK_CALIPER_SINK_URL": "https://caliper.example.org/caliper/event",
                                     "XPBANK_CALIPER_SINK_TOKEN": "t", "XPBANK_CALIPER_BATCH_SIZE": "3",
                                     "XPBANK_CALIPER_ACTOR_ID": "https://r.example.org/users/{user}"})


@dataclass
class Record:
    value: bytes | None
    key: bytes
    offset: int
    headers: tuple = ()  # as aiokafka's ConsumerRecord


class Crash(Exception):
    """The process dies here."""


class Server:
    def __init__(self, refused: set[str] = frozenset(), crash_after: int | None = None) -> None:
        self.events: dict[str, dict] = {}
        self.posts, self.refused, self.crash_after = [], refused, crash_after

    async def deliver(self, method: str, url: str, body: bytes | None = None) -> Reply:
        envelope = orjson.loads(body)
        self.posts.append(len(envelope["data"]))
        if any(e["actor"]["id"].rsplit("/", 1)[-1] in self.refused for e in envelope["data"]):
            return Reply(400, '{"status": "error", "message": "refused"}')
        for event in envelope["data"]:
            self.events.setdefault(event["id"], event)  # a Caliper consumer dedupes by id
        if self.crash_after is not None and len(self.posts) >= self.crash_after:
            raise Crash("killed after the server acknowledged, before the sink heard it")
        return Reply(200, '{"status": "success", "message": "ok"}')

    def xp(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for event in self.events.values():
            user = event["actor"]["id"].rsplit("/", 1)[-1]
            total[user] = total.get(user, 0) + event["generated"]["items"][0]["value"]
        return total


class Store:
    def __init__(self, crash_on_write: int | None = None) -> None:
        self.records: list[tuple[int, bytes, bytes | None]] = []
        self.writes, self.crash_on_write = 0, crash_on_write

    async def write(self, records) -> None:
        self.writes += 1
        if self.crash_on_write == self.writes:
            raise Crash("killed before the store heard it")
        self.records.extend(records)

    async def restore(self, partitions: list[int]) -> dict:
        live = {p: {} for p in partitions}
        for partition, key, value in self.records:
            if partition in live:
                fold(live[partition], key, value)
        return {p: {f: held_of(found) for f, found in facts.items() if found} for p, facts in live.items()}

    def live_keys(self) -> set[bytes]:
        latest = {}
        for _, key, value in self.records:
            latest[key] = value
        return {key for key, value in latest.items() if value is not None}


class DeadLetters:
    def __init__(self) -> None:
        self.letters, self.unreadable_records = [], []

    async def refused(self, fact, where, method, url, body, status, answer) -> None:
        self.letters.append((fact, status, len(orjson.loads(body)["data"])))

    async def unreadable(self, where, key, detail) -> None:
        self.unreadable_records.append((where, key))


def fact(user: str, resource: str, xp: int, revision: int = 1, generation: int = 1) -> XpFact:
    return XpFact(factId=f"bank:{user}:{resource}", kind="banked", generation=generation, revision=revision,
                  userSourcedId=user, email=None, date=date(2026, 11, 21), courseSourcedId="c1", subject="Math",
                  resourceSourcedId=resource, exerciseSourcedId="ex1", attempt=1, xp=xp,
                  eventTime=datetime(2026, 11, 21, 10, tzinfo=timezone.utc), sources=("urn:uuid:x",))


def records(*facts: XpFact, start: int = 0) -> list[Record]:
    return [Record(f.model_dump_json().encode(), f.factId.encode(), start + n) for n, f in enumerate(facts)]


async def sink(server: Server, store: Store, letters: DeadLetters | None = None) -> CaliperSink:
    made = CaliperSink(SETTINGS, server, letters or DeadLetters(), store, store.restore, SinkMetrics("caliper"))
    await made.assigned([0])
    return made


async def test_revisions_send_their_changes_and_the_store_keeps_one_record_per_fact():
    server, store = Server(), Store()
    first = await sink(server, store)
    await first.handle({0: records(fact("u1", "v1", 3), fact("u1", "v1", 5, revision=2), fact("u2", "v1", 0),
                                   fact("u1", "v1", 5, revision=2))})  # a redelivery
    assert server.xp() == {"u1": 5} and len(server.events) == 2  # 3, then 2; u2's 0 sends nothing
    assert sorted(v["value"] for e in server.events.values() for v in e["generated"]["items"]) == [2, 3]
    assert len(store.live_keys()) == 2  # u1's latest revision and u2's, the older one deleted
    assert first.metrics.skipped == {"no change": 1, "not newer": 1}
    again = await sink(server, store)  # a new owner, from the store
    await again.handle({0: records(fact("u1", "v1", 5, revision=2), fact("u1", "v1", 5, generation=2))})
    assert len(server.events) == 2 and not again.pending  # nothing changed: nothing sent


async def test_a_refused_envelope_is_sent_event_by_event_and_the_refused_xp_travels_with_the_next_change():
    server, store, letters = Server(refused={"u2"}), Store(), DeadLetters()
    first = await sink(server, store, letters)
    await first.handle({0: records(fact("u1", "v1", 3), fact("u2", "v1", 4), fact("u3", "v1", 1))})
    assert server.posts == [3, 1, 1, 1] and server.xp() == {"u1": 3, "u3": 1}
    assert letters.letters == [(("bank:u2:v1", 1, 1), 400, 1)]
    server.refused = set()
    await first.handle({0: records(fact("u2", "v1", 6, revision=2), start=3)})
    assert server.xp() == {"u1": 3, "u2": 6, "u3": 1}  # the refused 4 came with the next change


async def test_killed_before_the_post_or_after_it_the_same_event_is_sent_again():
    for server, store in ((Server(crash_after=1), Store()), (Server(), Store(crash_on_write=2))):
        batch = {0: records(fact("u1", "v1", 3), fact("u1", "v1", 7, revision=2), fact("u2", "v2", 2))}
        dying = await sink(server, store)
        try:
            await dying.handle(batch)
        except* Crash:
            pass
        server.crash_after = store.crash_on_write = None  # the next process lives
        sent_before = dict(server.events)
        restarted = await sink(server, store)  # the store says what was written ahead
        assert restarted.pending
        await restarted.handle({})  # sent again first, byte for byte
        assert {k: v for k, v in server.events.items() if k in sent_before} == sent_before
        await restarted.handle(batch)  # the uncommitted batch read again: already decided, skipped
        assert server.xp() == {"u1": 7, "u2": 2} and not restarted.pending
        assert len(store.live_keys()) == 2


async def test_an_unreadable_record_is_dead_lettered_and_a_tombstone_ignored():
    server, store, letters = Server(), Store(), DeadLetters()
    made = await sink(server, store, letters)
    await made.handle({0: [Record(b"{not json", b"k", 0), Record(None, b"bank:u1:v1", 1),
                           *records(fact("u1", "v1", 2), start=2)]})
    assert letters.unreadable_records == [((0, 0), b"k")] and server.xp() == {"u1": 2}
