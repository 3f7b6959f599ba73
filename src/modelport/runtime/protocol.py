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
    routed: bool = True  # False: the 405 for a method no route takes (no contract headers, as azmlinfsrv)


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


# orjson refuses input and output nested deeper than this; the standard library would hit the
# interpreter's recursion limit at about the same depth, so neither falls back to it.
NESTING_LIMIT = 1024
NESTING_MESSAGE = f"JSON is nested deeper than the nesting limit of {NESTING_LIMIT} levels"
_NON_STR_KEYS = orjson.OPT_NON_STR_KEYS
_INF = float("inf")
_N = ord("n")


class NestingError(ValueError):
    """JSON nested deeper than ``NESTING_LIMIT`` (a request body, a query value or run()'s result)."""

    def __init__(self) -> None:
        super().__init__(NESTING_MESSAGE)


def encode_json(value: Any) -> bytes:
    """Encode run()'s return value with the reference's (``json.dumps``) values: ``None`` is ``{}``,
    a str a JSON string, NaN/Infinity/-Infinity as those words, every float the same double.

    orjson first (fast; also dates, dataclasses, UUIDs); the standard library, compact, for what
    orjson refuses but ``json.dumps`` accepts (integers over 64 bits) and when a non-finite float
    is present, which orjson would write as ``null``. That check costs one ``memchr`` for ``n`` on
    the common path (numbers only); the output is searched for ``null``, and the value walked,
    only when an ``n`` is there. Finite floats keep orjson's text: the same shortest digits as
    ``repr``, except that 1e-9 <= |x| < 1e-4 is written ``1e-7`` / ``0.00001`` where ``json.dumps``
    writes ``1e-07`` / ``1e-05`` (the same value; re-encoding whole outputs for it cost up to 20x).
    Raises ``NestingError`` beyond ``NESTING_LIMIT``, TypeError or ValueError for what neither can encode.
    """
    if value is None:
        return b"{}"
    try:
        out = orjson.dumps(value, option=_NON_STR_KEYS)
    except TypeError as err:
        if str(err) == "Recursion limit reached":
            raise NestingError() from None
        return _standard_dumps(value)
    if _N in out and out.find(b"null") >= 0 and _has_non_finite(value):  # int membership: a bare memchr
        return _standard_dumps(value)
    return out


def _standard_dumps(value: Any) -> bytes:
    try:
        return json.dumps(value, separators=(",", ":"), default=_orjson_native).encode()
    except RecursionError:
        raise NestingError() from None


def _orjson_native(value: Any) -> Any:
    """What orjson would write for a type json.dumps does not know (dates, dataclasses, UUIDs, enums)."""
    return orjson.loads(orjson.dumps(value, option=_NON_STR_KEYS))


def _has_non_finite(value: Any) -> bool:
    """Whether a float NaN or +-Infinity is anywhere in these dicts, lists and tuples (no recursion)."""
    stack = [value]
    pop, push = stack.pop, stack.extend
    while stack:
        item = pop()
        kind = type(item)
        if kind is float:
            if item != item or item == _INF or item == -_INF:
                return True
        elif kind is dict:
            push(item.values())
        elif kind is list or kind is tuple:
            push(item)
        elif isinstance(item, float):
            if item != item or item in (_INF, -_INF):
                return True
        elif isinstance(item, dict):
            push(item.values())
        elif isinstance(item, (list, tuple)):
            push(item)
    return False


def decode_json(body: bytes) -> Any:
    """Parse JSON like ``json.loads`` (same values, same error messages), with orjson's speed.

    Raises ``NestingError`` (a ValueError) for input nested deeper than ``NESTING_LIMIT``.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as err:
        if str(err).startswith("depth limit exceeded"):
            raise NestingError() from None
    try:
        return json.loads(body)  # NaN/Infinity and huge integers; or the standard error message
    except RecursionError:
        raise NestingError() from None


def query_to_json(query_string: bytes) -> dict[str, Any]:
    """Turn ``?a=1&b=[1,2]&c=x&c=y`` into ``{"a": 1, "b": [1, 2], "c": ["x", "y"]}`` as azmlinfsrv does."""
    grouped: dict[str, list[str]] = {}
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        grouped.setdefault(key, []).append(value)
    return {k: _json_or_text(v[0]) if len(v) == 1 else [_json_or_text(x) for x in v] for k, v in grouped.items()}


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise NestingError() from None
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
