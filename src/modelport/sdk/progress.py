"""What ``wait_for_deployment(show_output=True)`` prints on stderr while it waits: the service's state and reason, and
the lines its build log gains meanwhile (Azure ML streamed its image build the same way)."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from ..errors import ModelportError

BUILD_LOG_PREFIX = "  build | "  # before each build log line wait_for_deployment prints
BUILD_LOG_LINES = 500  # the build log's last lines read each time
BUILD_LOG_PERIOD_S = 1.0  # how often the build log is read while a deployment is in progress
BUILD_NEWS_S = 30.0  # a build that began this long before wait_for_deployment is the deployment's own
_BUILD_HEADER = re.compile(r"^===== (\S+) ")  # each build in a build log begins with this line (UTC ISO time)
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")


def one_line(reason: str | None) -> str:
    """A service's reason (a summary line, maybe followed by a log tail) as one line for tables and progress.

    Escape sequences are stripped; the first non-blank line is kept. When that line introduces the tail
    (ends with ``:``), the tail's last exception line (``RuntimeError: ...``) is appended: the cause.
    """
    from rich.text import Text

    lines = [line.strip() for line in Text.from_ansi(reason or "").plain.splitlines() if line.strip()]
    if not lines:
        return ""
    cause = next((line for line in reversed(lines[1:]) if _EXCEPTION_LINE.match(line)), None)
    return f"{lines[0]} {cause}" if cause and lines[0].endswith(":") else lines[0]


class BuildLog:
    """The lines a build log gains between reads (``read()`` gives its last ``BUILD_LOG_LINES`` lines), read at most
    every ``BUILD_LOG_PERIOD_S`` seconds. At the first read, the last build in it (from its ``===== <UTC time> ...``
    header) is news when it began at most ``BUILD_NEWS_S`` seconds before the wait: the build this deployment started;
    an older one (a reused environment) is not."""

    def __init__(self, read: Callable[[], str]):
        self.read = read
        self.since = datetime.now(timezone.utc) - timedelta(seconds=BUILD_NEWS_S)
        self._lines: list[str] | None = None
        self._read_at = 0.0

    def new_lines(self) -> list[str]:
        if time.monotonic() - self._read_at < BUILD_LOG_PERIOD_S:
            return []
        self._read_at = time.monotonic()
        try:
            lines = self.read().splitlines()
        except ModelportError:  # the service is not there yet, or its log cannot be read: nothing to show
            return []
        before, self._lines = self._lines, lines
        if before is None:
            return self._current_build(lines)
        for overlap in range(min(len(before), len(lines)), 0, -1):  # the longest end of before that starts lines
            if before[-overlap:] == lines[:overlap]:
                return lines[overlap:]
        return lines

    def _current_build(self, lines: list[str]) -> list[str]:
        for index in range(len(lines) - 1, -1, -1):
            header = _BUILD_HEADER.match(lines[index])
            if header:
                try:
                    began = datetime.fromisoformat(header.group(1))
                except ValueError:
                    return []
                return lines[index:] if began.tzinfo and began >= self.since else []
        return []


class DeployProgress:
    """``wait_for_deployment``'s report on stderr: a live status on a terminal, plain timed lines elsewhere."""

    def __init__(self, name: str, show: bool):
        from rich.console import Console

        self.name = name
        self.console = Console(stderr=True) if show else None
        self.started = time.monotonic()
        self._last = ""
        self._status = None

    def __enter__(self) -> DeployProgress:
        if self.console is not None and self.console.is_terminal:
            self._status = self.console.status(f"deploying {self.name} ...")
            self._status.start()
        return self

    def update(self, state: str, reason: str) -> None:
        """Report ``state`` and the first line of ``reason`` if either changed since the last report."""
        line = f"{self.name}: {state}" + (f" - {one_line(reason)}" if reason else "")
        if self.console is None or line == self._last:
            return
        self._last = line
        if self._status is not None:
            self._status.update(line)
        else:
            self._plain(line)

    def lines(self, lines: list[str]) -> None:
        """Print build log lines, each after ``BUILD_LOG_PREFIX`` (above the live status on a terminal)."""
        if self.console is None:
            return
        for line in lines:
            if self._status is not None:
                self.console.print(f"{BUILD_LOG_PREFIX}{line}", markup=False, highlight=False)
            else:
                print(f"{BUILD_LOG_PREFIX}{line}", file=sys.stderr, flush=True)

    def finish(self, state: str, detail: str | None) -> None:
        """The last line: the final state and the scoring URI (Healthy) or the one-line reason."""
        if self.console is None:
            return
        if self._status is not None:
            self._status.stop()
            self._status = None
        self._plain(f"{self.name}: {state}" + (f" - {detail}" if detail else ""))

    def _plain(self, line: str) -> None:
        print(f"{line} ({time.monotonic() - self.started:.0f} s)", file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> bool:
        if self._status is not None:
            self._status.stop()
        return False
