"""The control plane HTTP API: one FastAPI app per workspace, every route behind the workspace token."""

from __future__ import annotations

import hmac
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .. import __version__
from ..errors import ModelportError, Unauthorized
from ..store.artifacts import LocalArtifactStore
from ..store.db import Store
from . import routes_blobs, routes_environments, routes_models, routes_services, routes_snapshots
from .context import Context
from .deployments import Deployments
from .workspace_dir import WorkspaceDir


def create_app(workspace: WorkspaceDir, store_url: str | None = None) -> FastAPI:
    """The API of ``workspace``; the store is the workspace's SQLite file unless ``store_url`` is given."""
    store = Store(store_url or workspace.store_url)
    artifacts = LocalArtifactStore(workspace.artifacts)
    deployments = Deployments(workspace, store, artifacts)
    context = Context(workspace=workspace, store=store, artifacts=artifacts, deployments=deployments)
    token = workspace.token()

    def authorize(request: Request) -> None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            raise Unauthorized(
                "missing or wrong workspace token: send 'Authorization: Bearer <token>' with the token in "
                f"{workspace.token_path}"
            )

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        deployments.start()
        yield
        deployments.stop()

    app = FastAPI(title="modelport control plane", version=__version__, lifespan=lifespan,
                  description=f"Workspace {workspace.name!r}: models, environments, snapshots, services.")
    app.state.context = context

    @app.exception_handler(ModelportError)
    async def modelport_error(_request: Request, err: ModelportError) -> JSONResponse:
        return JSONResponse({"code": err.code, "message": str(err)}, status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, err: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
        return JSONResponse({"code": "InvalidInput", "message": f"invalid request: {problems}"}, status_code=400)

    @app.get("/healthz", tags=["server"])
    def healthz() -> dict:
        """Liveness of the control plane (no token needed)."""
        return {"status": "ok", "workspace": workspace.name}

    protected = [Depends(authorize)]
    for router in (routes_blobs.router, routes_models.router, routes_environments.router, routes_snapshots.router,
                   routes_services.router):
        app.include_router(router, prefix="/api/v1", dependencies=protected)

    @app.get("/api/v1/workspace", dependencies=protected, tags=["workspace"])
    def show_workspace() -> dict:
        config = workspace.config()
        return {"name": config["workspace_name"], "path": str(workspace.root.parent), "created": config.get("created"),
                "store": _redacted(context.store.url)}

    return app


def _redacted(url: str) -> str:
    """A database URL without its password, for display."""
    head, sep, tail = url.partition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{tail}"
