"""Replica logging: one format for every line, ``print()`` captured, one access line per request."""

from __future__ import annotations

import io
import logging
import sys
import threading

FORMAT = "%(asctime)s %(levelname).1s [%(process)d] %(name)s - %(message)s"
access_logger = logging.getLogger("modelport.access")


def configure(level: str = "INFO") -> None:
    """Send all log records to stderr in one line format (the replica log)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level if isinstance(logging.getLevelName(level), int) else "INFO")
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


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


def access(method: str, path: str, status: int, duration_ms: float, size: int | str, request_id: str,
           exec_ms: float | None) -> None:
    """One logfmt line per request: ``method= path= status= duration_ms= run_ms= bytes= request_id=``."""
    if access_logger.isEnabledFor(logging.INFO):
        run = "-" if exec_ms is None else f"{exec_ms:.3f}"
        access_logger.info(
            "method=%s path=%s status=%d duration_ms=%.3f run_ms=%s bytes=%s request_id=%s",
            method, path, status, duration_ms, run, size, request_id or "-",
        )
