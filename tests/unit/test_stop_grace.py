"""The stop grace starts from the signal itself, not from a Python handler: the Quix
engine's main thread can sit in librdkafka for as long as the broker is away, and its
handlers then never run (CI saw a worker still up 60 s after SIGTERM)."""

import signal
import subprocess
import sys
import time

SCRIPT = """
import io, signal, sys, time; {stderr}
from xpbank.runtime.stop_grace import start_grace_on_stop_signals
start_grace_on_stop_signals({grace})
signal.signal(signal.SIGTERM, lambda *_: None)  # an engine's handler that cannot stop it now
print("ready", flush=True)
deadline = time.monotonic() + {runs}
while time.monotonic() < deadline:  # the main thread never returns to the engine's loop
    pass
print("ran to the end", flush=True)
"""


def run(grace: float, runs: float, signal_after: float | None, stderr: str = "") -> tuple[int, str, float]:
    process = subprocess.Popen([sys.executable, "-c", SCRIPT.format(grace=grace, runs=runs, stderr=stderr)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout.readline().strip() == "ready"
    started = time.monotonic()
    if signal_after is not None:
        time.sleep(signal_after)
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
    output = process.communicate(timeout=60)[0]
    return process.returncode, output, time.monotonic() - started


def test_a_stop_signal_exits_a_process_whose_main_thread_never_stops_after_the_grace():
    status, output, elapsed = run(grace=1.0, runs=30.0, signal_after=0.2)
    assert status == 143, output
    assert "could not stop cleanly within 1 s" in output and "ran to the end" not in output
    assert "line 8 in <module>" in output, output  # the stacks: the main thread's, in its endless loop
    assert 1.0 <= elapsed < 20  # the grace, not the main thread's 30 s


def test_the_grace_exits_and_shows_the_stacks_when_sys_stderr_has_no_file_descriptor():
    """Faust's worker replaces sys.stderr by a logger without fileno(): the stacks go to
    the process's stderr all the same, and the process exits (CI: a Faust worker that
    never did, its grace raising on sys.stderr.fileno())."""
    status, output, elapsed = run(grace=1.0, runs=30.0, signal_after=0.2, stderr="sys.stderr = io.StringIO()")
    assert status == 143, output
    assert "line 8 in <module>" in output, output
    assert 1.0 <= elapsed < 20


def test_without_a_stop_signal_nothing_is_cut_short():
    status, output, _ = run(grace=0.5, runs=1.5, signal_after=None)
    assert status == 0 and "ran to the end" in output and "could not stop" not in output
