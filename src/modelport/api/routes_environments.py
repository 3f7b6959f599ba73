"""Environments: register, list, show, and build locally (the build log is streamed back)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import orjson
from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from ..environments.build import build_local
from ..environments.spec import EnvironmentSpec
from ..errors import Conflict, InvalidInput, ModelportError, NotFound, ServerUnavailable
from .context import Context, context
from .openapi_errors import errors
from .schemas import EnvironmentView

router = APIRouter(tags=["environments"], responses=errors(ServerUnavailable))
BUILD_EVENTS = {"description": "NDJSON: {event: log, line} objects, then one {event: done | error, ...}",
                "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}


@router.post("/environments", status_code=201, response_model=EnvironmentView,
             responses=errors(InvalidInput, Conflict))
def register_environment(spec: EnvironmentSpec, ctx: Context = Depends(context)) -> dict:
    """Register an Azure ML Environment JSON object; same content as the latest version returns it.

    The spec's own validators raise InvalidInput with one-line messages (400), as ``EnvironmentSpec.from_dict``.
    """
    record = ctx.store.register_environment(spec.name, spec.to_dict(), spec.content_hash(), version=spec.version)
    return record.to_dict()


@router.get("/environments", response_model=list[EnvironmentView])
def list_environments(ctx: Context = Depends(context)) -> list[dict]:
    """Every registered environment version."""
    return [r.to_dict() for r in ctx.store.list_environments()]


@router.get("/environments/{name}", response_model=EnvironmentView, responses=errors(NotFound))
def get_environment(name: str, version: str | None = None, ctx: Context = Depends(context)) -> dict:
    """An environment's version ``version``, or its latest."""
    return ctx.store.get_environment(name, version).to_dict()


@router.post("/environments/{name}/{version}/build", response_class=StreamingResponse,
             responses={200: BUILD_EVENTS, **errors(NotFound)})
def build_environment(name: str, version: str, ctx: Context = Depends(context)) -> StreamingResponse:
    """Build (or reuse) the local virtual environment; streams NDJSON: log lines, then a result."""
    record = ctx.store.get_environment(name, version)
    spec = EnvironmentSpec.from_dict(record.spec)
    return StreamingResponse(_build_events(spec, ctx), media_type="application/x-ndjson")


def _build_events(spec: EnvironmentSpec, ctx: Context) -> Iterator[bytes]:
    outcome: dict = {}
    log_path = ctx.workspace.logs / f"{spec.content_hash()[:16]}.log"
    offset = log_path.stat().st_size if log_path.exists() else 0

    def build() -> None:
        try:
            built = build_local(spec, ctx.workspace.envs, ctx.workspace.logs, show_output=False)
            outcome["result"] = {"event": "done", "python": str(built.python), "root": str(built.root),
                                 "reused": built.reused, "log": str(built.log)}
        except ModelportError as err:
            outcome["result"] = {"event": "error", "code": err.code, "message": str(err)}
        except Exception as err:  # an unexpected failure still ends the stream with a message
            outcome["result"] = {"event": "error", "code": "BadRequest", "message": f"build failed: {err}"}

    worker = threading.Thread(target=build, name="env-build", daemon=True)
    worker.start()
    while True:
        finished = not worker.is_alive()
        if log_path.exists():
            with open(log_path, "rb") as log:
                log.seek(offset)
                chunk = log.read()
            offset += len(chunk)
            for line in chunk.decode(errors="replace").splitlines():
                yield orjson.dumps({"event": "log", "line": line}) + b"\n"
        if finished:
            break
        time.sleep(0.2)
    yield orjson.dumps(outcome.get("result", {"event": "error", "message": "build stopped"})) + b"\n"
