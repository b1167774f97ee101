"""Stopping on Ctrl-C (SIGINT) and SIGTERM without leaving anything half-written.

Every srkit command runs under `stop_on_signals`: SIGINT and SIGTERM (what `kill`, systemd, Slurm
and Docker send) raise `Stopped` in the main thread. It unwinds like KeyboardInterrupt (it is a
BaseException, so no `except Exception` swallows it): the atomic writer removes its temp file,
joblib stops its worker processes, folder locks are released, and the tool prints one line and
exits with 128 + the signal number (130 after Ctrl-C, 143 after SIGTERM).

`sr-train fit` wants more than a prompt stop: the state of the step in progress. Inside
`deferred_stop()` the first SIGINT or SIGTERM only records the request; the training loop
finishes its step, writes a state and stops. A second Ctrl-C stops at once (the previous state
is kept); further SIGTERMs are ignored, since process managers repeat theirs (Paddle's launcher
sends three in 0.6 s) and the stop is already under way.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(BaseException):
    """A SIGINT or SIGTERM stopped the command; `exit_code` is 128 + the signal number."""

    def __init__(self, signum: int, *args):
        self.signum = signum
        super().__init__(signum, *args)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name


def _raise_stopped(signum, frame) -> None:
    raise Stopped(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise Stopped while inside (main thread only; elsewhere nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise_stopped) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class StopRequest:
    """What `deferred_stop` recorded: the number of the first SIGINT/SIGTERM, or None."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def handle(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum
        elif signum == signal.SIGINT:  # Ctrl-C again: the user wants out now
            raise Stopped(signum)


@contextmanager
def deferred_stop() -> Iterator[StopRequest]:
    """While inside, SIGINT and SIGTERM set `request.signum` instead of raising (see the module
    docstring); the caller checks it at its safe points. Outside the main thread signals cannot be
    handled, so the request simply never comes."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {sig: signal.signal(sig, request.handle) for sig in SIGNALS}
    for sig in SIGNALS:
        # Restart system calls the signal interrupts instead of failing them with EINTR: the handler
        # only records the request, and C++ code waiting on a socket (Paddle's store and collectives
        # between data-parallel processes) treats EINTR as a broken connection.
        signal.siginterrupt(sig, False)
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
