"""Worker subprocesses: `xpbank worker`/`replay` and the Faust floor, each with its own
data dir, web port and instance id; their RSS and log lines."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.argv, self.env, self.log_path = argv, env, log_path
        self.process: subprocess.Popen | None = None
        self.started = 0.0
        self.marks: dict[str, float] = {}  # log line -> monotonic time it was first seen

    @classmethod
    def xpbank(cls, env: dict[str, str], name: str, tmp: Path, *args: str, data: str | None = None) -> Proc:
        env = env | {"XPBANK_DATA_DIR": str(tmp / (data or f"data-{name}")), "XPBANK_WEB_PORT": str(free_port()),
                     "XPBANK_INSTANCE_ID": f"{env['XPBANK_TOPIC_PREFIX']}{name}",
                     "XPBANK_FRAMEWORK_LOGLEVEL": "INFO", "XPBANK_PROJECTOR": "0"}
        return cls([str(ROOT / ".venv/bin/xpbank"), *(args or ("worker",))], env, tmp / f"{name}.log")

    @classmethod
    def peer(cls, env: dict[str, str], module: str, name: str, topic: str, tmp: Path) -> Proc:
        """A peer program of bench/ (`bench.floor`, `bench.faust_table`, `bench.quix_peer`):
        its own consumer group and data dir; it logs "Worker ready" once it is assigned."""
        env = env | {"BENCH_PEER_TOPIC": topic, "BENCH_PEER_APP": f"{env['XPBANK_TOPIC_PREFIX']}{name}",
                     "XPBANK_DATA_DIR": str(tmp / f"data-{name}"), "PYTHONPATH": str(ROOT)}
        return cls([sys.executable, "-m", module], env, tmp / f"{name}.log")

    @property
    def data_dir(self) -> Path:
        return Path(self.env["XPBANK_DATA_DIR"])

    def start(self) -> Proc:
        log = open(self.log_path, "ab")
        self.started = time.monotonic()
        self.process = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True, cwd=ROOT)
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def rss_mb(self) -> float:
        """Resident set of the process (VmRSS), in MiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def mark(self, needle: str) -> float | None:
        """When `needle` was first seen in the log (monotonic), polled by the caller."""
        if needle not in self.marks and needle in self.log():
            self.marks[needle] = time.monotonic()
        return self.marks.get(needle)

    def wait_log(self, needle: str, timeout: float, every: float = 0.05) -> float:
        """Seconds from start until `needle` appears in the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.mark(needle) is not None:
                return self.marks[needle] - self.started
            if not self.alive():
                raise RuntimeError(f"{self.argv} exited: {self.log()[-2000:]}")
            time.sleep(every)
        raise TimeoutError(f"no {needle!r} after {timeout}s in {self.log_path}")

    def wait_exit(self, timeout: float) -> float:
        self.process.wait(timeout)
        return time.monotonic() - self.started

    def stop(self, timeout: float = 60) -> None:
        if self.alive():
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
