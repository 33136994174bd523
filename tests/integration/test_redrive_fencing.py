"""Two re-drives at once (decisions.md 11): a redrive fences any other still running, whose
open transaction, republished record and marker included, is then aborted; the original
goes out once."""

from __future__ import annotations

import asyncio

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from tests.builders import submission
from tests.conftest import xpbank
from xpbank.kafka.clients import read_topic
from xpbank.kafka.connection import aiokafka_options
from xpbank.kafka.redrive import HEADER, MARKERS, ensure_markers_topic


def test_a_redrive_fences_one_still_running_and_the_original_goes_out_once(env, settings):
    assert xpbank(env, "topics", "create").returncode == 0
    prefix = settings.topic_prefix
    finalize = submission("AttemptFinalized", "u1", "ex1", 100)
    letter = {"id": "urn:uuid:00000000-0000-5000-8000-000000000001", "type": "DeadLetter", "generation": 1,
              "reason": "unknown_course", "detail": "course c1 is not in the curriculum",
              "topic": prefix + "learning.submissions.v1", "partition": 0, "offset": 7, "key": "u1",
              "timestamp": finalize["timestamp"], "eventId": finalize["value"]["id"],
              "payload": orjson.dumps(finalize["value"]).decode(), "payloadEncoding": "utf-8"}

    async def scenario() -> tuple[str, bool, list, list]:
        options = aiokafka_options(settings)
        plain = AIOKafkaProducer(**options)
        await plain.start()
        placed = await plain.send_and_wait(prefix + "xp.dead-letters.v1", orjson.dumps(letter), key=b"u1")
        await plain.stop()
        await ensure_markers_topic(settings)
        # another redrive, started earlier and still in its transaction
        other = AIOKafkaProducer(**options, transactional_id=f"{prefix}xpbank-redrive", enable_idempotence=True)
        await other.start()
        await other.begin_transaction()
        await other.send_and_wait(prefix + "learning.submissions.v1", b'{"from": "the other"}', key=b"u1",
                                  headers=[(HEADER, b"other")])
        await other.send_and_wait(prefix + MARKERS, b'{"deadLetter": "other"}', key=b"%s" % letter["topic"].encode() + b"/0/7")
        result = await asyncio.to_thread(xpbank, env, "dead-letters", "redrive", "--reason", "unknown_course")
        assert result.returncode == 0 and b"1 re-driven, 0 re-driven before" in result.stderr, result.stderr.decode()
        try:
            await other.commit_transaction()
            fenced = False
        except KafkaError:
            fenced = True
        finally:
            await other.stop()
        sent = [m async for m in read_topic(settings, prefix + "learning.submissions.v1")]
        markers = [m async for m in read_topic(settings, prefix + MARKERS)]
        return f"{prefix}xp.dead-letters.v1/{placed.partition}/{placed.offset}", fenced, sent, markers

    position, fenced, sent, markers = asyncio.run(scenario())
    assert fenced  # the earlier one's commit is refused: its record and marker never count
    assert [(m.key, orjson.loads(m.value)["type"], dict(m.headers)[HEADER]) for m in sent] == [
        (b"u1", "AttemptFinalized", position.encode())]
    assert [orjson.loads(m.value)["deadLetter"] for m in markers] == [position]
    again = xpbank(env, "dead-letters", "redrive", "--reason", "unknown_course")
    assert b"0 re-driven, 1 re-driven before" in again.stderr
