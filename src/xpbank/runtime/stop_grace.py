"""A stop is bounded: with the broker away, a worker's last commit and flush wait for
it (Faust for its 20-minute request timeouts, librdkafka's flush for ever). A stop
asked for and not done within STOP_GRACE_SECONDS exits the process anyway, as kill -9
would: everything since the last durable checkpoint is read again by the partitions'
next owner (at least once). Before it exits it writes every thread's stack to stderr,
so that the log says where the stop was stuck.

Python runs a signal handler only when the main thread runs Python code; the Quix
engine's main thread can sit in librdkafka's `flush()` for as long as the broker is
away, so its grace is started from the signal wakeup fd, which the interpreter's C-level
handler writes at once, by a thread of its own (`start_grace_on_stop_signals`)."""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
import socket
import threading

log = logging.getLogger("xpbank")
STOP_GRACE_SECONDS = 20.0  # within Kubernetes' terminationGracePeriodSeconds (30 s in deploy/k8s)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
STDERR_FD = 2
_started = threading.Lock()  # held once a grace runs: one per process
_wakeup_sockets: list[socket.socket] = []


def exit_if_not_stopped_within(seconds: float = STOP_GRACE_SECONDS) -> None:
    """A stop was asked for: should the process still run `seconds` from now, it exits
    (status 143, as after SIGTERM). Later calls do nothing: the first stop's grace holds."""
    if not _started.acquire(blocking=False):
        return

    def give_up() -> None:
        try:
            log.warning("could not stop cleanly within %.0f s (the broker does not answer?): exiting now; records "
                        "since the last checkpoint are read again; the threads' stacks follow", seconds)
            logging.shutdown()
            # C-level, so also the main thread's stack while it sits in a C call; to the
            # process's own stderr (fd 2): Faust's worker replaces sys.stderr by a logger
            # without a file descriptor
            faulthandler.dump_traceback(file=STDERR_FD, all_threads=True)
        finally:
            os._exit(143)  # whatever the above did

    timer = threading.Timer(seconds, give_up)
    timer.daemon = True
    timer.start()


def start_grace_on_stop_signals(seconds: float = STOP_GRACE_SECONDS) -> None:
    """From the main thread, before the engine runs: the first SIGTERM or SIGINT starts
    the grace, whatever the main thread is blocked in. The engine's own handlers still
    run (and stop it cleanly when they can); they only must be Python handlers, not
    SIG_DFL or SIG_IGN, for the wakeup fd to be written."""
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)

    _wakeup_sockets.extend((reader, writer))  # open for the process's life: the fd is written to

    def watch() -> None:
        while True:
            number = reader.recv(1)
            if number and number[0] in STOP_SIGNALS:
                exit_if_not_stopped_within(seconds)
                return

    threading.Thread(target=watch, name="xpbank-stop-grace", daemon=True).start()
