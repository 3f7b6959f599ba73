"""What every Studio route shares: the session checks, the templates, the security headers and the
version in asset URLs.

Pages and assets need a Studio session (``session.StudioSessions``); without one a page redirects to the
sign-in form (``SignInRequired``) and anything else answers 401.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from .. import __version__
from ..api.context import Context
from ..errors import Forbidden, NotFound, Unauthorized
from .session import CSRF_HEADER, SAFE_METHODS, StudioSessions

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


def _asset_version() -> str:
    """A hash of every static file: asset URLs carry it, so a browser may cache them and never serves stale ones."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


ASSET_VERSION = _asset_version()


class SignInRequired(Exception):
    """A page was asked for without a Studio session: answered with a redirect to the sign-in form."""

    def __init__(self, path: str):
        self.path = path


def sessions(request: Request) -> StudioSessions:
    """The app's Studio sessions."""
    return request.app.state.studio_sessions


def context(request: Request) -> Context:
    """The app's Context (store, artifacts, deployments, operations)."""
    return request.app.state.context


def session_cookie(request: Request) -> str | None:
    """The request's Studio session cookie (this workspace's), if any."""
    return request.cookies.get(sessions(request).cookie_name)


def page_session(request: Request) -> str:
    """Dependency of pages: the session's nonce; SignInRequired (a redirect to sign in) without a session."""
    nonce = sessions(request).session_nonce(session_cookie(request))
    if nonce is None:
        raise SignInRequired(request.url.path)
    return nonce


def asset_session(request: Request) -> str:
    """Dependency of assets and JSON: the session's nonce; Unauthorized without a session."""
    nonce = sessions(request).session_nonce(session_cookie(request))
    if nonce is None:
        raise Unauthorized("sign in to Studio first (open /studio/login, or run 'modelport studio')")
    return nonce


def api_session(request: Request) -> None:
    """Dependency of the control plane API as Studio's pages call it (``/studio/api/v1``): a Studio session; a
    change also needs the page's CSRF token and must come from this server's own pages."""
    nonce = asset_session(request)
    if request.method in SAFE_METHODS:
        return
    if not (_same_origin(request) and sessions(request).csrf_matches(nonce, request.headers.get(CSRF_HEADER))):
        raise Forbidden(f"a change made from Studio needs the page's CSRF token ({CSRF_HEADER}) and must come from "
                        "this control plane's own pages: reload the page and try again")


def _same_origin(request: Request) -> bool:
    """Whether a browser request comes from this server's own pages: its ``Origin`` (browsers send it on every
    state-changing fetch) is this server's scheme, host and port, and ``Sec-Fetch-Site`` (when sent) says
    same-origin."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host', '')}":
        return False
    return request.headers.get("sec-fetch-site", "same-origin") == "same-origin"


def page(request: Request, template: str, values: dict, status_code: int = 200) -> Response:
    """``template`` rendered with ``values``, never cached, with the security headers."""
    response = TEMPLATES.TemplateResponse(request, template, values, status_code=status_code)
    response.headers.update({**SECURITY_HEADERS, "Cache-Control": "no-store"})
    return response


def render(request: Request, template: str, nonce: str, section: str, status_code: int = 200, **values) -> Response:
    """A signed-in page: ``template`` with the navigation (``section`` current), the session's CSRF token and
    ``values``."""
    values.update(nav=NAV, section=section, csrf=sessions(request).csrf_token(nonce), asset_version=ASSET_VERSION,
                  workspace=context(request).workspace.name, version=__version__)
    return page(request, template, values, status_code)


def missing(request: Request, nonce: str, section: str, err: NotFound) -> Response:
    """A 404 page naming what is missing (the store's message), with a link back to its list."""
    href, label = next((h, text) for key, h, text in NAV if key == section)
    return render(request, "missing.html", nonce, section, status_code=404, message=str(err), back_href=href,
                  back_label=label.lower())
