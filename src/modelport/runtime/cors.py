"""CORS for the scoring routes, as azmlinfsrv does it with ``AML_CORS_ORIGINS`` (flask-cors).

azmlinfsrv enables flask-cors on its routes (``/``, ``/score``, ``/swagger.json``) with the
origins from ``AML_CORS_ORIGINS`` (comma-separated; ``*`` for any) and methods GET and POST.
This module answers the same headers:

- a request whose ``Origin`` is allowed gets ``Access-Control-Allow-Origin: <that origin>``
  (also for ``*``, which flask-cors echoes rather than sending ``*``); ``Vary: Origin`` when the
  answer depends on the origin (several origins, or a pattern such as ``*``);
- a preflight (``OPTIONS`` with ``Access-Control-Request-Method: GET|POST``) also gets
  ``Access-Control-Allow-Methods: GET, POST`` and ``Access-Control-Allow-Headers`` with the
  headers it asked for;
- a request from another origin gets no CORS header; one without ``Origin`` (not a browser's
  cross-origin request) gets ``*`` when ``*`` is allowed, else the first allowed origin;
- a response that already carries ``Access-Control-Allow-Origin`` (set by a ``@rawhttp``
  ``run()``) is left alone.

An origin with a regular-expression character (``*``, ``?``, ``[``, ``^``, ``$``, ...) is a
pattern matched from the start, as flask-cors treats it; others match case-insensitively.
Only called when origins are configured: without ``AML_CORS_ORIGINS`` nothing here runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .protocol import Reply

ALLOW_ORIGIN = b"access-control-allow-origin"
ALLOWED_METHODS = ("GET", "POST")
_REGEX_CHARS = set("*\\]?$^[()")


class CorsPolicy:
    """The allowed origins, parsed once; ``apply`` adds the CORS headers to one reply."""

    def __init__(self, origins: str):
        entries = [origin.strip() for origin in origins.split(",") if origin.strip()]
        self.origins = entries
        self._literal = {o.casefold() for o in entries if not _is_pattern(o)}
        self._patterns = [p for p in (_compile(o) for o in entries if _is_pattern(o)) if p is not None]
        self._wildcard = "*" in entries or ".*" in entries
        self._vary = len(entries) > 1 or any(_is_pattern(o) for o in entries)
        literal = sorted(o for o in entries if not _is_pattern(o))
        self._without_origin = b"*" if self._wildcard else (literal[0].encode("latin-1") if literal else None)

    def allows(self, origin: str) -> bool:
        return origin.casefold() in self._literal or any(p.match(origin) for p in self._patterns)

    def apply(self, method: str, request_headers: Iterable[tuple[bytes, bytes]], reply: Reply) -> None:
        if any(name == ALLOW_ORIGIN for name, _ in reply.headers):
            return
        origin = request_method = requested_headers = private_network = None
        for name, value in request_headers:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                request_method = value
            elif name == b"access-control-request-headers":
                requested_headers = value
            elif name == b"access-control-request-private-network":
                private_network = value
        if origin is not None:
            if not self.allows(origin.decode("latin-1")):
                return
            allowed = origin
        elif self._without_origin is not None:
            allowed = self._without_origin
        else:
            return
        headers = reply.headers
        headers.append((ALLOW_ORIGIN, allowed))
        if private_network == b"true":
            headers.append((b"access-control-allow-private-network", b"false"))
        if method == "OPTIONS" and request_method is not None \
                and request_method.decode("latin-1").upper() in ALLOWED_METHODS:
            if requested_headers:
                names = sorted(h.strip() for h in requested_headers.decode("latin-1").split(","))
                if any(names):
                    headers.append((b"access-control-allow-headers", ", ".join(names).encode("latin-1")))
            headers.append((b"access-control-allow-methods", ", ".join(ALLOWED_METHODS).encode()))
        if allowed != b"*" and self._vary:
            headers.append((b"vary", b"Origin"))


def _is_pattern(origin: str) -> bool:
    return any(c in _REGEX_CHARS for c in origin)


def _compile(origin: str) -> re.Pattern[str] | None:
    try:
        return re.compile(".*" if origin == "*" else origin, re.IGNORECASE)
    except re.error:  # flask-cors: a pattern that does not compile matches nothing
        return None
