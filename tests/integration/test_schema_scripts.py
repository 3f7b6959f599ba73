"""inference-schema decorated entry scripts and run(data, request_headers), against azmlinfsrv 1.5.1.

Reference: sections D and F of the contract's reference-server-transcripts.txt. Bodies are compared
by value: the reference writes JSON with spaces, the runtime compact JSON.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import httpx
import pytest

from tests.conftest import script

RUN_FAILED_MESSAGE = "An unexpected error occurred in scoring script. Check the logs for more info."
D1_BODY = {"data": [{"a": 1.0, "b": "y"}, {"a": 2, "b": "z"}], "arr": [[1, 2, 3], [4, 5, 6]]}

# definitions / components.schemas of the reference's swagger for score_schema.py (D9, D10).
D_SERVICE_INPUT = {
    "type": "object",
    "properties": {
        "data": {
            "type": "array",
            "items": {"type": "object", "required": ["a", "b"],
                      "properties": {"a": {"type": "number", "format": "double"}, "b": {"type": "string"}}},
            "format": "pandas.DataFrame:records",
        },
        "arr": {"type": "array", "items": {"type": "array", "items": {"type": "number", "format": "double"}},
                "format": "numpy.ndarray"},
        "scale": {"type": "number", "format": "double"},
    },
    "example": {"data": [{"a": 1.0, "b": "x"}], "arr": [[1.0, 2.0, 3.0]], "scale": 1.0},
}
D_SERVICE_OUTPUT = {
    "type": "object",
    "required": ["n_rows", "arr_sum", "types"],
    "properties": {"n_rows": {"type": "integer", "format": "int64"},
                   "arr_sum": {"type": "number", "format": "double"},
                   "types": {"type": "array", "items": {"type": "string"}}},
    "example": {"n_rows": 1, "arr_sum": 6.0, "types": ["x"]},
}
ERROR_RESPONSE = {"type": "object", "properties": {"message": {"type": "string"}}}

_REPO = Path(__file__).resolve().parents[2]
_TRANSCRIPTS = [base / "shared" / "contract" / "reference-server-transcripts.txt" for base in (_REPO, _REPO.parent)]


def transcript_json(section: str) -> dict:
    """The JSON response body the reference recorded for a section such as ``D9``."""
    path = next((p for p in _TRANSCRIPTS if p.is_file()), None)
    if path is None:
        pytest.skip("reference-server-transcripts.txt is not available in this checkout")
    text = path.read_text(encoding="utf-8", errors="replace")  # A13 records a non-UTF-8 body
    start = text.index(f"### {section} ")
    block = text[start:text.index("[curl exit=", start)]
    return json.loads(block.split("\n\n", 1)[1])


# ---------------------------------------------------------------- servers and helpers


@pytest.fixture(scope="module")
def schema_url(start_runtime) -> str:
    return start_runtime("--entry-script", script("score_schema.py")).url


@pytest.fixture(scope="module")
def nested_url(start_runtime) -> str:
    return start_runtime("--entry-script", script("score_schema_nested.py")).url


@pytest.fixture(scope="module")
def headers_url(start_runtime) -> str:
    return start_runtime("--entry-script", script("score_headers.py")).url


def post(url: str, body: bytes | str | dict | list, content_type: str = "application/json", **kw) -> httpx.Response:
    """POST /score; dicts and lists are sent as JSON, str and bytes as they are."""
    content = json.dumps(body) if isinstance(body, dict | list) else body
    headers = {"Content-Type": content_type, **kw.pop("headers", {})}
    return httpx.post(f"{url}/score", content=content, headers=headers, timeout=30, **kw)


def assert_run_ok(response: httpx.Response) -> dict:
    """A 200 answered by run(): JSON body, not failed, with run()'s execution time."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers.get_list("x-ms-run-function-failed") == ["False"]
    assert float(response.headers["x-ms-run-fn-exec-ms"]) >= 0
    return response.json()


