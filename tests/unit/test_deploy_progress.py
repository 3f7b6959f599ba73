"""What wait_for_deployment(show_output=True) streams of a build log: only what this deployment's build wrote."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from modelport.errors import NotFound
from modelport.sdk import progress
from modelport.sdk.progress import BuildLog


@pytest.fixture(autouse=True)
def every_call_reads(monkeypatch):
    monkeypatch.setattr(progress, "BUILD_LOG_PERIOD_S", 0.0)


def header(ago_s: float) -> str:
    began = datetime.now(timezone.utc) - timedelta(seconds=ago_s)
    return f"===== {began.isoformat(timespec='seconds')} build of environment env (abc) ====="


def reader(texts: list[str]):
    def read() -> str:
        text = texts.pop(0)
        if isinstance(text, Exception):
            raise text
        return text
    return read


def test_a_build_begun_for_this_deployment_is_shown_from_its_first_line_then_only_what_it_adds():
    recent = header(2)
    first = "\n".join(["old line", header(600), "old build", recent, "$ uv pip install -r requirements.txt"])
    log = BuildLog(reader([first, first + "\nInstalled 12 packages", first + "\nInstalled 12 packages\ndone"]))
    assert log.new_lines() == [recent, "$ uv pip install -r requirements.txt"]
    assert log.new_lines() == ["Installed 12 packages"]
    assert log.new_lines() == ["done"]


def test_an_environment_built_before_is_not_news_and_a_later_build_is():
    old, now = "\n".join([header(3600), "$ uv pip install x", "ready"]), header(0)
    later = old + "\n" + now + "\n$ uv pip install y"
    log = BuildLog(reader([old, old, later]))
    assert log.new_lines() == []
    assert log.new_lines() == []
    assert log.new_lines() == [now, "$ uv pip install y"]


def test_a_tail_that_moved_on_gives_only_the_lines_after_the_ones_seen():
    log = BuildLog(reader(["\n".join(f"line {i}" for i in range(0, 5)), "\n".join(f"line {i}" for i in range(3, 9))]))
    log.new_lines()
    assert log.new_lines() == ["line 5", "line 6", "line 7", "line 8"]


def test_a_log_that_cannot_be_read_yet_shows_nothing_and_reading_goes_on():
    began = header(1)
    log = BuildLog(reader([NotFound("no service 'svc' yet"), "\n".join([began, "building"])]))
    assert log.new_lines() == []
    assert log.new_lines() == [began, "building"]
