"""The control plane HTTP API: one FastAPI app per workspace, every route behind the workspace token."""

from __future__ import annotations

import hmac
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.responses import PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from .. import __version__
from ..errors import NotFound, Unauthorized
from ..operations.compute import ComputeOperations
from ..operations.endpoints import EndpointOperations
from ..store.artifacts import LocalArtifactStore
from ..store.db import Store
from ..studio import pages as studio_pages
from ..studio.history import MetricsHistory
from ..studio.session import StudioSessions
from . import routes_blobs, routes_compute, routes_environments, routes_models, routes_services, routes_snapshots
from .context import Context
from .deployments import Deployments
from .metrics import EndpointMetrics
from .openapi_errors import answer_errors_as_declared, errors
from .schemas import Health, StudioLink, WorkspaceView
from .workspace_dir import WorkspaceDir

BEARER = HTTPBearer(auto_error=False, description="the workspace token (the file named in the 401 message)")


def create_app(workspace: WorkspaceDir, store_url: str | None = None) -> FastAPI:
    """The API of ``workspace``; the store is the workspace's SQLite file unless ``store_url`` is given."""
    store = Store(store_url or workspace.store_url)
    artifacts = LocalArtifactStore(workspace.artifacts)
    compute = ComputeOperations(store, workspace)
    deployments = Deployments(workspace, store, artifacts, compute)
    context = Context(workspace=workspace, store=store, artifacts=artifacts, deployments=deployments,
                      operations=EndpointOperations(store, artifacts, deployments))
    token = workspace.token()
    sessions = StudioSessions(token, workspace.server_dir / "studio-sessions.json")
    collector = EndpointMetrics(store, deployments.frontend)
    history = MetricsHistory(collector.collect)

    def authorize(credentials: HTTPAuthorizationCredentials | None = Depends(BEARER)) -> None:
        given = credentials.credentials if credentials else ""
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Unauthorized(
                "missing or wrong workspace token: send 'Authorization: Bearer <token>' with the token in "
                f"{workspace.token_path}"
            )

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        deployments.start()
        history.start()
        yield
        history.stop()
        deployments.stop()

    app = FastAPI(title="modelport control plane", version=__version__, lifespan=lifespan,
                  description=f"Workspace {workspace.name!r}: models, environments, snapshots, services.")
    app.state.context = context
    app.state.compute = compute  # routes_compute's dependency
    app.state.metrics_history = history  # Studio's plots
    answer_errors_as_declared(app)

    @app.get("/healthz", tags=["server"], response_model=Health)
    def healthz() -> dict:
        """Liveness of the control plane (no token needed)."""
        return {"status": "ok", "workspace": workspace.name}

    protected = [Depends(authorize)]
    api_routers = [routes_blobs.router, routes_models.router, routes_environments.router, routes_snapshots.router,
                   routes_services.router, routes_compute.router]
    for router in api_routers:
        app.include_router(router, prefix="/api/v1", dependencies=protected, responses=errors(Unauthorized))

    registry = CollectorRegistry()
    registry.register(collector)

    @app.get("/metrics", dependencies=protected, include_in_schema=False)
    def metrics() -> PlainTextResponse:
        """Prometheus metrics per endpoint and version: requests by status class, latency, replicas (send the
        workspace token as a bearer token, e.g. Prometheus' ``authorization`` setting). Prometheus' text
        format, not part of the JSON API: left out of its OpenAPI document."""
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/v1/workspace", dependencies=protected, tags=["workspace"], response_model=WorkspaceView,
             responses=errors(Unauthorized, NotFound))
    def show_workspace() -> dict:
        """The workspace's name, folder, creation time and database URL (without its password)."""
        config = workspace.config()
        return {"name": config["workspace_name"], "path": str(workspace.root.parent), "created": config.get("created"),
                "store": _redacted(context.store.url)}

    @app.post("/api/v1/studio/links", dependencies=protected, include_in_schema=False, response_model=StudioLink)
    def studio_link(request: Request) -> dict:
        """A one-time Studio sign-in link (``modelport studio`` prints and opens it)."""
        return {"url": f"{str(request.base_url).rstrip('/')}/studio/login?code={sessions.new_link_code()}"}

    @app.delete("/api/v1/studio/sessions", dependencies=protected, include_in_schema=False, status_code=204)
    def end_studio_sessions() -> None:
        """End every Studio session (``modelport studio --end-sessions``): each browser signs in again."""
        sessions.end_all()

    studio_pages.install(app, sessions, api_routers)
    return app


def _redacted(url: str) -> str:
    """A database URL without its password, for display."""
    head, sep, tail = url.partition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, credentials = head.partition("://")
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{tail}"
