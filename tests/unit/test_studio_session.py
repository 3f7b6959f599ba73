"""Studio sessions: signed cookies, sign-out and ending every session (kept across restarts), CSRF tokens and
one-time links (no processes; a fake clock)."""

from __future__ import annotations

import stat

from modelport.studio.session import LINK_S, SESSION_S, StudioSessions


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(tmp_path, token: str = "workspace-token", clock=None) -> StudioSessions:
    return StudioSessions(token, tmp_path / "studio-sessions.json", clock or Clock())


def test_a_session_cookie_is_accepted_until_it_expires(tmp_path):
    clock = Clock()
    sessions = make(tmp_path, clock=clock)
    cookie = sessions.new_session()
    nonce = sessions.session_nonce(cookie)
    assert nonce and cookie.startswith(nonce)
    clock.now += SESSION_S - 1
    assert sessions.session_nonce(cookie) == nonce
    clock.now += 2
    assert sessions.session_nonce(cookie) is None


def test_forged_or_altered_cookies_are_refused(tmp_path):
    sessions = make(tmp_path)
    nonce, issued, signature = sessions.new_session().split(".")
    for forged in ("", "x", f"{nonce}.{issued}", f"{nonce}.{int(issued) + 9999}.{signature}",
                   f"other.{issued}.{signature}", f"{nonce}.{issued}.{'0' * 64}", f"{nonce}.-1.{signature}"):
        assert sessions.session_nonce(forged) is None, forged


def test_a_new_workspace_token_ends_every_session_and_names_another_cookie(tmp_path):
    old, new = make(tmp_path, "old-token"), make(tmp_path, "new-token")
    assert new.session_nonce(old.new_session()) is None
    assert old.cookie_name != new.cookie_name and old.cookie_name.startswith("modelport_studio_")
    assert "old-token" not in old.cookie_name


def test_signing_out_ends_that_session_only_and_survives_a_restart(tmp_path):
    clock = Clock()
    sessions = make(tmp_path, clock=clock)
    leaving, staying = sessions.new_session(), sessions.new_session()
    sessions.sign_out(leaving)
    assert sessions.session_nonce(leaving) is None and sessions.session_nonce(staying)
    restarted = make(tmp_path, clock=clock)
    assert restarted.session_nonce(leaving) is None and restarted.session_nonce(staying)
    assert stat.S_IMODE((tmp_path / "studio-sessions.json").stat().st_mode) == 0o600


def test_ending_all_sessions_keeps_new_ones_and_survives_a_restart(tmp_path):
    clock = Clock()
    sessions = make(tmp_path, clock=clock)
    before = [sessions.new_session() for _ in range(3)]
    clock.now += 0.01
    sessions.end_all()
    clock.now += 0.01
    after = sessions.new_session()
    restarted = make(tmp_path, clock=clock)
    for checking in (sessions, restarted):
        assert [checking.session_nonce(c) for c in before] == [None] * 3
        assert checking.session_nonce(after)


def test_the_csrf_token_belongs_to_one_session(tmp_path):
    sessions = make(tmp_path)
    first, second = (sessions.session_nonce(sessions.new_session()) for _ in range(2))
    assert sessions.csrf_matches(first, sessions.csrf_token(first))
    assert not sessions.csrf_matches(first, sessions.csrf_token(second))
    assert not sessions.csrf_matches(first, None)
    assert not sessions.csrf_matches(first, "")


def test_a_one_time_link_works_once_and_only_in_time(tmp_path):
    clock = Clock()
    sessions = make(tmp_path, clock=clock)
    code = sessions.new_link_code()
    assert sessions.redeem_link_code(code)
    assert not sessions.redeem_link_code(code)
    late = sessions.new_link_code()
    clock.now += LINK_S + 1
    assert not sessions.redeem_link_code(late)
    assert not sessions.redeem_link_code("never-issued")


def test_the_workspace_token_check_ignores_surrounding_whitespace_only(tmp_path):
    sessions = make(tmp_path)
    assert sessions.token_matches(" workspace-token\n")
    assert not sessions.token_matches("workspace-toke")
    assert not sessions.token_matches("")
