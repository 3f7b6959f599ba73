"""The ASGI application of one worker: routes, request ids, limits, and the call into ``run()``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from random import getrandbits
from typing import Any

from . import logs, metrics
from .cors import CorsPolicy
from .protocol import (
    HTML,
    JSON,
    METHOD_NOT_ALLOWED_MESSAGE,
    NOT_FOUND_MESSAGE,
    HttpError,
    HttpRequest,
    Reply,
    error_reply,
)
from .run_pool import RunPool
from .scoring import Scorer, options_reply
from .settings import RuntimeSettings
from .swagger import SwaggerDocuments, SwaggerNotFound
from .user_script import InputMode

logger = logging.getLogger("modelport.server")

ID_LIMIT = 100
NOT_FAILED = (b"x-ms-run-function-failed", b"False")
FAILED = (b"x-ms-run-function-failed", b"True")
CONTRACT_ROUTES = {"/", "/score", "/swagger.json"}
# Probes and the autoscaler's scrapes: counted in metrics, in the access log only at debug level.
QUIET_ROUTES = {"/", "/-/live", "/-/ready", "/metrics"}
ALLOW_GET = (b"allow", b"GET, HEAD, OPTIONS")
STARTING_RETRY_AFTER = (b"retry-after", b"5")  # seconds: a 503 while init() runs says when to ask again


class ScoringApp:
    """Serves one entry script. ``attach()`` is called once ``init()`` has finished in this worker.

    The event loop only does HTTP; run() executes on the ``RunPool``'s threads.
    """

    def __init__(self, settings: RuntimeSettings, all_workers_ready: Callable[[], bool],
                 on_stuck: Callable[[str], None] | None = None):
        self.settings = settings
        self.all_workers_ready = all_workers_ready
        self.on_stuck = on_stuck
        self.cors = CorsPolicy(settings.cors_origins) if settings.cors_origins else None
        self.server_header = (b"x-ms-server-version", settings.server_version.encode()) \
            if settings.server_version else None
        self.scorer: Scorer | None = None
        self.swagger: SwaggerDocuments | None = None
        self.raw_options = False
        self.pool: RunPool | None = None
        self._counters: dict[tuple[str, int], Any] = {}
        self._flushing_logs = False
        self._latency = {route: metrics.LATENCY.labels(route) for route in (*CONTRACT_ROUTES, "other")}

    def attach(self, scorer: Scorer, swagger: SwaggerDocuments) -> None:
        self.scorer = scorer
        self.swagger = swagger
        self.raw_options = scorer.mode is InputMode.RAW_HTTP

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        path = scope["path"]
        method = scope["method"]
        id_headers: list[tuple[bytes, bytes]] = []
        request_id = ""
        if path in CONTRACT_ROUTES:
            id_headers, request_id, reply = _request_ids(scope["headers"])
            if reply is None:
                reply = await self._contract_route(path, method, scope, receive)
            if reply.routed:  # what azmlinfsrv's route handlers answer (not its 404/405 for no route)
                if self.server_header is not None:
                    id_headers.append(self.server_header)
                if self.cors is not None:
                    self.cors.apply(method, scope["headers"], reply)
        else:
            reply = self._own_route(path, method)
        size = await self._send(send, reply, id_headers)
        duration = time.perf_counter() - started
        route = path if path in CONTRACT_ROUTES else "other"
        self._count(route, reply.status)
        self._latency[route].observe(duration)
        if reply.run_failed:
            metrics.RUN_FAILURES.inc()
        quiet = path in QUIET_ROUTES
        if not quiet or logs.debug_access_enabled():
            logs.access(method, path, reply.status, duration * 1000.0, size, request_id, reply.exec_ms, debug=quiet)
            if not self._flushing_logs:
                self._flushing_logs = True
                asyncio.get_running_loop().call_later(logs.ACCESS_FLUSH_S, self._flush_logs)

    def _flush_logs(self) -> None:
        """Batched access lines reach the log within ``ACCESS_FLUSH_S`` even when traffic stops."""
        logs.flush()
        self._flushing_logs = False

    async def _contract_route(self, path: str, method: str, scope: dict, receive: Callable) -> Reply:
        if path == "/score":
            if method in ("GET", "POST") or (method == "OPTIONS" and self.raw_options):
                return await self._score(scope, receive)
            if method == "OPTIONS":
                return options_reply()
        elif method in ("GET", "HEAD"):
            if path == "/":
                if self.scorer is not None and self.all_workers_ready():
                    return Reply(200, [HTML], b"Healthy")
                return _starting()
            if self.swagger is None:
                return _starting()
            try:
                return Reply(200, [JSON], self.swagger.get(_query_param(scope["query_string"], b"version")))
            except SwaggerNotFound as err:
                return error_reply(404, str(err))
        elif method == "OPTIONS":  # Flask's automatic OPTIONS answer for GET routes (and CORS preflights)
            return Reply(200, [HTML, ALLOW_GET])
        reply = error_reply(405, METHOD_NOT_ALLOWED_MESSAGE)
        reply.routed = False
        return reply

    def _own_route(self, path: str, method: str) -> Reply:
        if path not in ("/-/live", "/-/ready", "/metrics"):
            return error_reply(404, NOT_FOUND_MESSAGE)
        if method not in ("GET", "HEAD"):
            return error_reply(405, METHOD_NOT_ALLOWED_MESSAGE)
        if path == "/-/live":
            return Reply(200, [JSON], b'{"status": "live"}')
        if path == "/metrics":
            return Reply(200, [(b"content-type", metrics.CONTENT_TYPE)], metrics.render())
        if self.scorer is not None and self.all_workers_ready():
            return Reply(200, [JSON], b'{"status": "ready"}')
        return Reply(503, [JSON, STARTING_RETRY_AFTER],
                     b'{"status": "starting", "message": "init() has not finished in every worker"}')

    async def _score(self, scope: dict, receive: Callable) -> Reply:
        if self.scorer is None:
            return _starting()
        try:
            body, content_type = await _read_body(scope, receive, self.settings.max_body_bytes)
        except HttpError as err:
            reply = err.reply()
            reply.headers.append((b"connection", b"close"))  # the rest of the body is not read
            return reply
        if self.pool is None:
            s = self.settings
            self.pool = RunPool(self.scorer, s.max_concurrent_requests, s.max_queue_wait_ms, s.scoring_timeout_ms,
                                asyncio.get_running_loop(), s.worker_timeout_s * 1000, self.on_stuck)
        return await self.pool.submit(HttpRequest(scope, body, content_type))

    async def _send(self, send: Callable, reply: Reply, id_headers: list[tuple[bytes, bytes]]) -> int | str:
        headers = reply.headers + [FAILED if reply.run_failed else NOT_FAILED, *id_headers]
        if reply.exec_ms is not None:
            headers.append((b"x-ms-run-fn-exec-ms", b"%.3f" % reply.exec_ms))
        if reply.stream is None:
            headers.append((b"content-length", str(len(reply.body)).encode()))
            await send({"type": "http.response.start", "status": reply.status, "headers": headers})
            await send({"type": "http.response.body", "body": reply.body})
            return len(reply.body)
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await self._stream(send, reply)
        return "stream"

    async def _stream(self, send: Callable, reply: Reply) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                chunk = await loop.run_in_executor(None, next, reply.stream, None)
                if chunk is None:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except asyncio.CancelledError:
            raise
        except BaseException:  # also SystemExit from user code: it must not stop the event loop
            logger.exception("the streamed response of run() raised; the response is cut short")
        finally:
            close = getattr(reply.stream, "close", None)
            if close is not None:
                try:
                    close()
                except BaseException:
                    logger.exception("closing the streamed response of run() raised")
        await send({"type": "http.response.body", "body": b""})

    def _count(self, route: str, status: int) -> None:
        counter = self._counters.get((route, status))
        if counter is None:
            counter = self._counters[(route, status)] = metrics.REQUESTS.labels(route, str(status))
        counter.inc()


def _starting() -> Reply:
    reply = error_reply(
        503, "The scoring script is still starting: init() has not finished in every worker. Retry shortly; "
        "GET / and GET /-/ready answer 200 once the replica is ready.",
    )
    reply.headers.append(STARTING_RETRY_AFTER)
    return reply


def _request_ids(headers: list[tuple[bytes, bytes]]) -> tuple[list[tuple[bytes, bytes]], str, Reply | None]:
    """azmlinfsrv's request-id rules: echo or create x-request-id; x-ms-request-id for older clients."""
    request_id = legacy = client = b""
    trace = None
    for name, value in headers:
        if name == b"x-request-id":
            request_id = value
        elif name == b"x-ms-request-id":
            legacy = value
        elif name == b"x-ms-client-request-id":
            client = value
        elif name == b"traceid":
            trace = value
    if len(request_id) > ID_LIMIT:
        return [], "", error_reply(431, f"x-request-id must not exceed {ID_LIMIT} characters")
    if not request_id:
        request_id = _new_request_id()
    if legacy:
        logger.warning(
            "x-ms-request-id header has been deprecated and will be removed from future versions of the server. "
            "Please use x-ms-client-request-id."
        )
        client = client or legacy
    else:
        legacy = client or request_id
    if len(legacy) > ID_LIMIT or len(client) > ID_LIMIT:
        message = f"x-ms-request-id and x-ms-client-request-id must not exceed {ID_LIMIT} characters"
        return [], "", error_reply(431, message)
    out = [(b"x-request-id", request_id), (b"x-ms-request-id", legacy)]
    if client:
        out.append((b"x-ms-client-request-id", client))
    if trace is not None:
        out.append((b"traceid", trace))
    return out, request_id.decode("latin-1"), None


