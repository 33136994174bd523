"""Worker subprocesses against the real broker, and what they produced, for e2e tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

import orjson

from tests.conftest import ROOT, xpbank
from tests.oracle import Oracle, run_lines, views
from tests.oracle_compare import differences, limits_of
from xpbank.runtime.topology import app_id, input_topics
from xpbank.config import Settings
from xpbank.kafka.admin import Admin, group_lag
from xpbank.kafka.clients import read_topic
from xpbank.cli.records import read_lines
from xpbank.processing.simulate import Simulator, current_facts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Worker:
    """`xpbank worker` (or replay) as a subprocess with its own data dir and web port."""

    def __init__(self, env: dict[str, str], name: str, tmp: Path, *args: str) -> None:
        self.env = env | {"XPBANK_DATA_DIR": str(tmp / f"data-{name}"), "XPBANK_WEB_PORT": str(free_port()),
                          "XPBANK_INSTANCE_ID": f"{env.get('XPBANK_TOPIC_PREFIX', '')}{name}"}
        self.log_path = tmp / f"{name}.log"
        self.args = args or ("worker", "--loglevel", os.environ.get("XPBANK_TEST_LOGLEVEL", "INFO"))
        self.process: subprocess.Popen | None = None

    def start(self) -> Worker:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([str(ROOT / ".venv/bin/xpbank"), *self.args], env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def freeze(self) -> None:
        """SIGSTOP: the worker takes no record, commits nothing, until `stop` or `thaw`."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self, timeout: float = 30) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            self.thaw()  # a frozen worker handles the SIGTERM first thing when it runs again
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class ProjectorProcess(Worker):
    """`xpbank projector` on its own, its /healthz and /metrics on XPBANK_PROJECTOR_PORT
    (the harness's `get` and `metrics` read them from XPBANK_WEB_PORT: the same port)."""

    def __init__(self, env: dict[str, str], name: str, tmp: Path) -> None:
        super().__init__(env, name, tmp, "projector")
        self.env["XPBANK_PROJECTOR_PORT"] = self.env["XPBANK_WEB_PORT"]


def health(process: Worker) -> tuple[int, dict] | None:
    """A process's /healthz (status, body), or None while nothing answers."""
    try:
        status, body = get(process, "/healthz", token=None)
    except OSError:
        return None
    return status, orjson.loads(body)


def wait_caught_up(settings: Settings, timeout: float = 180, stable: int = 3) -> None:
    """Until the worker group has committed every input record, several checks in a row
    (its own outputs - masteries, re-keyed copies - are inputs too)."""
    wait_group(settings, app_id(settings), input_topics(settings), timeout, stable, interval=1.0)


def wait_group(settings: Settings, group: str, topics: list[str], timeout: float, stable: int, interval: float) -> None:
    """Until consumer group `group` has committed every record of `topics`, `stable` checks in a row."""
    deadline, calm, lag = time.monotonic() + timeout, 0, None
    while time.monotonic() < deadline:
        lag = asyncio.run(group_lag(settings, group, topics))
        if lag and 0 < sum(lag.values()) <= 4 * len(lag) * settings.partitions:
            lag = asyncio.run(records_left(settings, group, topics))
        calm = calm + 1 if lag and sum(lag.values()) == 0 else 0
        if calm >= stable:
            return
        time.sleep(interval)
    raise TimeoutError(f"group {group} still behind after {timeout}s: {lag}")


async def records_left(settings: Settings, group: str, topics: list[str]) -> dict[str, int]:
    """Records a read_committed consumer would still get after the group's commits. Under
    exactly-once a partition written in transactions ends with a commit marker, which the
    group's committed offset (last processed + 1) never passes: its lag stays 1 while no
    record is left."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from xpbank.kafka.connection import aiokafka_options

    admin = Admin(settings)
    partitions = await admin.partitions(topics)
    ends, committed = await admin.offsets(partitions, earliest=False), await admin.committed(group)
    behind = {tp: committed.get(tp, 0) for tp in partitions if committed.get(tp, 0) < ends[tp]}
    left = dict.fromkeys(topics, 0)
    if not behind:
        return left
    consumer = AIOKafkaConsumer(**aiokafka_options(settings), group_id=None, enable_auto_commit=False,
                                isolation_level="read_committed")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(t, p) for t, p in behind])
        for (t, p), offset in behind.items():
            consumer.seek(TopicPartition(t, p), offset)
        batch = await consumer.getmany(timeout_ms=1000)
        for tp, messages in batch.items():
            left[tp.topic] += sum(1 for m in messages if m.offset < ends[(tp.topic, tp.partition)])
        for (t, p) in behind:  # nothing fetched yet from a partition with records: still behind
            position = await consumer.position(TopicPartition(t, p))
            if position < ends[(t, p)] and not batch.get(TopicPartition(t, p)):
                left[t] += ends[(t, p)] - position
    finally:
        await consumer.stop()
    return left


def produce(env: dict[str, str], lines: list[dict]) -> None:
    result = xpbank(env, "produce", "-", input=b"\n".join(orjson.dumps(l) for l in lines))
    assert result.returncode == 0, result.stderr.decode()


def topic_values(settings: Settings, name: str) -> list[dict]:
    async def collect():
        return [orjson.loads(m.value) async for m in read_topic(settings, settings.topic_prefix + name) if m.value]
    return asyncio.run(collect())


def expected(lines: list[dict], settings: Settings) -> tuple[dict, Simulator, list]:
    """The current facts the records must give, from the second oracle (tests/oracle/),
    with `simulate`'s run over the same records, which must agree with the oracle."""
    want, simulator, outputs, _ = expected_with_oracle(lines, settings)
    return want, simulator, outputs


