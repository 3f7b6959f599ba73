"""Issue 7, fault 3: no request disables a replica. Real runtime processes with one run() slot each,
so a run thread that died would leave the next request waiting (503 after the queue wait)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import script

JSON = {"Content-Type": "application/json"}
RUN_FAILED = {"message": "An unexpected error occurred in scoring script. Check the logs for more info."}
INTERNAL = {"message": "An unexpected internal error occurred. Check the logs for more info."}
ONE_SLOT = {"MODELPORT_MAX_CONCURRENT_REQUESTS": "1", "MODELPORT_MAX_QUEUE_WAIT_MS": "2000"}
ISSUE_BODY = b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


@pytest.fixture(scope="module")
def plain(start_runtime):
    return start_runtime("--entry-script", script("score_hostile.py"), env=ONE_SLOT)


@pytest.fixture(scope="module")
def schema(start_runtime):
    return start_runtime("--entry-script", script("score_schema_hostile.py"), env=ONE_SLOT)


def post(server, body: bytes) -> httpx.Response:
    return httpx.post(f"{server.url}/score", content=body, headers=JSON, timeout=30)


def assert_still_serving(server, body: bytes = b'{"kind": "ok"}') -> None:
    after = post(server, body)
    assert after.status_code == 200, after.text


def test_the_issue_body_is_400_naming_the_nesting_limit(schema):
    response = post(schema, ISSUE_BODY)
    assert response.status_code == 400
    assert response.json() == {"message": "POST body could not be decoded as JSON: JSON is nested deeper than "
                                          "the nesting limit of 1024 levels. Send flatter data."}
    assert response.headers["x-ms-run-function-failed"] == "False"
    assert_still_serving(schema, b'{"data": 2.5}')


def test_the_issue_body_reaches_an_undecorated_run_as_a_string(plain):
    # As in azmlinfsrv: an undecorated run() gets the body as a str; its own json.loads raising
    # RecursionError is a run() failure, answered 500, and the thread lives on.
    response = post(plain, ISSUE_BODY)
    assert (response.status_code, response.json()) == (500, RUN_FAILED)
    assert_still_serving(plain)


def test_a_query_value_nested_too_deep_is_400(schema):
    response = httpx.get(f"{schema.url}/score", params={"data": "[" * 3000 + "]" * 3000}, timeout=30)
    assert response.status_code == 400
    assert "nesting limit of 1024 levels" in response.json()["message"]
    assert_still_serving(schema, b'{"data": 2.5}')


@pytest.mark.parametrize("kind", ["system_exit", "keyboard_interrupt", "base_exception", "recursion"])
def test_run_raising_any_base_exception_is_500_and_the_replica_keeps_serving(plain, kind):
    response = post(plain, json.dumps({"kind": kind}).encode())
    assert (response.status_code, response.json()) == (500, RUN_FAILED)
    assert response.headers["x-ms-run-function-failed"] == "True"
    assert_still_serving(plain)
    assert plain.proc.poll() is None


@pytest.mark.parametrize("value", ["decorator-value-error", "decorator-keyboard-interrupt", "decorator-system-exit"])
def test_a_decorator_raising_is_500_and_the_replica_keeps_serving(schema, value):
    response = post(schema, json.dumps({"data": value}).encode())
    assert (response.status_code, response.json()) == (500, RUN_FAILED)
    assert_still_serving(schema, b'{"data": 2.5}')


def test_a_result_nested_too_deep_is_500_with_a_message(plain):
    response = post(plain, b'{"kind": "deep_result"}')
    assert (response.status_code, response.json()) == (500, INTERNAL)
    assert response.headers["x-ms-run-function-failed"] == "False"  # as the reference's A9 (encoding error)
    assert_still_serving(plain)
    assert "nested deeper than the JSON nesting limit of 1024 levels" in plain.log()


def test_the_same_worker_served_everything(plain):
    pids = {post(plain, b'{"kind": "ok"}').json()["pid"] for _ in range(3)}
    assert len(pids) == 1
    assert "starting a replacement" not in plain.log()
