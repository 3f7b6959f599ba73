"""An undecorated run(raw_data) served by the real runtime process: transcript section A, request by request."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest

from tests.conftest import script

RUN_FAILED = {"message": "An unexpected error occurred in scoring script. Check the logs for more info."}


@pytest.fixture(scope="module")
def server(start_runtime):
    return start_runtime("--entry-script", script("score_plain.py"))


def post(server, body, content_type="application/json", **kwargs):
    headers = {"Content-Type": content_type, **kwargs.pop("headers", {})}
    return httpx.post(f"{server.url}/score", content=body, headers=headers, **kwargs)


def test_good_request_passes_body_as_str(server):
    response = post(server, b'{"data": [[1,2,3]]}')
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"received": {"data": [[1, 2, 3]]}, "model": "loaded", "type_of_input": "str"}
    assert response.headers["x-ms-run-function-failed"] == "False"
    assert re.fullmatch(r"\d+\.\d{3}", response.headers["x-ms-run-fn-exec-ms"])
    uuid.UUID(response.headers["x-request-id"])
    assert response.headers["x-ms-request-id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("body", [b'{"data": [1,2', b'{"kind": "boom"}', b""], ids=["bad-json", "raises", "empty"])
def test_run_failure_is_500_without_traceback(server, body):
    response = post(server, body)
    assert response.status_code == 500
    assert response.json() == RUN_FAILED
    assert response.headers["x-ms-run-function-failed"] == "True"
    assert "Traceback" not in response.text


def test_traceback_goes_to_the_log(server):
    post(server, b'{"kind": "boom"}')
    assert "ValueError: user error from run()" in server.log()


def test_health_probe(server):
    response = httpx.get(f"{server.url}/")
    assert (response.status_code, response.text) == (200, "Healthy")
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "x-request-id" in response.headers


def test_swagger_versions(server):
    v2 = httpx.get(f"{server.url}/swagger.json").json()
    assert v2["swagger"] == "2.0"
    assert v2["definitions"]["ServiceInput"] == {"type": "object", "example": {}}
    assert v2["info"]["title"] == "ML service"
    assert httpx.get(f"{server.url}/swagger.json?version=3").json()["openapi"] == "3.0.3"
    assert httpx.get(f"{server.url}/swagger.json?version=3.1").json()["openapi"] == "3.1.0"
    bad = httpx.get(f"{server.url}/swagger.json?version=9")
    assert bad.status_code == 404
    assert bad.json() == {"message": "Swagger version [9] is not valid. Supported versions: [2, 3, 3.1]."}


def test_get_query_string_becomes_json(server):
    response = httpx.get(f"{server.url}/score?a=1&b=%5B1,2%5D&c=x&c=y")
    assert response.status_code == 200
    assert response.json()["received"] == {"a": 1, "b": [1, 2], "c": ["x", "y"]}


def test_unserialisable_return_is_internal_error(server):
    response = post(server, b'{"kind": "numpy"}')
    assert response.status_code == 500
    assert response.json() == {"message": "An unexpected internal error occurred. Check the logs for more info."}
    assert response.headers["x-ms-run-function-failed"] == "False"
    assert ".tolist()" in server.log()  # the log tells the user how to fix it


def test_returned_str_is_a_json_string_literal(server):
    response = post(server, b'{"kind": "string"}')
    assert response.content == b'"{\\"already\\": \\"json\\"}"'
    assert response.json() == '{"already": "json"}'


def test_returned_none_is_empty_object(server):
    response = post(server, b'{"kind": "none"}')
    assert (response.status_code, response.content) == (200, b"{}")


def test_content_type_is_ignored_for_undecorated_run(server):
    response = post(server, b'{"t": "plain"}', content_type="text/plain")
    assert response.json()["received"] == {"t": "plain"}


def test_non_utf8_body_is_400(server):
    response = post(server, b"\xff\xfe", content_type="application/octet-stream")
    assert response.status_code == 400
    assert response.json() == {
        "message": "Input cannot be decoded as UTF-8: 'utf-8' codec can't decode byte 0xff in position 0: "
        "invalid start byte"
    }


def test_options_is_empty_200(server):
    response = httpx.options(f"{server.url}/score")
    assert (response.status_code, response.content) == (200, b"")


@pytest.mark.parametrize(("method", "path"), [("PUT", "/score"), ("DELETE", "/"), ("POST", "/swagger.json")])
def test_other_methods_are_405(server, method, path):
    response = httpx.request(method, f"{server.url}{path}", content=b"{}")
    assert response.status_code == 405
    assert response.json() == {"message": "The method is not allowed for the requested URL."}


@pytest.mark.parametrize("path", ["/nonexistent", "/api/v1/service/foo/score"])
def test_unknown_paths_are_404(server, path):
    response = httpx.get(f"{server.url}{path}")
    assert response.status_code == 404
    assert response.json()["message"].startswith("The requested URL was not found on the server.")


def test_request_id_headers_are_echoed(server):
    response = post(server, b'{"a": 1}', headers={
        "x-request-id": "req-123", "x-ms-client-request-id": "client-abc", "TraceId": "trace-9"})
    assert response.headers["x-request-id"] == "req-123"
    assert response.headers["x-ms-request-id"] == "client-abc"
    assert response.headers["x-ms-client-request-id"] == "client-abc"
    assert response.headers["traceid"] == "trace-9"


def test_legacy_request_id_header(server):
    response = post(server, b'{"a": 1}', headers={"x-ms-request-id": "legacy-1"})
    assert response.headers["x-ms-request-id"] == "legacy-1"
    assert response.headers["x-ms-client-request-id"] == "legacy-1"
    uuid.UUID(response.headers["x-request-id"])
    assert "x-ms-request-id header has been deprecated" in server.log()


def test_request_id_over_100_chars_is_431(server):
    response = post(server, b'{"a": 1}', headers={"x-request-id": "A" * 101})
    assert response.status_code == 431
    assert response.json() == {"message": "x-request-id must not exceed 100 characters"}
    too_long_client = post(server, b'{"a": 1}', headers={"x-ms-client-request-id": "B" * 101})
    assert too_long_client.status_code == 431


def test_prints_are_captured_in_the_log(server):
    post(server, b'{"kind": "print", "text": "hello-from-run"}')
    log = server.log()
    assert re.search(r"modelport\.print - printed from run\(\): hello-from-run", log)
    assert re.search(r"modelport\.print - init called; AZUREML_MODEL_DIR=", log)


def test_one_access_log_line_per_request(server):
    post(server, b'{"a": 1}', headers={"x-request-id": "access-log-check"})
    post(server, b'{"a": 1}', headers={"x-request-id": "access-log-later"})
    # access lines are written in batches, in order: once the later line is there, so is the first
    deadline = time.monotonic() + 30
    while "request_id=access-log-later" not in server.log():
        assert time.monotonic() < deadline, "the access lines were not written"
        time.sleep(0.01)
    lines = [line for line in server.log().splitlines() if "request_id=access-log-check" in line]
    assert len(lines) == 1
    assert re.search(r"method=POST path=/score status=200 duration_ms=[\d.]+ run_ms=[\d.]+ bytes=\d+", lines[0])


def test_large_body_under_the_limit_is_served(server):
    rows = b",".join([b"[1.5, 2.5, 3.5]"] * 400_000)  # about 6 MB
    response = post(server, b'{"data": [' + rows + b"]}", timeout=60)
    assert response.status_code == 200
    assert len(response.json()["received"]["data"]) == 400_000
