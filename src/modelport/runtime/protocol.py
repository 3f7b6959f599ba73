"""The HTTP side of the scoring contract: requests in, ``Reply`` out, error bodies and JSON encoding."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson

JSON = (b"content-type", b"application/json")
HTML = (b"content-type", b"text/html; charset=utf-8")

RUN_FAILED_MESSAGE = "An unexpected error occurred in scoring script. Check the logs for more info."
INTERNAL_ERROR_MESSAGE = "An unexpected internal error occurred. Check the logs for more info."
NOT_FOUND_MESSAGE = (
    "The requested URL was not found on the server. "
    "If you entered the URL manually please check your spelling and try again."
)
METHOD_NOT_ALLOWED_MESSAGE = "The method is not allowed for the requested URL."


@dataclass
class HttpRequest:
    """What the runtime knows of one HTTP request once its body has been read."""

    scope: dict[str, Any]
    body: bytes
    content_type: str = ""

    @property
    def method(self) -> str:
        return self.scope["method"]


@dataclass
class Reply:
    """A response to send: a body, or a stream of chunks that is read in a worker thread."""

    status: int
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    stream: Iterator[bytes] | None = None
    run_failed: bool = False
    exec_ms: float | None = None


class HttpError(Exception):
    """A request the runtime answers with a JSON ``{"message": ...}`` error."""

    def __init__(self, status: int, message: str, run_failed: bool = False):
        super().__init__(message)
        self.status = status
        self.message = message
        self.run_failed = run_failed

    def reply(self) -> Reply:
        return error_reply(self.status, self.message, self.run_failed)


def error_reply(status: int, message: str, run_failed: bool = False) -> Reply:
    return Reply(status, [JSON], orjson.dumps({"message": message}), run_failed=run_failed)


def encode_json(value: Any) -> bytes:
    """Encode run()'s return value as the reference does: ``None`` is ``{}``, a str a JSON string.

    orjson first (fast; also dates, dataclasses); the standard library for what orjson refuses
    but ``json.dumps`` accepts (integers over 64 bits). Raises TypeError or ValueError otherwise.
    """
    if value is None:
        return b"{}"
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(value).encode()


def decode_json(body: bytes) -> Any:
    """Parse JSON like ``json.loads`` (same values, same error messages), with orjson's speed."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)  # NaN/Infinity and huge integers; or the standard error message


def query_to_json(query_string: bytes) -> dict[str, Any]:
    """Turn ``?a=1&b=[1,2]&c=x&c=y`` into ``{"a": 1, "b": [1, 2], "c": ["x", "y"]}`` as azmlinfsrv does."""
    grouped: dict[str, list[str]] = {}
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        grouped.setdefault(key, []).append(value)
    return {k: _json_or_text(v[0]) if len(v) == 1 else [_json_or_text(x) for x in v] for k, v in grouped.items()}


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def headers_dict(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Request headers as Flask under gunicorn shows them to run(): ``X-Test``-style names, repeats joined by ``,``."""
    out: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1").title()
        text = value.decode("latin-1")
        out[key] = f"{out[key]},{text}" if key in out else text
    return out
