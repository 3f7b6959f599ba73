"""A scoring deadline for ``run()`` executed on the worker's main thread, enforced with SIGALRM.

As in azmlinfsrv, the alarm raises inside ``run()`` when the time is up; it interrupts Python
code and blocking calls such as ``time.sleep``, and code inside a long C call as soon as that
call returns. ``RunTimedOut`` derives from ``BaseException`` so that a script's
``except Exception`` does not swallow it.
"""

from __future__ import annotations

import signal
from types import FrameType


class RunTimedOut(BaseException):
    """run() did not finish before SCORING_TIMEOUT_MS."""


class Deadline:
    """Arm around one ``run()`` call: ``with deadline: run(...)``. Main thread only."""

    def __init__(self, timeout_ms: int):
        self.seconds = timeout_ms / 1000.0
        self.armed = False
        signal.signal(signal.SIGALRM, self._expired)

    def __enter__(self) -> Deadline:
        self.armed = True
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc_info: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        self.armed = False

    def _expired(self, _signum: int, _frame: FrameType | None) -> None:
        if self.armed:
            self.armed = False
            raise RunTimedOut