def expected_with_oracle(lines: list[dict], settings: Settings) -> tuple[dict, Simulator, list, Oracle]:
    """`expected`, and the oracle itself. An e2e failure then cannot come from a bug
    `simulate` and the worker share: both are held to a model written apart from them."""
    simulator = Simulator(settings.rules)
    outputs = list(simulator.run(read_lines(orjson.dumps(l) for l in lines)))
    oracle = run_lines(lines, limits_of(settings.rules))
    produced = [(out.topic, out.value.model_dump(mode="json")) for out in outputs]
    disagreements = differences(produced, oracle, letter_times=False)
    assert disagreements == [], f"simulate and the second oracle disagree: {disagreements[:5]}"
    assert {fid: f.model_dump(mode="json") for fid, f in current_facts(outputs).items()} == views.current_facts(oracle)
    return views.current_facts(oracle), simulator, outputs, oracle


def current(facts: list[dict]) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for fact in facts:
        held = latest.get(fact["factId"])
        if held is None or (fact["generation"], fact["revision"]) > (held["generation"], held["revision"]):
            latest[fact["factId"]] = fact
    return latest


def without_revision(facts: dict[str, dict]) -> dict[str, dict]:
    """Revision counts how many times a fact changed, which depends on arrival order."""
    return {fid: {k: v for k, v in f.items() if k != "revision"} for fid, f in facts.items()}


def conflicting_revisions(facts: list[dict]) -> dict:
    """(factId, generation, revision) published with more than one xp: must be empty."""
    seen = defaultdict(set)
    for fact in facts:
        seen[(fact["factId"], fact["generation"], fact["revision"])].add(fact["xp"])
    return {key: xps for key, xps in seen.items() if len(xps) > 1}


def dead_letters(settings: Settings) -> list[tuple]:
    """(reason, eventId, payload start) of every dead letter published, sorted."""
    return sorted((d["reason"], d["eventId"] or "", (d["payload"] or "")[:60])
                  for d in topic_values(settings, "xp.dead-letters.v1"))


def simulated_dead_letters(outputs: list) -> list[tuple]:
    return sorted((o.value.reason, o.value.eventId or "", (o.value.payload or "")[:60])
                  for o in outputs if o.topic == "xp.dead-letters.v1")


def members(settings: Settings) -> list[set[tuple[str, int]]]:
    """The learner-input partitions each member of the worker group holds."""
    return list(members_by_name(settings).values())


def members_by_name(settings: Settings) -> dict[str, set[tuple[str, int]]]:
    """The same, by member (a worker's XPBANK_INSTANCE_ID)."""
    inputs = set(input_topics(settings))
    found = asyncio.run(Admin(settings).members(app_id(settings)))
    return {name: {tp for tp in assigned if tp[0] in inputs} for name, assigned in found.items()}


def ends_of(settings: Settings, partitions) -> int:
    async def ends() -> dict:
        return await Admin(settings).offsets(partitions, earliest=False)
    return sum(asyncio.run(ends()).values())


def lag(settings: Settings) -> int:
    """Input records the worker group has not committed yet."""
    return sum(asyncio.run(group_lag(settings, app_id(settings), input_topics(settings))).values())


def committed(settings: Settings) -> int:
    found = asyncio.run(Admin(settings).committed(app_id(settings)))
    return sum(offset for (topic, _), offset in found.items() if topic in set(input_topics(settings)))


