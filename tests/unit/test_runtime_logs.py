"""Replica logging: a logging.json in the app root (as azmlinfsrv), quiet probes, and print() capture."""

from __future__ import annotations

import io
import json
import logging

import pytest

from modelport.runtime import logs


@pytest.fixture(autouse=True)
def restore_logging():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    access = logging.getLogger(logs.ACCESS_LOGGER)
    access.handlers[:] = []
    access.setLevel(logging.NOTSET)
    access.propagate = True
    root.handlers[:], root.level = saved
    logs._update_access()


class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(f"{record.levelname} {record.name} {record.getMessage()}")



def test_logging_json_in_the_app_root_is_applied(tmp_path, capsys):
    logs.configure("INFO")
    existing = logging.getLogger("modelport.test.existing")  # a logger made before the file is applied
    (tmp_path / "logging.json").write_text(json.dumps({
        "version": 1,
        "handlers": {"out": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}},
        "loggers": {"modelport.access": {"level": "WARNING"}, "user": {"level": "DEBUG", "handlers": ["out"]}},
    }))
    assert logs.apply_logging_json(None, tmp_path) == tmp_path / "logging.json"
    assert logging.getLogger("user").level == logging.DEBUG
    assert not existing.disabled  # disable_existing_loggers defaults to false here
    collect = Collect()
    logging.getLogger(logs.ACCESS_LOGGER).addHandler(collect)
    logs.access("POST", "/score", 200, 1.0, 2, "id-1", 0.5)
    assert collect.lines == []  # the file raised modelport.access to WARNING


def test_logging_json_can_route_access_lines_to_its_own_handler(tmp_path):
    logs.configure("INFO")
    (tmp_path / "logging.json").write_text(json.dumps({
        "version": 1, "handlers": {"mine": {"class": "logging.NullHandler"}},
        "root": {"level": "INFO", "handlers": ["mine"]},
    }))
    logs.apply_logging_json(tmp_path)
    collect = Collect()
    logging.getLogger().addHandler(collect)
    logs.access("POST", "/score", 200, 1.0, 2, "id-2", None)
    assert collect.lines == ["INFO modelport.access method=POST path=/score status=200 duration_ms=1.000 run_ms=- "
                             "bytes=2 request_id=id-2"]


def test_an_invalid_logging_json_names_the_file(tmp_path):
    (tmp_path / "logging.json").write_text('{"version": 1, "handlers": {"x": {"class": "no.such.Handler"}}}')
    with pytest.raises(ValueError, match="logging.json is not a valid logging configuration"):
        logs.apply_logging_json(tmp_path)
    assert logs.apply_logging_json(tmp_path / "absent") is None


def test_probe_access_lines_only_at_debug_level():
    logs.configure("INFO")
    assert not logs.debug_access_enabled()
    logs.configure("DEBUG")
    assert logs.debug_access_enabled()


def test_a_handler_writing_to_the_captured_stdout_does_not_loop():
    real = io.StringIO()
    captured = logs.PrintToLog("modelport.print.test", stream=real)
    logger = logging.getLogger("modelport.print.test")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logging.StreamHandler(captured)  # as logging.basicConfig(stream=sys.stdout) in init() does
    logger.addHandler(handler)
    try:
        captured.write("hello\n")  # print("hello") with stdout captured
    finally:
        logger.removeHandler(handler)
    assert real.getvalue() == "hello\n"  # the record's own line went to the real stdout, once
