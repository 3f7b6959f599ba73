"""Studio sign-in: the workspace token once, then a signed session cookie, CSRF tokens and one-time links.

* The session cookie (``modelport_studio``) holds ``<nonce>.<expiry>.<signature>``: an HMAC-SHA256 of the
  nonce and expiry keyed with the workspace token, so it needs no server-side table, survives a control
  plane restart and stops working when the workspace token is replaced. It is ``HttpOnly`` (no script
  reads it), ``SameSite=Strict`` (no other site's page sends it) and lasts ``SESSION_S`` seconds.
* Every state-changing request made with the cookie carries ``X-CSRF-Token``: another HMAC of the
  session's nonce, which the page gets in a ``<meta>`` tag (the synchronizer-token pattern; OWASP's
  "signed double submit"). Requests with the workspace token as a bearer token need none: a browser
  never adds that header on its own.
* ``modelport studio`` asks for a one-time link: a random code, redeemable once within ``LINK_S``
  seconds, kept in memory (a restarted control plane forgets unused links; the command makes a new one).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time

COOKIE = "modelport_studio"
CSRF_HEADER = "X-CSRF-Token"
SESSION_S = 12 * 3600
LINK_S = 300
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class StudioSessions:
    """Issues and checks Studio sessions for one workspace token (``token``: the workspace token's text)."""

    def __init__(self, token: str, clock=time.time):
        self._key = token.encode()
        self._clock = clock
        self._links: dict[str, float] = {}  # one-time code -> expiry (epoch seconds)
        self._lock = threading.Lock()

    def token_matches(self, given: str) -> bool:
        """Whether ``given`` is the workspace token (constant-time)."""
        return hmac.compare_digest(given.strip().encode(), self._key)

    def new_session(self) -> str:
        """A cookie value for a new session, valid ``SESSION_S`` seconds."""
        nonce, expiry = secrets.token_urlsafe(16), int(self._clock()) + SESSION_S
        return f"{nonce}.{expiry}.{self._sign('session', nonce, str(expiry))}"

    def session_nonce(self, cookie: str | None) -> str | None:
        """The nonce of a valid, unexpired session cookie; None for a missing, forged or expired one."""
        nonce, _, rest = (cookie or "").partition(".")
        expiry, _, signature = rest.partition(".")
        if not (nonce and expiry.isdigit() and signature):
            return None
        if not hmac.compare_digest(signature, self._sign("session", nonce, expiry)):
            return None
        return nonce if int(expiry) > self._clock() else None

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
