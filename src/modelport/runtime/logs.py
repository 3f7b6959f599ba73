"""Replica logging: one line format on stdout (as azmlinfsrv), ``print()`` captured, one access line per request.

Access lines are the hot path (one per request): they are formatted without a LogRecord
and written in batches (at most ``ACCESS_FLUSH_S`` late, and always before any other log
line, so the log stays in order). Writing each one at once cost more CPU than the HTTP
handling of the request. Probes and ``/metrics`` get access lines only at debug level.

A ``logging.json`` in the app root (else beside the entry script) is a ``logging.config``
dictionary applied on top, as azmlinfsrv applies it; access lines then go through the
``modelport.access`` logger whenever that configuration gives them a handler or level of
its own.
"""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
import sys
import threading
import time
from pathlib import Path

FORMAT = "%(asctime)s %(levelname).1s [%(process)d] %(name)s - %(message)s"
ACCESS_FLUSH_S = 0.1
ACCESS_BATCH = 256


class ReplicaLogHandler(logging.StreamHandler):
    """Writes log records to stdout at once, and access lines in small batches before them."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)
        self.setFormatter(logging.Formatter(FORMAT))
        self._pending: list[str] = []
        self._last_write = time.monotonic()
        self._second = -1
        self._second_text = ""

    def emit(self, record: logging.LogRecord) -> None:  # called with the handler lock held
        self._drain()
        super().emit(record)

    def access(self, message: str, level: str = "I") -> None:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        millis = int((now - second) * 1000)
        line = f"{self._second_text},{millis:03d} {level} [{os.getpid()}] modelport.access - {message}\n"
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
_debug_access_enabled = False
_access_logger: logging.Logger | None = None  # set when logging.json routes access lines itself
ACCESS_LOGGER = "modelport.access"
LOGGING_CONFIG = "logging.json"


def configure(level: str = "INFO") -> None:
    """Send all log records to stdout in one line format (the replica log)."""
    root = logging.getLogger()
    root.handlers[:] = [_handler]
    root.setLevel(level if isinstance(logging.getLevelName(level), int) else "INFO")
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    _update_access()


def apply_logging_json(*folders: Path | None) -> Path | None:
    """Apply the first ``logging.json`` found in these folders (dictConfig), as azmlinfsrv does.

    Loggers the file does not name keep working (``disable_existing_loggers`` defaults to
    false here, unlike dictConfig's own default, so the runtime's lines are not silenced).
    Returns the file applied, or None. Raises ValueError with the file's name when it is invalid.
    """
    for folder in folders:
        if folder is None:
            continue
        path = Path(folder) / LOGGING_CONFIG
        if not path.is_file():
            continue
        try:
            config = json.loads(path.read_text())
            if isinstance(config, dict):
                config.setdefault("disable_existing_loggers", False)
            logging.config.dictConfig(config)
        except (ValueError, TypeError, AttributeError, ImportError) as err:
            raise ValueError(f"{path} is not a valid logging configuration: {err}") from None
        _update_access()
        logging.getLogger("modelport.logs").info("Loaded logging config from %s", path)
        return path
    return None


def _update_access() -> None:
    """Decide once, not per request, whether and how access lines are written."""
    global _access_enabled, _debug_access_enabled, _access_logger
    logger = logging.getLogger(ACCESS_LOGGER)
    _access_enabled = logger.isEnabledFor(logging.INFO)
    _debug_access_enabled = logger.isEnabledFor(logging.DEBUG)
    root = logging.getLogger()
    own_route = logger.handlers or logger.level != logging.NOTSET or not logger.propagate
    _access_logger = logger if own_route or root.handlers != [_handler] else None


def flush() -> None:
    """Write out batched access lines (called periodically and before a worker exits)."""
    _handler.flush()


def debug_access_enabled() -> bool:
    return _debug_access_enabled


def access(method: str, path: str, status: int, duration_ms: float, size: int | str, request_id: str,
           exec_ms: float | None, debug: bool = False) -> None:
    """One logfmt line per request: ``method= path= status= duration_ms= run_ms= bytes= request_id=``."""
    if _access_enabled or (debug and _debug_access_enabled):
        run = "-" if exec_ms is None else f"{exec_ms:.3f}"
        message = (f"method={method} path={path} status={status} duration_ms={duration_ms:.3f} run_ms={run} "
                   f"bytes={size} request_id={request_id or '-'}")
        if _access_logger is not None:
            _access_logger.log(logging.DEBUG if debug else logging.INFO, message)
        else:
            _handler.access(message, "D" if debug else "I")


class PrintToLog(io.TextIOBase):
    """A stdout replacement that turns each printed line into a ``modelport.print`` log record.

    A log handler that itself writes to ``sys.stdout`` (say ``logging.basicConfig(stream=sys.stdout)``
    in ``init()``) would loop through here forever; a write made while this thread is already
    turning a line into a record goes straight to the real stdout instead.
    """

    def __init__(self, logger_name: str = "modelport.print", stream: io.TextIOBase | None = None):
        self._logger = logging.getLogger(logger_name)
        self._pending = threading.local()
        self._stream = stream or sys.__stdout__

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        pending = self._pending
        if getattr(pending, "busy", False):
            self._stream.write(text)
            return len(text)
        buffered = getattr(pending, "text", "") + text
        *lines, rest = buffered.split("\n")
        pending.text = rest
        pending.busy = True
        try:
            for line in lines:
                self._logger.info(line)
        finally:
            pending.busy = False
        return len(text)

    def flush(self) -> None:
        rest = getattr(self._pending, "text", "")
        if rest and not getattr(self._pending, "busy", False):
            self._pending.text = ""
            self.write(rest + "\n")


def capture_prints() -> None:
    sys.stdout = PrintToLog(stream=sys.stdout)
