"""Studio's sign-in: the form (the workspace token), one-time links and sign-out."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from ..errors import Forbidden
from .session import COOKIE_PATH, SESSION_S
from .web import SECURITY_HEADERS, asset_session, context, page, session_cookie, sessions

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a Studio path of this server only (never another site)."""
    return target if target and target.startswith("/studio/") and not target.startswith("//") else "/studio/"


def _signed_in(request: Request, target: str) -> Response:
    response = RedirectResponse(_safe_next(target), status_code=303)
    response.set_cookie(sessions(request).cookie_name, sessions(request).new_session(), max_age=SESSION_S,
                        path=COOKIE_PATH, httponly=True, samesite="strict", secure=request.url.scheme == "https")
    response.headers.update(SECURITY_HEADERS)
    return response


def _login_form(request: Request, target: str, error: str | None = None, status_code: int = 200) -> Response:
    return page(request, "login.html", {"next": _safe_next(target), "error": error,
                                        "workspace": context(request).workspace.name}, status_code)


@router.get("/studio/login")
def login_page(request: Request, code: str | None = None, next: str | None = None) -> Response:
    """The sign-in form; with ``code`` (a one-time link from ``modelport studio``) signs in at once."""
    if code is not None:
        if sessions(request).redeem_link_code(code):
            return _signed_in(request, next or "/studio/")
        return _login_form(request, next or "/studio/", "This sign-in link was used already or has expired: run "
                           "'modelport studio' for a new one, or paste the workspace token.", 401)
    return _login_form(request, next or "/studio/")


@router.post("/studio/login")
def login(request: Request, token: str = Form(""), next: str = Form("/studio/")) -> Response:
    """Sign in with the workspace token: sets the session cookie and goes to ``next``."""
    if not sessions(request).token_matches(token):
        return _login_form(request, next, "That is not this workspace's token.", 401)
    return _signed_in(request, next)


@router.post("/studio/logout")
def logout(request: Request, csrf_token: str = Form(""), nonce: str = Depends(asset_session)) -> Response:
    """Sign out: the session ends here and in every copy of its cookie (the form carries the page's CSRF token)."""
    if not sessions(request).csrf_matches(nonce, csrf_token):
        raise Forbidden("sign-out needs the page's CSRF token: reload the page and sign out again")
    sessions(request).sign_out(session_cookie(request))
    response = RedirectResponse("/studio/login", status_code=303)
    response.delete_cookie(sessions(request).cookie_name, path=COOKIE_PATH, httponly=True, samesite="strict")
    return response
