"""Guard: the records tests send to a broker are dated relative to now, younger than the
retention the project's broker applies by default (deploy/kafka/kafka.sh: short on
purpose). A fixed date would pass today and fail once the calendar moves past it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.builders import at, course, heartbeat, resource
from tests.e2e.test_parity_and_replay import classroom_log
from xpbank.contract.times import parse_time

ROOT = Path(__file__).resolve().parents[2]
FIXED_DATE = re.compile(r"datetime\(20\d\d, |[\"']20\d\d-\d\d-\d\dT")


def broker_retention() -> timedelta:
    script = (ROOT / "deploy/kafka/kafka.sh").read_text()
    return timedelta(milliseconds=int(re.search(r"XPBANK_KAFKA_RETENTION_MS:-(\d+)", script).group(1)))


def test_builders_date_records_within_the_brokers_retention():
    oldest = datetime.now(UTC) - broker_retention()
    lines = [course("c1", [[resource("v1", 1, "Video", 5)]]), heartbeat("u1", "v1", 30, 0)]
    assert all(parse_time(line["timestamp"]) > oldest for line in lines)
    assert parse_time(at(0)) > oldest and parse_time(at(-60)) > oldest


def test_the_classroom_dates_records_within_the_brokers_retention_by_default():
    now = datetime.now(UTC)
    stamps = [parse_time(line["timestamp"]) for line in classroom_log(learners=16, seed=3) if "timestamp" in line]
    assert stamps and min(stamps) > now - broker_retention()
    assert max(stamps) < now + timedelta(hours=1)


def test_nothing_that_reaches_a_broker_stamps_a_fixed_calendar_date():
    sources = [*ROOT.glob("tests/e2e/*.py"), *ROOT.glob("tests/integration/*.py"), *ROOT.glob("tests/*.py"),
               *ROOT.glob("bench/*.py"), *ROOT.glob("examples/*.sh"), *ROOT.glob("src/xpbank/**/classroom.py"),
               *ROOT.glob("src/xpbank/**/demo.py")]
    offenders = [f"{path.relative_to(ROOT)}:{n}" for path in sources
                 for n, text in enumerate(path.read_text().splitlines(), 1) if FIXED_DATE.search(text)]
    assert offenders == []
