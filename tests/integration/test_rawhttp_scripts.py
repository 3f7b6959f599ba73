"""@rawhttp entry scripts (azureml.contrib.services shims), against azmlinfsrv 1.5.1.

Reference: section E of the contract's reference-server-transcripts.txt, where run() gets the
Flask request and may return an AMLResponse / werkzeug Response or any JSON-encodable value.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.conftest import script

STREAMED = b"chunk-0;chunk-1;chunk-2;chunk-3;"  # score_rawhttp.STREAM_CHUNKS, 0.3 s apart
EMPTY_SCHEMA = {"type": "object", "example": {}}


@pytest.fixture(scope="module")
def url(start_runtime) -> str:
    return start_runtime("--entry-script", script("score_rawhttp.py")).url


def score(url: str, method: str = "POST", case: str | None = None, **kw) -> httpx.Response:
    params = {"case": case} if case else kw.pop("params", None)
    return httpx.request(method, f"{url}/score", params=params, timeout=30, **kw)


def assert_from_run(response: httpx.Response, status: int, failed: bool) -> None:
    """A response built from run()'s return value: one run-failed header and run()'s execution time."""
    assert response.status_code == status, response.text
    assert response.headers.get_list("x-ms-run-function-failed") == [str(failed)]
    assert float(response.headers["x-ms-run-fn-exec-ms"]) >= 0


# ---------------------------------------------------------------- E1-E5


def test_e1_post_bytes_returns_aml_response_with_its_content_type(url):
    response = score(url, content=b"abcdef", headers={"Content-Type": "application/octet-stream"})
    assert_from_run(response, 200, failed=False)
    assert response.content == b"fedcba"
    assert response.headers.get_list("content-type") == ["application/octet-stream"]
    assert response.headers["content-length"] == "6"


def test_e1_binary_body_reaches_run_byte_for_byte(url):
    body = bytes(range(256)) * 4
    response = score(url, content=body, headers={"Content-Type": "application/octet-stream"})
    assert_from_run(response, 200, failed=False)
    assert response.content == body[::-1]


def test_e1_chunked_request_body_reaches_run(url):
    # A client that streams its upload sends no Content-Length (Transfer-Encoding: chunked);
    # gunicorn hands Flask the whole body (wsgi.input_terminated), so run() must see it all.
    response = score(url, content=iter([b"abc", b"def"]), headers={"Content-Type": "application/octet-stream"})
    assert_from_run(response, 200, failed=False)
    assert response.content == b"fedcba"


def test_e2_get_with_query_string(url):
    response = score(url, "GET", params={"x": "1"})
    assert_from_run(response, 200, failed=False)
    assert response.text == "raw GET ok: args={'x': '1'}"
    assert response.headers["content-type"] == "text/html; charset=utf-8"


def test_e3_aml_response_status_and_comma_separated_header(url):
    response = score(url, content=b"fail", headers={"Content-Type": "application/octet-stream"})
    assert_from_run(response, 503, failed=True)  # 5xx marks the run as failed, whatever AMLResponse said
    assert response.text == "custom failure"
    assert response.headers.get_list("x-custom") == ["a", "b"]
    assert response.headers["content-type"] == "text/html; charset=utf-8"


def test_e4_options_is_passed_to_run(url):
    response = score(url, "OPTIONS")
    assert_from_run(response, 500, failed=True)
    assert response.text == "bad method"


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_e4_other_methods_do_not_reach_run(url, method):
    response = score(url, method)
    assert response.status_code == 405
    assert "x-ms-run-fn-exec-ms" not in response.headers


@pytest.mark.parametrize("version", [None, "3", "3.1"])
def test_e5_swagger_has_empty_schemas_for_rawhttp(url, version):
    response = httpx.get(f"{url}/swagger.json", params={"version": version} if version else None, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert "x-ms-run-fn-exec-ms" not in response.headers  # run() is not called for swagger
    document = response.json()
    schemas = document["definitions"] if version is None else document["components"]["schemas"]
    assert schemas["ServiceInput"] == EMPTY_SCHEMA
    assert schemas["ServiceOutput"] == EMPTY_SCHEMA
    assert document.get("swagger", document.get("openapi")) == {None: "2.0", "3": "3.0.3", "3.1": "3.1.0"}[version]


# ---------------------------------------------------------------- the request object


def test_request_json_headers_and_path_are_available(url):
    payload = {"values": [1, 2.5, None], "name": "ü"}
    response = score(url, case="json", json=payload, headers={"X-Thing": "thing-1"})
    assert_from_run(response, 200, failed=False)
    assert response.json() == {
        "is_werkzeug_request": True,
        "method": "POST",
        "path": "/score",
        "json": payload,
        "x_thing": "thing-1",
        "content_type": "application/json",
    }


def test_multipart_upload_reaches_files_and_form(url):
    response = score(
        url, case="upload",
        files={"file": ("hello.txt", b"hello upload\n", "text/plain")},
        data={"note": "n1", "lang": "en"},
    )
    assert_from_run(response, 200, failed=False)
    assert response.json() == {
        "filename": "hello.txt",
        "file_content_type": "text/plain",
        "content": "hello upload\n",
        "form": {"note": "n1", "lang": "en"},
        "file_fields": ["file"],
    }


# ---------------------------------------------------------------- what run() returns


def test_plain_dict_from_rawhttp_run_is_json_encoded(url):
    response = score(url, case="json", json={"k": "v"})
    assert_from_run(response, 200, failed=False)
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.content)["json"] == {"k": "v"}


@pytest.mark.parametrize("case", ["aml_stream", "werkzeug_stream"])
def test_streamed_response_arrives_in_order_as_it_is_produced(url, case):
    arrivals: list[tuple[float, bytes]] = []
    with httpx.stream("GET", f"{url}/score", params={"case": case}, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in response.headers
        assert response.headers["content-type"].startswith("text/plain")
        assert float(response.headers["x-ms-run-fn-exec-ms"]) >= 0
        for chunk in response.iter_raw():
            arrivals.append((time.monotonic(), chunk))
    assert b"".join(chunk for _, chunk in arrivals) == STREAMED
    # Sent as produced, not buffered: the last chunk is produced 0.9 s after the first;
    # buffering would deliver them together. (0.3 s leaves room for a slow client.)
    assert arrivals[-1][0] - arrivals[0][0] >= 0.3, [round(t - arrivals[0][0], 3) for t, _ in arrivals]


def test_server_serves_normally_after_a_stream(url):
    with httpx.stream("GET", f"{url}/score", params={"case": "aml_stream"}, timeout=30) as response:
        assert response.read() == STREAMED
    assert score(url, "GET", params={"x": "2"}).text == "raw GET ok: args={'x': '2'}"
