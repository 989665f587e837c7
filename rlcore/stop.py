"""Stop requests by signal: the first SIGINT or SIGTERM asks a training to stop after its current update (the
launcher then writes a checkpoint and the summary); a second one ends the process at once.

A terminal's Ctrl-C reaches every process of the foreground group, and a parent (a sweep, torchrun) may pass the
stop on with a SIGTERM of its own: signals within ``RELAY_S`` seconds of the first count as that same request.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)
RELAY_S = 1.0
"""Signals this soon after the first one are the same stop request, relayed."""


def exit_code(signum: int) -> int:
    """The shell's exit code for a process ended by ``signum`` (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + int(signum)


class StopSignals:
    """While entered (in the main thread), SIGINT and SIGTERM set ``signum`` instead of interrupting.

    The training loop polls ``requested`` after each update. A second signal, ``RELAY_S`` seconds or more after
    the first, restores the default action and re-sends itself, so the process ends at once (work since the last
    checkpoint is lost). Outside the main thread, where Python cannot install handlers, nothing changes.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._first_at = 0.0
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for s in SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if self.signum is None:
            self.signum, self._first_at = signum, now
            # os.write, not print: a handler may run in the middle of another write to the same stream
            os.write(2, f"\n{signal.Signals(signum).name}: stopping after the current update (checkpoint and "
                        "summary follow); signal again to quit at once\n".encode())
        elif now - self._first_at >= RELAY_S:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