def assert_error(response: httpx.Response, status: int, message: str, run_failed: bool = False) -> None:
    """A JSON ``{"message": ...}`` error; run() finished no call, so no x-ms-run-fn-exec-ms."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"message": message}
    assert response.headers.get_list("x-ms-run-function-failed") == [str(run_failed)]
    assert "x-ms-run-fn-exec-ms" not in response.headers


def swagger(url: str, version: str | None = None) -> httpx.Response:
    params = {"version": version} if version is not None else None
    return httpx.get(f"{url}/swagger.json", params=params, timeout=30)


def decorator_input_schema(fixture_name: str) -> dict:
    """ServiceInput as inference-schema generates it for a fixture's run(), computed in this process."""
    from inference_schema.schema_util import get_input_schema

    spec = importlib.util.spec_from_file_location(f"schema_fixture_{Path(fixture_name).stem}", script(fixture_name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return get_input_schema(module.run)


# ---------------------------------------------------------------- D: score_schema.py


def test_d1_inputs_arrive_as_dataframe_ndarray_and_default_scale(schema_url):
    body = assert_run_ok(post(schema_url, D1_BODY))
    assert body == {"n_rows": 2, "arr_sum": 42.0, "types": ["DataFrame", "ndarray", "float64", "float"]}


@pytest.mark.parametrize(("scale", "expected_sum", "expected_type"), [(2.5, 15.0, "float"), (3, 18.0, "int")])
def test_d1_scale_given_replaces_the_default(schema_url, scale, expected_sum, expected_type):
    body = assert_run_ok(post(schema_url, {"data": [{"a": 1, "b": "y"}], "arr": [[1, 2, 3]], "scale": scale}))
    assert body["arr_sum"] == expected_sum
    assert body["types"][3] == expected_type


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"data": [', "POST body could not be decoded as JSON: Expecting value: line 1 column 11 (char 10)"),
        ("", "POST body is empty. Expecting a JSON dictionary."),
    ],
    ids=["malformed", "empty"],
)
def test_d2_body_that_is_not_json_is_400(schema_url, content, message):
    assert_error(post(schema_url, content), 400, message)


def test_d3_non_json_content_type_is_415(schema_url):
    response = post(schema_url, '{"data":[{"a":1.0,"b":"y"}],"arr":[[1,2,3]]}', content_type="text/plain")
    assert_error(response, 415, "Expects Content-Type to be application/json")


def test_d4_json_list_body_is_400(schema_url):
    assert_error(post(schema_url, "[1,2]"), 400, "POST body should be a JSON dictionary.")


@pytest.mark.parametrize(
    ("body", "missing"),
    [({"data": [{"a": 1.0, "b": "y"}]}, "arr"), ({"arr": [[1, 2, 3]], "scale": 2.0}, "data")],
)
def test_d5_missing_required_parameter_is_400(schema_url, body, missing):
    assert_error(post(schema_url, body), 400, f"A value is not provided for the '{missing}' parameter.")


def test_d6_wrong_shape_fails_in_the_decorator_with_500(schema_url):
    response = post(schema_url, {"data": [{"a": 1.0, "b": "y"}], "arr": [[1, 2]]})
    assert_error(response, 500, RUN_FAILED_MESSAGE, run_failed=True)


def test_d7_run_raising_is_500(schema_url):
    response = post(schema_url, {"data": [{"a": 1.0, "b": "boom"}], "arr": [[1, 2, 3]]})
    assert_error(response, 500, RUN_FAILED_MESSAGE, run_failed=True)


def test_d7_server_keeps_serving_after_failures(schema_url):
    post(schema_url, {"data": [{"a": 1.0, "b": "boom"}], "arr": [[1, 2, 3]]})
    assert assert_run_ok(post(schema_url, D1_BODY))["n_rows"] == 2


def test_d8_get_query_parameters_are_parsed_as_json(schema_url):
    query = "data=%5B%7B%22a%22:1,%22b%22:%22q%22%7D%5D&arr=%5B%5B1,2,3%5D%5D&scale=10"
    body = assert_run_ok(httpx.get(f"{schema_url}/score?{query}", timeout=30))
    assert body == {"n_rows": 1, "arr_sum": 60.0, "types": ["DataFrame", "ndarray", "float64", "int"]}


def test_d8_get_without_a_required_parameter_is_400(schema_url):
    response = httpx.get(f"{schema_url}/score", params={"arr": "[[1,2,3]]"}, timeout=30)
    assert_error(response, 400, "A value is not provided for the 'data' parameter.")


# ---------------------------------------------------------------- D9/D10: swagger of score_schema.py


@pytest.mark.parametrize("version", [None, "2"])
def test_d9_swagger2_holds_the_decorator_schemas(schema_url, version):
    response = swagger(schema_url, version)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers.get_list("x-ms-run-function-failed") == ["False"]
    assert "x-ms-run-fn-exec-ms" not in response.headers
    document = response.json()
    assert document["swagger"] == "2.0"
    assert document["definitions"] == {
        "ServiceInput": D_SERVICE_INPUT, "ServiceOutput": D_SERVICE_OUTPUT, "ErrorResponse": ERROR_RESPONSE,
    }
    assert set(document["paths"]) == {"/", "/score", "/swagger.json"}
    body_param = document["paths"]["/score"]["post"]["parameters"][0]
    assert body_param["schema"] == {"$ref": "#/definitions/ServiceInput"}


def test_d9_swagger_service_input_is_what_the_decorators_generate(schema_url):
    assert swagger(schema_url).json()["definitions"]["ServiceInput"] == decorator_input_schema("score_schema.py")


def test_d9_swagger2_matches_the_reference_document(schema_url):
    assert swagger(schema_url).json() == transcript_json("D9")


@pytest.mark.parametrize(("version", "openapi"), [("3", "3.0.3"), ("3.1", "3.1.0")])
def test_d10_openapi3_holds_the_decorator_schemas(schema_url, version, openapi):
    response = swagger(schema_url, version)
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == openapi
    assert "swagger" not in document
    assert document["components"]["schemas"] == {
        "ServiceInput": D_SERVICE_INPUT, "ServiceOutput": D_SERVICE_OUTPUT, "ErrorResponse": ERROR_RESPONSE,
    }
    request_body = document["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]
    assert request_body["schema"] == {"$ref": "#/components/schemas/ServiceInput"}


@pytest.mark.parametrize(("version", "openapi"), [("3.1", "3.1.0"), ("3", "3.0.3")])
def test_d10_openapi3_matches_the_reference_document(schema_url, version, openapi):
    # The reference recorded 3.1 for this script; its 3.0 document differs only in "openapi" (see A5/A6).
    expected = {**transcript_json("D10"), "openapi": openapi}
    assert swagger(schema_url, version).json() == expected


def test_d10_unknown_swagger_version_is_404(schema_url):
    assert_error(swagger(schema_url, "9"), 404, "Swagger version [9] is not valid. Supported versions: [2, 3, 3.1].")


# ---------------------------------------------------------------- score_schema_nested.py

NESTED_BODY = {
    "config": {"weights": [0.5, 1.5, 2.0], "tags": ["t"]},
    "nested": {"matrix": [[1, 2], [3, 4]], "labels": ["p", "q"]},
    "records": [{"a": 1.0, "b": "r"}, {"a": 2.0, "b": "s"}],
}


def nested_body(**changes) -> dict:
    return {**NESTED_BODY, **changes}


def test_nested_dict_of_lists_arrives_as_parsed_json(nested_url):
    body = assert_run_ok(post(nested_url, NESTED_BODY))
    assert body["config"] == NESTED_BODY["config"]
    assert body["config_types"] == {"weights": "list", "tags": "list"}


def test_nested_typed_parameter_inside_a_dict_is_converted(nested_url):
    body = assert_run_ok(post(nested_url, NESTED_BODY))
    assert (body["matrix_type"], body["matrix_shape"], body["matrix_sum"]) == ("ndarray", [2, 2], 10)
    assert body["labels"] == ["p", "q"]


@pytest.mark.parametrize(
    "changes",
    [{"config": [1, 2]}, {"nested": {"matrix": [[1, 2, 3]], "labels": []}}],
    ids=["dict-expected", "matrix-shape"],
)
def test_nested_value_of_the_wrong_type_is_500(nested_url, changes):
    assert_error(post(nested_url, nested_body(**changes)), 500, RUN_FAILED_MESSAGE, run_failed=True)


@pytest.mark.parametrize("records", [[{"a": 1.0, "b": "r"}], "not a table", {"a": [1, 2]}])
def test_convert_to_provided_type_false_passes_the_raw_json_value(nested_url, records):
    body = assert_run_ok(post(nested_url, nested_body(records=records)))
    assert body["records_type"] == type(records).__name__
    assert body["records"] == records


def test_request_headers_reach_a_decorated_run_with_title_case_names(nested_url):
    body = assert_run_ok(post(nested_url, NESTED_BODY, headers={"x-test": "hello"}))
    assert body["headers_type"] == "dict"
    assert body["x_test"] == "hello"
    assert {"X-Test", "Content-Type", "Content-Length", "Host"} <= set(body["header_names"])
    assert all(name == name.title() for name in body["header_names"]), body["header_names"]


def test_request_headers_is_not_read_from_the_body(nested_url):
    response = post(nested_url, nested_body(request_headers={"X-Test": "from body"}), headers={"X-Test": "real"})
    assert assert_run_ok(response)["x_test"] == "real"


def test_nested_swagger_service_input_is_what_the_decorators_generate(nested_url):
    expected = decorator_input_schema("score_schema_nested.py")
    assert swagger(nested_url, "2").json()["definitions"]["ServiceInput"] == expected
    for version in ("3", "3.1"):
        assert swagger(nested_url, version).json()["components"]["schemas"]["ServiceInput"] == expected, version
    assert expected["properties"]["config"]["properties"]["weights"]["type"] == "array"


# ---------------------------------------------------------------- F: run(data, request_headers)


def test_f1_undecorated_run_gets_raw_body_and_request_headers(headers_url):
    # curl's header set, so the header count is comparable with the reference's.
    request = httpx.Request(
        "POST", f"{headers_url}/score", content=b'"payload"',
        headers={"User-Agent": "curl/7.88.1", "Accept": "*/*", "X-Test": "hello", "Content-Type": "application/json"},
    )
    with httpx.Client(timeout=30) as client:
        response = client.send(request)
    assert assert_run_ok(response) == {"data": '"payload"', "hdr_x_test": "hello", "n_headers": 6}


def test_f1_repeated_request_header_is_joined_as_flask_under_gunicorn_shows_it(headers_url):
    # gunicorn joins a repeated header into one environ value with "," and Flask's
    # dict(request.headers), which azmlinfsrv passes as request_headers, shows that value as-is.
    headers = [("Content-Type", "application/json"), ("X-Test", "a"), ("X-Test", "b")]
    response = httpx.post(f"{headers_url}/score", content=b"{}", headers=headers, timeout=30)
    assert assert_run_ok(response)["hdr_x_test"] == "a,b"
