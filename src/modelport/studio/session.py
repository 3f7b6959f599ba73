"""Studio sign-in: the workspace token once, then a signed session cookie, CSRF tokens and one-time links.

* The session cookie holds ``<nonce>.<issued>.<signature>`` (``issued``: epoch milliseconds): an HMAC-SHA256
  of the nonce and issue time keyed with the workspace token, so it survives a control plane restart and stops
  working when the workspace token is replaced. It is ``HttpOnly`` (no script reads it), ``SameSite=Strict``
  (no other site's page sends it), ``Path=/studio`` (a browser sends it to Studio's paths only: never to a
  scoring front end, which shares the host; cookies do not tell ports apart) and lasts ``SESSION_S`` seconds.
  Its name carries a tag of the workspace (``cookie_name``), so two workspaces' Studios on one host do not
  sign each other out.
* Signing out revokes the session; ``end_all`` ends every session issued so far. Both are kept in
  ``state_path`` (mode 0600), so a restarted control plane still refuses them.
* Every state-changing request made with the cookie carries ``X-CSRF-Token``: another HMAC of the
  session's nonce, which the page gets in a ``<meta>`` tag (the synchronizer-token pattern).
* ``modelport studio`` asks for a one-time link: a random code, redeemable once within ``LINK_S``
  seconds, kept in memory (a restarted control plane forgets unused links; the command makes a new one).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from pathlib import Path

CSRF_HEADER = "X-CSRF-Token"
COOKIE_PATH = "/studio"
SESSION_S = 12 * 3600
LINK_S = 300
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class StudioSessions:
    """Issues and checks Studio sessions for one workspace token (``token``: the workspace token's text);
    revocations are kept in ``state_path`` (JSON, created 0600 on the first sign-out)."""

    def __init__(self, token: str, state_path: Path, clock=time.time):
        self._key = token.encode()
        self._clock = clock
        self._state_path = Path(state_path)
        self._links: dict[str, float] = {}  # one-time code -> expiry (epoch seconds)
        self._lock = threading.Lock()
        self.cookie_name = f"modelport_studio_{self._sign('cookie-name')[:10]}"
        state = self._load()
        self._not_before_ms: int = state.get("not_before_ms", 0)  # sessions issued until then are ended
        self._revoked: dict[str, float] = state.get("revoked", {})  # nonce -> its expiry (epoch seconds)

    def token_matches(self, given: str) -> bool:
        """Whether ``given`` is the workspace token (constant-time)."""
        return hmac.compare_digest(given.strip().encode(), self._key)

    def new_session(self) -> str:
        """A cookie value for a new session, valid ``SESSION_S`` seconds."""
        nonce, issued = secrets.token_urlsafe(16), str(int(self._clock() * 1000))
        return f"{nonce}.{issued}.{self._sign('session', nonce, issued)}"

    def session_nonce(self, cookie: str | None) -> str | None:
        """The nonce of a valid session cookie; None for a missing, forged, expired, signed-out or ended one."""
        nonce, _, rest = (cookie or "").partition(".")
        issued, _, signature = rest.partition(".")
        if not (nonce and issued.isdigit() and signature):
            return None
        if not hmac.compare_digest(signature, self._sign("session", nonce, issued)):
            return None
        if _expiry(issued) <= self._clock() or int(issued) <= self._not_before_ms or nonce in self._revoked:
            return None
        return nonce

    def sign_out(self, cookie: str | None) -> None:
        """Revoke the session of ``cookie`` (nothing for an invalid one)."""
        nonce = self.session_nonce(cookie)
        if nonce is not None:
            with self._lock:
                now = self._clock()
                self._revoked = {n: e for n, e in self._revoked.items() if e > now}
                self._revoked[nonce] = _expiry(cookie.split(".")[1])
                self._save()

    def end_all(self) -> None:
        """End every session issued until now: each browser signs in again."""
        with self._lock:
            self._not_before_ms, self._revoked = int(self._clock() * 1000), {}
            self._save()

    def csrf_token(self, nonce: str) -> str:
        """The CSRF token of the session ``nonce``: what its page sends as ``X-CSRF-Token``."""
        return self._sign("csrf", nonce)

    def csrf_matches(self, nonce: str, given: str | None) -> bool:
        """Whether ``given`` is the CSRF token of the session ``nonce`` (constant-time)."""
        return hmac.compare_digest((given or "").encode(), self.csrf_token(nonce).encode())

    def new_link_code(self) -> str:
        """A code for a one-time sign-in link, valid once within ``LINK_S`` seconds."""
        code, now = secrets.token_urlsafe(24), self._clock()
        with self._lock:
            self._links = {c: t for c, t in self._links.items() if t > now}
            self._links[code] = now + LINK_S
        return code

    def redeem_link_code(self, code: str) -> bool:
        """True once for a code ``new_link_code`` gave, if it has not expired; False ever after."""
        with self._lock:
            expiry = self._links.pop(code, 0.0)
        return expiry > self._clock()

    def _sign(self, purpose: str, *parts: str) -> str:
        message = "|".join((purpose, *parts)).encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def _load(self) -> dict:
        try:
            return json.loads(self._state_path.read_text())
        except (OSError, ValueError):
            return {}

    def _save(self) -> None:
        self._state_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._state_path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            json.dump({"not_before_ms": self._not_before_ms, "revoked": self._revoked}, out)
        os.replace(temporary, self._state_path)


def _expiry(issued_ms: str) -> float:
    """When a session issued at ``issued_ms`` (epoch milliseconds, as text) ends, in epoch seconds."""
    return int(issued_ms) / 1000 + SESSION_S
