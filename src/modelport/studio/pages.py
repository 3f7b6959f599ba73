"""Studio's pages, server-rendered from the store and the operations the API routes use, and the JSON their
scripts poll.

Changes are not made here: the pages' scripts call the control plane API (``/api/v1``) with the session
cookie and the page's CSRF token, so Studio changes things through exactly the operations the CLI and SDK
use.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.background import BackgroundTask

from ..api.routes_services import service_view
from ..errors import NotFound
from ..store.artifacts import read_manifest
from . import assets, signin, views
from .compression import StudioCompression
from .session import StudioSessions
from .web import SignInRequired, api_session, asset_session, context, missing, page_session, render

router = APIRouter(include_in_schema=False)


# --- pages -------------------------------------------------------------------------------------------------------

@router.get("/studio")
def studio_root() -> Response:
    return RedirectResponse("/studio/", status_code=308)


@router.get("/studio/", response_class=HTMLResponse)
def overview_page(request: Request, nonce: str = Depends(page_session)) -> Response:
    return render(request, "overview.html", nonce, "overview",
                   **views.overview(context(request), request.app.state.compute))


@router.get("/studio/models", response_class=HTMLResponse)
def models_page(request: Request, nonce: str = Depends(page_session)) -> Response:
    return render(request, "models.html", nonce, "models", models=views.models(context(request)))


@router.get("/studio/models/{name}/{version}/download")
def download_model(name: str, version: int, request: Request, _nonce: str = Depends(asset_session)) -> Response:
    """The model's file, or its folder as a zip."""
    ctx = context(request)
    record = ctx.store.get_model(name, version)
    if record.artifact_kind == "file":
        return FileResponse(ctx.artifacts.blob_path(record.artifact_sha256), filename=record.artifact_name,
                            media_type="application/octet-stream")
    handle, archive_path = tempfile.mkstemp(prefix="modelport-download-", suffix=".zip")
    os.close(handle)
    with zipfile.ZipFile(archive_path, "w", zipfile.ZIP_STORED) as archive:  # weights rarely compress
        for entry in read_manifest(ctx.artifacts, record.artifact_sha256):
            archive.write(ctx.artifacts.blob_path(entry["sha256"]), f"{record.artifact_name}/{entry['path']}")
    return FileResponse(archive_path, filename=f"{record.name}-{record.version}.zip", media_type="application/zip",
                        background=BackgroundTask(os.unlink, archive_path))


@router.get("/studio/environments", response_class=HTMLResponse)
def environments_page(request: Request, nonce: str = Depends(page_session)) -> Response:
    listed = views.environments(context(request))
    return render(request, "environments.html", nonce, "environments", environments=listed)


@router.get("/studio/environments/{name}/{version}", response_class=HTMLResponse)
def environment_page(name: str, version: str, request: Request, nonce: str = Depends(page_session)) -> Response:
    try:
        env = views.environment(context(request), name, version)
    except NotFound as err:
        return missing(request, nonce, "environments", err)
    return render(request, "environment.html", nonce, "environments", env=env)


@router.get("/studio/services", response_class=HTMLResponse)
def services_page(request: Request, nonce: str = Depends(page_session)) -> Response:
    return render(request, "services.html", nonce, "services", services=views.services(context(request)))


@router.get("/studio/services/{name}", response_class=HTMLResponse)
def service_page(name: str, request: Request, nonce: str = Depends(page_session)) -> Response:
    ctx = context(request)
    try:
        record = ctx.store.get_service(name)
    except NotFound as err:
        return missing(request, nonce, "services", err)
    return render(request, "service.html", nonce, "services", service=service_view(ctx, record))


@router.get("/studio/computes", response_class=HTMLResponse)
def computes_page(request: Request, nonce: str = Depends(page_session)) -> Response:
    return render(request, "computes.html", nonce, "computes", computes=views.computes(request.app.state.compute))


# --- what the pages' scripts poll ------------------------------------------------------------------------------

@router.get("/studio/api/services/{name}/history")
def service_history(name: str, request: Request, since: float | None = None,
                    _nonce: str = Depends(asset_session)) -> JSONResponse:
    """The endpoint's plotted figures (``MetricsHistory.series``): the last hour, or the points after ``since``
    (epoch seconds)."""
    context(request).store.get_service(name)  # NotFound for a service that does not exist
    return JSONResponse(request.app.state.metrics_history.series(name, since))


@router.get("/studio/api/environments/{name}/{version}/build")
def environment_build(name: str, version: str, request: Request, _nonce: str = Depends(asset_session)) -> JSONResponse:
    """The build state and log tail of an environment version."""
    return JSONResponse(views.environment_build(context(request), name, version))


def install(app: FastAPI, sessions: StudioSessions, api_routers: list[APIRouter]) -> None:
    """Serve Studio from ``app``: its routes; the control plane API's ``api_routers`` again under
    ``/studio/api/v1`` for the pages' scripts (the same handlers, with the session cookie and CSRF instead of
    the bearer token: the cookie is never sent to ``/api/v1``); the redirect to sign in for pages asked for
    without a session."""
    app.state.studio_sessions = sessions
    app.add_middleware(StudioCompression)
    for routes in (signin.router, assets.router, router):
        app.include_router(routes)
    for routes in api_routers:
        app.include_router(routes, prefix="/studio/api/v1", dependencies=[Depends(api_session)],
                           include_in_schema=False)

    @app.exception_handler(SignInRequired)
    async def _sign_in(_request: Request, err: SignInRequired) -> Response:
        return RedirectResponse(f"/studio/login?next={quote(err.path)}", status_code=303)

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse("/studio/", status_code=307)
