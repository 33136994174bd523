"""The write-back sinks end to end: a test gradebook and analytics store (tests/sink_store.py)
behind two Stoplight Prism proxies built from docs/openapi/ (every request is checked
against the description; an invalid one is answered 422 and never reaches the store),
`xpbank sink` subprocesses, and the outcome the issue asks for: the gradebook equals the
current facts, and the xpEarned per learner equals each learner's XP from `xpbank facts`."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import orjson
import pytest

from tests.conftest import ROOT, xpbank
from tests.e2e.harness import free_port, wait_group
from tests.e2e.test_parity_and_replay import classroom_log
from tests.sink_store import Store, StoreServer
from xpbank.cli.records import read_lines
from xpbank.config import Settings
from xpbank.contract.outputs import XpFact
from xpbank.contract.topics import FACTS, SINK_DEAD_LETTERS, sink_group
from xpbank.kafka.admin import KafkaUnavailable
from xpbank.kafka.clients import read_topic
from xpbank.processing.simulate import Simulator, current_facts as simulated_facts
from xpbank.sinks.gradebook import Naming

CLIENT_ID, CLIENT_SECRET, CALIPER_TOKEN = "xpbank-sink", "s3cret-client", "t-caliper-sink"
NICE = ("{resource}_ali", "nice_{user}_{lineItem}", "nice_{user}_{lineItem}_attempt_{attempt}")
ACTOR = "https://roster.school.example/ims/oneroster/rostering/v1p2/users/{user}"
VIOLATION = re.compile(r"UNPROCESSABLE_ENTITY|VIOLATIONS|Invalid security|Request terminated with error")


def prism() -> None:
    """Install Prism (npm ci, pinned) unless it is there."""
    result = subprocess.run(["bash", str(ROOT / "deploy/prism/prism.sh"), "ensure"], capture_output=True, text=True,
                            timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"deploy/prism/prism.sh ensure failed:\n{result.stdout}\n{result.stderr}")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class Proxy:
    """`prism proxy` for one OpenAPI description in front of the store."""

    def __init__(self, document: str, upstream: str, tmp: Path) -> None:
        self.document, self.upstream, self.port = document, upstream, free_port()
        self.log_path = tmp / f"prism-{Path(document).stem}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Proxy:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(["bash", str(ROOT / "deploy/prism/prism.sh"), "proxy",
                                         str(ROOT / "docs/openapi" / self.document), self.upstream, str(self.port)],
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while not _listening(self.port):
            assert self.process.poll() is None, self.log()[-2000:]
            assert time.monotonic() < deadline, "prism did not start"
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(10)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def violations(self) -> list[str]:
        return [line for line in self.log().splitlines() if VIOLATION.search(line)]


class Contract:
    """The store and its two checking proxies."""

    def __init__(self, tmp: Path) -> None:
        prism()
        self.tmp = tmp
        self.store = Store(tokens={CALIPER_TOKEN}, clients={CLIENT_ID: CLIENT_SECRET}, token_lifetime=4)
        self.server = StoreServer(self.store, free_port()).start()
        self.gradebook = Proxy("oneroster-results.yaml", self.server.url, tmp).start()
        self.analytics = Proxy("caliper-events.yaml", self.server.url, tmp).start()

    def reset(self) -> None:
        with self.store.lock:
            self.store.results.clear()
            self.store.events.clear()
            self.store.issued.clear()
        self.store.faults.__init__()
        self.store.token_lifetime = 4
        self.store.received.clear()
        self.store.duplicates = self.store.arrived = 0

    def violations(self) -> list[str]:
        return self.gradebook.violations() + self.analytics.violations()

    def stop(self) -> None:
        self.gradebook.stop()
        self.analytics.stop()
        self.server.stop()

    def sink_env(self, env: dict[str, str], tmp: Path) -> dict[str, str]:
        """Settings of both sinks against this contract: OneRoster with OAuth2 client
        credentials (4-second tokens, so they are fetched again during a run), with the
        replaced system's names and both kinds; Caliper with a fixed token from a file."""
        token_file = tmp / "caliper-token"
        token_file.write_text(CALIPER_TOKEN + "\n")
        return env | {
            "XPBANK_ONEROSTER_URL": self.gradebook.url, "XPBANK_ONEROSTER_TOKEN_URL": self.server.url + "/oauth2/token",
            "XPBANK_ONEROSTER_CLIENT_ID": CLIENT_ID, "XPBANK_ONEROSTER_CLIENT_SECRET": CLIENT_SECRET,
            "XPBANK_ONEROSTER_KINDS": "banked,exercise", "XPBANK_ONEROSTER_LINE_ITEM_ID": NICE[0],
            "XPBANK_ONEROSTER_RESULT_ID": NICE[1], "XPBANK_ONEROSTER_EXERCISE_RESULT_ID": NICE[2],
            "XPBANK_CALIPER_SINK_URL": self.analytics.url + "/caliper/event",
            "XPBANK_CALIPER_SINK_TOKEN_FILE": str(token_file), "XPBANK_CALIPER_ACTOR_ID": ACTOR,
            "XPBANK_CALIPER_BATCH_SIZE": "25", "XPBANK_SINK_BACKOFF_MAX_SECONDS": "2",
            "XPBANK_METRICS_PUBLIC": "1",
        }