def until_working(settings: Settings, since: int, timeout: float = 60) -> None:
    """Until the group has committed past `since` (it is processing newer records)."""
    deadline = time.monotonic() + timeout
    while committed(settings) <= since:
        assert time.monotonic() < deadline, "the worker group made no progress"
        time.sleep(0.1)


def get(worker: Worker, path: str, token: str | None = "env") -> tuple[int, bytes]:
    """GET from a worker's API, with the first token of its XPBANK_API_TOKENS (`token`
    None: without one)."""
    url = f"http://127.0.0.1:{worker.env['XPBANK_WEB_PORT']}{path}"
    if token == "env":
        token = (worker.env.get("XPBANK_API_TOKENS") or ",").split(",")[0] or None
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def get_or_none(worker: Worker, path: str) -> int | None:
    """The status, or None while the worker's web server is not up."""
    try:
        return get(worker, path)[0]
    except OSError:
        return None


def get_json(worker: Worker, path: str) -> tuple[int, dict]:
    status, body = get(worker, path)
    return status, orjson.loads(body)


def metrics(worker: Worker) -> dict[str, float]:
    """The worker's /metrics samples, by name with labels."""
    status, body = get(worker, "/metrics")
    assert status == 200
    return {name: float(value) for name, value in
            (line.rsplit(" ", 1) for line in body.decode().splitlines() if line and not line.startswith("#"))}


def eventually(check, timeout: float = 90, every: float = 1.0):
    """Call `check` until it stops raising AssertionError (its last error if it never does)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(every)


class Stream:
    """Record lines produced in the background, a batch every `pause` seconds, as a
    classroom streams in while the test does something to the workers."""

    def __init__(self, settings: Settings, lines: list[dict], batch: int = 20, pause: float = 0.05) -> None:
        self.settings, self.lines, self.batch, self.pause = settings, lines, batch, pause
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.error: BaseException | None = None

    async def _run(self) -> None:
        from aiokafka import AIOKafkaProducer

        from xpbank.kafka.connection import aiokafka_options

        producer = AIOKafkaProducer(**aiokafka_options(self.settings), enable_idempotence=True, acks="all")
        await producer.start()
        try:
            records = list(read_lines(orjson.dumps(line) for line in self.lines))
            for start in range(0, len(records), self.batch):
                for r in records[start:start + self.batch]:
                    await producer.send(self.settings.topic_prefix + r.topic, value=r.value, key=r.key,
                                        timestamp_ms=int(r.timestamp.timestamp() * 1000))
                await producer.flush()
                await asyncio.sleep(self.pause)
        except BaseException as exc:  # noqa: BLE001 - reported by join()
            self.error = exc
        finally:
            await producer.stop()

    def start(self) -> Stream:
        self.thread.start()
        return self

    def run(self) -> None:
        """Produce every line now, in this thread."""
        asyncio.run(self._run())
        assert self.error is None, self.error

    def join(self, timeout: float = 120) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive() and self.error is None, self.error


def uncommitted_on(settings: Settings, partitions) -> int:
    """Records of `partitions` the worker group has not committed, now (the end offsets
    and the group's commits read together: the moment is short)."""
    admin = Admin(settings)

    async def positions() -> tuple[dict, dict]:
        return await asyncio.gather(admin.offsets(partitions, earliest=False), admin.committed(app_id(settings)))

    ends, done = asyncio.run(positions())
    return sum(max(0, end - done.get(tp, 0)) for tp, end in ends.items())


def in_flight_after(settings: Settings, burst: list[dict], act, *, measured_after: bool = False) -> int:
    """Produce `burst` (and wait for the broker's acknowledgement), then at once `act` (a
    kill or a stop): returns the records the worker group had not committed at that
    moment. A kill is measured after it (a dead worker commits nothing more: exact); a
    graceful stop commits what it finished, so it is measured just before it. Records
    produced a few milliseconds earlier cannot all have been processed and committed
    yet, so a fault that follows finds work in flight."""
    admin = Admin(settings)
    partitions = asyncio.run(admin.partitions(input_topics(settings)))

    async def positions() -> tuple[dict, dict]:  # both at once: the moment is short
        ends, done = await asyncio.gather(admin.offsets(partitions, earliest=False), admin.committed(app_id(settings)))
        return ends, done

    Stream(settings, burst, batch=len(burst), pause=0).run()
    if measured_after:
        act()
        before, committed_before = asyncio.run(positions())
    else:
        before, committed_before = asyncio.run(positions())
        act()
    return sum(max(0, end - committed_before.get(tp, 0)) for tp, end in before.items())
