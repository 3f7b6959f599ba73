"""Studio's routes: sign-in, the server-rendered pages, their assets and the JSON their scripts poll.

Pages and assets need a Studio session (``session.StudioSessions``); without one a page redirects to the
sign-in form and anything else answers 401. Changes are not made here: the pages' scripts call the
control plane API (``/api/v1``) with the session cookie and the page's CSRF token, so Studio changes
things through exactly the operations the CLI and SDK use.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zipfile
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from .. import __version__
from ..api.context import Context
from ..api.routes_services import service_view
from ..errors import Forbidden, NotFound, Unauthorized
from ..store.artifacts import read_manifest
from . import views
from .session import COOKIE, SESSION_S, StudioSessions

STATIC = Path(__file__).parent / "static"
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
# No inline script anywhere: every script is a file of ours; uPlot sets element styles from script.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                               "form-action 'self'",
    "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
}
NAV = [("overview", "/studio/", "Overview"), ("models", "/studio/models", "Models"),
       ("environments", "/studio/environments", "Environments"),
       ("services", "/studio/services", "Endpoints and services"), ("computes", "/studio/computes", "Compute targets")]

router = APIRouter(include_in_schema=False)


class SignInRequired(Exception):
    """A page was asked for without a Studio session: answered with a redirect to the sign-in form."""

    def __init__(self, path: str):
        self.path = path


def _sessions(request: Request) -> StudioSessions:
    return request.app.state.studio_sessions


def _ctx(request: Request) -> Context:
    return request.app.state.context


def page_session(request: Request) -> str:
    """Dependency of pages: the session's nonce; SignInRequired (a redirect to sign in) without a session."""
    nonce = _sessions(request).session_nonce(request.cookies.get(COOKIE))
    if nonce is None:
        raise SignInRequired(request.url.path)
    return nonce


def asset_session(request: Request) -> str:
    """Dependency of assets and JSON: the session's nonce; Unauthorized without a session."""
    nonce = _sessions(request).session_nonce(request.cookies.get(COOKIE))
    if nonce is None:
        raise Unauthorized("sign in to Studio first (open /studio/login, or run 'modelport studio')")
    return nonce


def _render(request: Request, template: str, nonce: str, section: str, status_code: int = 200, **values) -> Response:
    values.update(nav=NAV, section=section, csrf=_sessions(request).csrf_token(nonce), asset_version=ASSET_VERSION,
                  workspace=_ctx(request).workspace.name, version=__version__)
    response = TEMPLATES.TemplateResponse(request, template, values, status_code=status_code)
    response.headers.update({**SECURITY_HEADERS, "Cache-Control": "no-store"})
    return response


def _missing(request: Request, nonce: str, section: str, err: NotFound) -> Response:
    """A 404 page naming what is missing (the store's message), with a link back to its list."""
    href, label = next((h, text) for key, h, text in NAV if key == section)
    return _render(request, "missing.html", nonce, section, status_code=404, message=str(err), back_href=href,
                   back_label=label.lower())


# --- sign-in ---------------------------------------------------------------------------------------------------