def _new_request_id() -> bytes:
    """A random version-4 UUID (not for secrets: request ids only need to be unique)."""
    bits = (getrandbits(128) & ~(0xF000 << 64) | (0x4000 << 64)) & ~(0xC << 60) | (0x8 << 60)
    text = b"%032x" % bits
    return b"-".join((text[:8], text[8:12], text[12:16], text[16:20], text[20:]))


async def _read_body(scope: dict, receive: Callable, limit: int) -> tuple[bytes, str]:
    content_type = ""
    declared = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value.decode("latin-1")
        elif name == b"content-length":
            declared = int(value) if value.isdigit() else None
    if declared is not None and declared > limit:
        raise _too_large(declared, limit)
    chunks = []
    total = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        if chunk:
            total += len(chunk)
            if total > limit:
                raise _too_large(total, limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return (chunks[0] if len(chunks) == 1 else b"".join(chunks)), content_type


def _too_large(size: int, limit: int) -> HttpError:
    return HttpError(
        413, f"The request body ({size} bytes or more) is larger than this service accepts ({limit} bytes). "
        "Send less data per request, or raise MODELPORT_MAX_BODY_BYTES.",
    )


def _query_param(query_string: bytes, name: bytes) -> str | None:
    for pair in query_string.split(b"&"):
        key, _, value = pair.partition(b"=")
        if key == name:
            return value.decode("latin-1")
    return None