@pytest.fixture(scope="module")
def contract(tmp_path_factory):
    """The contract server (Prism behind a recording proxy) for one test module."""
    contract = Contract(tmp_path_factory.mktemp("contract"))
    yield contract
    contract.stop()


@pytest.fixture
def fresh(contract):
    """The module's contract server with nothing recorded."""
    contract.reset()
    return contract


class SinkProc:
    """`xpbank sink NAME` as a subprocess with its own /healthz and /metrics port."""

    def __init__(self, env: dict[str, str], name: str, tmp: Path, *args: str) -> None:
        self.name, self.port = name, free_port()
        self.env = env | {f"XPBANK_{'ONEROSTER' if name == 'oneroster' else 'CALIPER'}_SINK_PORT": str(self.port)}
        self.log_path = tmp / f"sink-{name}.log"
        self.args = args
        self.process: subprocess.Popen | None = None

    def start(self) -> SinkProc:
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen([str(ROOT / ".venv/bin/xpbank"), "sink", self.name, *self.args], env=self.env,
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait(self, timeout: float = 180) -> int:
        return self.process.wait(timeout)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill9()

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def metrics(self) -> dict[str, float]:
        status, body = self.get("/metrics")
        assert status == 200, body
        return {k: float(v) for k, v in (line.rsplit(" ", 1) for line in body.decode().splitlines()
                                         if line and not line.startswith("#"))}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def run_until_caught_up(env: dict[str, str], tmp: Path, *names: str) -> list[SinkProc]:
    """Both sinks at once with --until-caught-up; each must exit 0."""
    sinks = [SinkProc(env, name, tmp, "--until-caught-up").start() for name in names]
    for sink in sinks:
        assert sink.wait(180) == 0, sink.log()[-3000:]
    return sinks


def wait_sinks_caught_up(settings: Settings, timeout: float = 180, *names: str) -> None:
    """Until each sink's group committed every fact (a broker just started may not answer
    for group offsets yet: asked again until the timeout)."""
    deadline = time.monotonic() + timeout
    for name in names or ("oneroster", "caliper"):
        while True:
            try:
                wait_group(settings, sink_group(settings.topic_prefix, name), [settings.topic_prefix + FACTS],
                           max(deadline - time.monotonic(), 1.0), stable=2, interval=1.0)
                break
            except KafkaUnavailable:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)


def current_facts(env: dict[str, str]) -> dict[str, dict]:
    """The current facts as `xpbank facts` prints them."""
    result = xpbank(env, "facts")
    assert result.returncode == 0, result.stderr.decode()
    return {fact["factId"]: fact for fact in map(orjson.loads, result.stdout.splitlines())}


def xp_per_learner(facts: dict[str, dict]) -> dict[str, int]:
    total: Counter = Counter()
    for fact in facts.values():
        total[fact["userSourcedId"]] += fact["xp"]
    return {user: xp for user, xp in total.items() if xp}


def gradebook_of(facts: dict[str, dict]) -> dict[str, tuple]:
    """The results the gradebook must hold for `facts`: sourcedId -> (learner, line item,
    xp, factId, generation, revision)."""
    naming = Naming.parse(*NICE)
    want = {}
    for doc in facts.values():
        fact = XpFact.model_validate(doc)
        want[naming.result_id(fact)] = (fact.userSourcedId, naming.line_item_id(fact), fact.xp, fact.factId,
                                        fact.generation, fact.revision)
    return want


def gradebook_held(store: Store) -> dict[str, tuple]:
    results, _ = store.snapshot()
    return {sid: (r["student"]["sourcedId"], r["assessmentLineItem"]["sourcedId"], r["metadata"].get("xp"),
                  r["metadata"].get("factId"), r["metadata"].get("generation"), r["metadata"].get("revision"))
            for sid, r in results.items()}


def assert_written_back(env: dict[str, str], contract: Contract, refused_learners: frozenset[str] = frozenset()) -> dict:
    """The gradebook equals the current facts; the xpEarned per learner equals their XP
    (learners whose events the store refuses hold nothing); no request broke the contract."""
    facts = current_facts(env)
    assert facts, "no fact to write back"
    assert gradebook_held(contract.store) == gradebook_of(facts)
    want = {u: xp for u, xp in xp_per_learner(facts).items() if u not in refused_learners}
    assert contract.store.xp_earned_per_learner() == want
    assert contract.violations() == []
    return facts


def sink_dead_letters(settings: Settings) -> list[dict]:
    async def collect():
        return [orjson.loads(m.value) async for m in read_topic(settings, settings.topic_prefix + SINK_DEAD_LETTERS)]
    return asyncio.run(collect())


def facts_of_a_classroom(settings, learners: int, seed: int) -> tuple[list[XpFact], dict[str, XpFact]]:
    """Every fact `simulate` publishes for a classroom, and the current ones."""
    outputs = list(Simulator(settings.rules).run(read_lines(orjson.dumps(line) for line in classroom_log(learners, seed))))
    return [o.value for o in outputs if o.topic == "xp.facts.v1"], simulated_facts(outputs)


def fact_lines(facts: list[XpFact]) -> list[dict]:
    return [{"topic": "xp.facts.v1", "key": f.factId, "value": f.model_dump(mode="json")} for f in facts]