def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a Studio path of this server only (never another site)."""
    return target if target and target.startswith("/studio/") and not target.startswith("//") else "/studio/"


def _signed_in(request: Request, target: str) -> Response:
    response = RedirectResponse(_safe_next(target), status_code=303)
    response.set_cookie(COOKIE, _sessions(request).new_session(), max_age=SESSION_S, path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    response.headers.update(SECURITY_HEADERS)
    return response


def _login_form(request: Request, target: str, error: str | None = None, status_code: int = 200) -> Response:
    response = TEMPLATES.TemplateResponse(request, "login.html", {
        "next": _safe_next(target), "error": error, "workspace": _ctx(request).workspace.name,
        "token_path": str(_ctx(request).workspace.token_path)}, status_code=status_code)
    response.headers.update({**SECURITY_HEADERS, "Cache-Control": "no-store"})
    return response


@router.get("/studio/login")
def login_page(request: Request, code: str | None = None, next: str | None = None) -> Response:
    """The sign-in form; with ``code`` (a one-time link from ``modelport studio``) signs in at once."""
    if code is not None:
        if _sessions(request).redeem_link_code(code):
            return _signed_in(request, next or "/studio/")
        return _login_form(request, next or "/studio/", "This sign-in link was used already or has expired: run "
                           "'modelport studio' for a new one, or paste the workspace token.", 401)
    return _login_form(request, next or "/studio/")


@router.post("/studio/login")
def login(request: Request, token: str = Form(""), next: str = Form("/studio/")) -> Response:
    """Sign in with the workspace token: sets the session cookie and goes to ``next``."""
    if not _sessions(request).token_matches(token):
        return _login_form(request, next, "That is not this workspace's token.", 401)
    return _signed_in(request, next)


@router.post("/studio/logout")
def logout(request: Request, csrf_token: str = Form(""), nonce: str = Depends(asset_session)) -> Response:
    """Sign out (the form carries the page's CSRF token)."""
    if not _sessions(request).csrf_matches(nonce, csrf_token):
        raise Forbidden("sign-out needs the page's CSRF token: reload the page and sign out again")
    response = RedirectResponse("/studio/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


# --- pages -------------------------------------------------------------------------------------------------------

@router.get("/studio")
def studio_root() -> Response:
    return RedirectResponse("/studio/", status_code=308)


@router.get("/studio/", response_class=HTMLResponse)
def overview_page(request: Request, nonce: str = Depends(page_session)) -> Response:
    return _render(request, "overview.html", nonce, "overview",
                   **views.overview(_ctx(request), request.app.state.compute))


@router.get("/studio/models", response_class=HTMLResponse)
def models_page(request: Request, nonce: str = Depends(page_session)) -> Response:
    return _render(request, "models.html", nonce, "models", models=views.models(_ctx(request)))


@router.get("/studio/models/{name}/{version}/download")
def download_model(name: str, version: int, request: Request, _nonce: str = Depends(asset_session)) -> Response:
    """The model's file, or its folder as a zip."""
    ctx = _ctx(request)
    record = ctx.store.get_model(name, version)
    if record.artifact_kind == "file":
        return FileResponse(ctx.artifacts.blob_path(record.artifact_sha256), filename=record.artifact_name,
                            media_type="application/octet-stream")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in read_manifest(ctx.artifacts, record.artifact_sha256):
            archive.write(ctx.artifacts.blob_path(entry["sha256"]), f"{record.artifact_name}/{entry['path']}")
    filename = quote(f"{record.name}-{record.version}.zip")
    return Response(buffer.getvalue(), media_type="application/zip",
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{filename}"})


@router.get("/studio/environments", response_class=HTMLResponse)
def environments_page(request: Request, nonce: str = Depends(page_session)) -> Response:
    return _render(request, "environments.html", nonce, "environments", environments=views.environments(_ctx(request)))


@router.get("/studio/environments/{name}/{version}", response_class=HTMLResponse)
def environment_page(name: str, version: str, request: Request, nonce: str = Depends(page_session)) -> Response:
    try:
        env = views.environment(_ctx(request), name, version)
    except NotFound as err:
        return _missing(request, nonce, "environments", err)
    return _render(request, "environment.html", nonce, "environments", env=env)


@router.get("/studio/services", response_class=HTMLResponse)
def services_page(request: Request, nonce: str = Depends(page_session)) -> Response:
    return _render(request, "services.html", nonce, "services", services=views.services(_ctx(request)))


@router.get("/studio/services/{name}", response_class=HTMLResponse)
def service_page(name: str, request: Request, nonce: str = Depends(page_session)) -> Response:
    ctx = _ctx(request)
    try:
        record = ctx.store.get_service(name)
    except NotFound as err:
        return _missing(request, nonce, "services", err)
    return _render(request, "service.html", nonce, "services", service=service_view(ctx, record))


@router.get("/studio/computes", response_class=HTMLResponse)
def computes_page(request: Request, nonce: str = Depends(page_session)) -> Response:
    return _render(request, "computes.html", nonce, "computes", computes=views.computes(request.app.state.compute))


# --- what the pages' scripts poll ------------------------------------------------------------------------------

@router.get("/studio/api/services/{name}/history")
def service_history(name: str, request: Request, since: float | None = None,
                    _nonce: str = Depends(asset_session)) -> JSONResponse:
    """The endpoint's plotted figures (``MetricsHistory.series``): the last hour, or the points after ``since``
    (epoch seconds)."""
    _ctx(request).store.get_service(name)  # NotFound for a service that does not exist
    return JSONResponse(request.app.state.metrics_history.series(name, since))


@router.get("/studio/api/environments/{name}/{version}/build")
def environment_build(name: str, version: str, request: Request, _nonce: str = Depends(asset_session)) -> JSONResponse:
    """The build state and log tail of an environment version."""
    return JSONResponse(views.environment_build(_ctx(request), name, version))


# --- assets ------------------------------------------------------------------------------------------------------

def _asset_version() -> str:
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


ASSET_VERSION = _asset_version()
TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml"}


@lru_cache(maxsize=32)
def _asset(relative: str) -> tuple[bytes, bytes]:
    """An asset's bytes and their gzip (read once; the package's files do not change while serving)."""
    data = (STATIC / relative).read_bytes()
    return data, gzip.compress(data, 9, mtime=0)


@router.get("/studio/static/{relative:path}")
def asset(relative: str, request: Request, _nonce: str = Depends(asset_session)) -> Response:
    """A file of ``studio/static`` (gzipped when the browser accepts it; cached a day: its URL names its version)."""
    path = (STATIC / relative).resolve()
    if STATIC.resolve() not in path.parents or not path.is_file() or path.suffix not in TYPES:
        raise NotFound(f"Studio has no asset {relative!r}")
    plain, zipped = _asset(str(path.relative_to(STATIC.resolve())))
    headers = {"Cache-Control": "private, max-age=86400", "Vary": "Accept-Encoding", **SECURITY_HEADERS}
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(zipped, media_type=TYPES[path.suffix], headers={**headers, "Content-Encoding": "gzip"})
    return Response(plain, media_type=TYPES[path.suffix], headers=headers)


def install(app: FastAPI, sessions: StudioSessions) -> None:
    """Serve Studio from ``app``: its routes, and the redirect to sign in for pages asked for without a session."""
    app.state.studio_sessions = sessions
    app.include_router(router)

    @app.exception_handler(SignInRequired)
    async def _sign_in(_request: Request, err: SignInRequired) -> Response:
        return RedirectResponse(f"/studio/login?next={quote(err.path)}", status_code=303)

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse("/studio/", status_code=307)
