"""Replica logging: one line format, ``print()`` captured, one access line per request.

Access lines are the hot path (one per request): they are formatted without a LogRecord
and written in batches (at most ``ACCESS_FLUSH_S`` late, and always before any other log
line, so the log stays in order). Writing each one at once cost more CPU than the HTTP
handling of the request.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
import time

FORMAT = "%(asctime)s %(levelname).1s [%(process)d] %(name)s - %(message)s"
ACCESS_FLUSH_S = 0.1
ACCESS_BATCH = 256


class ReplicaLogHandler(logging.StreamHandler):
    """Writes log records to stderr at once, and access lines in small batches before them."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(logging.Formatter(FORMAT))
        self._pending: list[str] = []
        self._last_write = time.monotonic()
        self._second = -1
        self._second_text = ""

    def emit(self, record: logging.LogRecord) -> None:  # called with the handler lock held
        self._drain()
        super().emit(record)

    def access(self, message: str) -> None:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        line = f"{self._second_text},{int((now - second) * 1000):03d} I [{os.getpid()}] modelport.access - {message}\n"
        with self.lock:
            self._pending.append(line)
            if len(self._pending) >= ACCESS_BATCH or time.monotonic() - self._last_write >= ACCESS_FLUSH_S:
                self._drain()

    def flush(self) -> None:
        with self.lock:
            self._drain()
            super().flush()

    def _drain(self) -> None:
        if self._pending:
            self.stream.write("".join(self._pending))
            self.stream.flush()
            self._pending.clear()
        self._last_write = time.monotonic()


_handler = ReplicaLogHandler()
_access_enabled = True


def configure(level: str = "INFO") -> None:
    """Send all log records to stderr in one line format (the replica log)."""
    global _access_enabled
    root = logging.getLogger()
    root.handlers[:] = [_handler]
    root.setLevel(level if isinstance(logging.getLevelName(level), int) else "INFO")
    _access_enabled = root.isEnabledFor(logging.INFO)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def flush() -> None:
    """Write out batched access lines (called periodically and before a worker exits)."""
    _handler.flush()


def access(method: str, path: str, status: int, duration_ms: float, size: int | str, request_id: str,
           exec_ms: float | None) -> None:
    """One logfmt line per request: ``method= path= status= duration_ms= run_ms= bytes= request_id=``."""
    if _access_enabled:
        run = "-" if exec_ms is None else f"{exec_ms:.3f}"
        _handler.access(
            f"method={method} path={path} status={status} duration_ms={duration_ms:.3f} run_ms={run} "
            f"bytes={size} request_id={request_id or '-'}"
        )


class PrintToLog(io.TextIOBase):
    """A stdout replacement that turns each printed line into a ``modelport.print`` log record."""

    def __init__(self, logger_name: str = "modelport.print"):
        self._logger = logging.getLogger(logger_name)
        self._pending = threading.local()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        buffered = getattr(self._pending, "text", "") + text
        *lines, rest = buffered.split("\n")
        for line in lines:
            self._logger.info(line)
        self._pending.text = rest
        return len(text)

    def flush(self) -> None:
        rest = getattr(self._pending, "text", "")
        if rest:
            self._pending.text = ""
            self._logger.info(rest)


def capture_prints() -> None:
    sys.stdout = PrintToLog()
