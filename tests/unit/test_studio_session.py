"""Studio sessions: signed cookies, CSRF tokens and one-time links (no processes; a fake clock)."""

from __future__ import annotations

from modelport.studio.session import LINK_S, SESSION_S, StudioSessions


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_session_cookie_is_accepted_until_it_expires():
    clock = Clock()
    sessions = StudioSessions("workspace-token", clock)
    cookie = sessions.new_session()
    nonce = sessions.session_nonce(cookie)
    assert nonce and cookie.startswith(nonce)
    clock.now += SESSION_S - 1
    assert sessions.session_nonce(cookie) == nonce
    clock.now += 2
    assert sessions.session_nonce(cookie) is None


def test_forged_or_altered_cookies_are_refused():
    sessions = StudioSessions("workspace-token")
    nonce, expiry, signature = sessions.new_session().split(".")
    for forged in ("", "x", f"{nonce}.{expiry}", f"{nonce}.{int(expiry) + 9999}.{signature}",
                   f"other.{expiry}.{signature}", f"{nonce}.{expiry}.{'0' * 64}", f"{nonce}.-1.{signature}"):
        assert sessions.session_nonce(forged) is None, forged


def test_a_new_workspace_token_ends_every_session():
    cookie = StudioSessions("old-token").new_session()
    assert StudioSessions("new-token").session_nonce(cookie) is None


def test_the_csrf_token_belongs_to_one_session():
    sessions = StudioSessions("workspace-token")
    first, second = (sessions.session_nonce(sessions.new_session()) for _ in range(2))
    assert sessions.csrf_matches(first, sessions.csrf_token(first))
    assert not sessions.csrf_matches(first, sessions.csrf_token(second))
    assert not sessions.csrf_matches(first, None)
    assert not sessions.csrf_matches(first, "")


def test_a_one_time_link_works_once_and_only_in_time():
    clock = Clock()
    sessions = StudioSessions("workspace-token", clock)
    code = sessions.new_link_code()
    assert sessions.redeem_link_code(code)
    assert not sessions.redeem_link_code(code)
    late = sessions.new_link_code()
    clock.now += LINK_S + 1
    assert not sessions.redeem_link_code(late)
    assert not sessions.redeem_link_code("never-issued")


def test_the_workspace_token_check_ignores_surrounding_whitespace_only():
    sessions = StudioSessions("workspace-token")
    assert sessions.token_matches(" workspace-token\n")
    assert not sessions.token_matches("workspace-toke")
    assert not sessions.token_matches("")
