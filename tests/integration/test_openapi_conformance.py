"""The control plane's OpenAPI document is true: every answer the real server gives is one it declares.

Direct tests pin the error answers (one JSON body, ``ErrorBody``, for every error; 400 for invalid requests,
never 422; 405 naming every method of the path). Then schemathesis, from Python (the engine that
``schemathesis run`` drives), sends bounded, deterministic requests to every operation of a fresh workspace's
real server and fails on any 5xx or any answer the document does not describe (status, headers, content type,
body schema, Allow, auth).
"""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema

from modelport import Model, Workspace
from modelport.api import server

MAX_EXAMPLES = 8
"""Examples per operation and generation mode: bounded, and deterministic (derandomized)."""
CONTENT_RULES = {
    ("PUT", "/api/v1/blobs/{sha256}"): "the body's sha256 must be the one in the URL",
    ("POST", "/api/v1/trees"): "each listed blob must be uploaded first; paths follow the folder path rule",
    ("POST", "/api/v1/models"): "the content's blob (or tree) must be uploaded first",
    ("POST", "/api/v1/snapshots"): "the tree must be uploaded first and its counts match",
    ("POST", "/api/v1/environments"): "Azure ML's environment rules (reserved name prefixes, conda, Spark...)",
}
"""Operations whose schema-valid requests the server refuses (400, with a message naming the rule) for a rule
that JSON Schema cannot state: content or workspace state. There, and only there, 400 is expected of valid data."""


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    workspace = Workspace.create("openapi", tmp_path_factory.mktemp("ws"))
    yield workspace
    server.stop(workspace._dir)


@pytest.fixture(scope="module")
def base_url(ws) -> str:
    return server.ensure_running(ws._dir)


@pytest.fixture(scope="module")
def api(ws, base_url):
    with httpx.Client(base_url=f"{base_url}/api/v1", headers={"Authorization": f"Bearer {ws._dir.token()}"},
                      timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def document(base_url) -> dict:
    return httpx.get(f"{base_url}/openapi.json").json()


def declared_body(document: dict, method: str, path: str, status: int) -> dict:
    """The JSON Schema the document declares for the body of ``method path``'s ``status`` answer."""
    schema = document["paths"][path][method.lower()]["responses"][str(status)]["content"]["application/json"]["schema"]
    return document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]


def assert_error(document: dict, response: httpx.Response, path: str, status: int, code: str) -> None:
    """``response`` is a ``status`` error whose body has exactly the fields the document declares for it."""
    assert response.status_code == status, response.text
    body = response.json()
    schema = declared_body(document, response.request.method, path, status)
    assert set(body) == set(schema["properties"]) == set(schema["required"]) == {"code", "message"}
    assert body["code"] == code and isinstance(body["message"], str) and body["message"]


def test_a_missing_model_is_the_declared_404(api, document):
    response = api.get("/models/absent/1")
    assert_error(document, response, "/api/v1/models/{name}/{version}", 404, "NotFound")
    assert response.json()["message"] == "model 'absent' is not registered; register it first or check the name"


def test_an_invalid_request_is_a_400_and_no_route_declares_422(api, document):
    response = api.post("/models", json={"name": "m"})
    assert_error(document, response, "/api/v1/models", 400, "InvalidInput")
    assert response.json()["message"].startswith("invalid request: body.artifact_sha256: Field required")
    statuses = {status for operations in document["paths"].values() for operation in operations.values()
                for status in operation["responses"]}
    assert "422" not in statuses
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_a_missing_token_is_the_declared_401_and_the_document_says_bearer(api, document, base_url):
    response = httpx.get(f"{base_url}/api/v1/models")
    assert_error(document, response, "/api/v1/models", 401, "Unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert document["paths"]["/api/v1/models"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in document["paths"]["/healthz"]["get"]


def test_a_conflicting_environment_version_is_the_declared_409(api, document):
    spec = {"name": "pinned", "version": "1", "python": {"condaDependencies": {"dependencies": ["python=3.10"]}}}
    assert api.post("/environments", json=spec).status_code == 201
    spec["python"]["condaDependencies"]["dependencies"] = ["python=3.11"]
    assert_error(document, api.post("/environments", json=spec), "/api/v1/environments", 409, "Conflict")


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("OPTIONS", "/api/v1/models/m/1", "DELETE, GET, PATCH"),
    ("DELETE", f"/api/v1/blobs/{'0' * 64}", "GET, HEAD, PUT"),
    ("PUT", "/api/v1/services/svc", "DELETE, GET, PATCH"),
])
def test_a_wrong_method_is_a_405_allowing_every_method_of_the_path(ws, base_url, method, path, allowed):
    response = httpx.request(method, f"{base_url}{path}", headers={"Authorization": f"Bearer {ws._dir.token()}"})
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json() == {"code": "MethodNotAllowed",
                               "message": f"{method} is not allowed on {path}; use {allowed.replace(', ', ' or ')}"}


def test_an_unknown_path_and_a_missing_blob_answer_404(api, base_url):
    unknown = httpx.get(f"{base_url}/api/v1/nothing-here")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "NotFound")
    missing = api.head(f"/blobs/{'0' * 64}")
    assert (missing.status_code, missing.content) == (404, b"")


@pytest.fixture(scope="module")
def workspace_data(ws, api, tmp_path_factory) -> dict[str, str]:
    """A registered model (so its blob is stored) and environment, for schemathesis to find, not only miss."""
    path = tmp_path_factory.mktemp("model") / "model.pkl"
    path.write_bytes(os.urandom(256))
    model = Model.register(ws, path, "fuzzed")
    assert api.post("/environments", json={"name": "fuzzed-env"}).status_code == 201
    return {"model": model.name, "blob": hashlib.sha256(path.read_bytes()).hexdigest(), "environment": "fuzzed-env"}


@pytest.fixture(scope="module")
def api_schema(ws, base_url, workspace_data):
    """The served document, with the workspace token, bounded generation, and the registered names given to the
    operations that read, change or delete them (DELETE included: it runs after GET and PATCH, and what follows
    it answers 404, which the document declares). Environment builds get no registered name: a build installs
    packages for minutes, so that operation is only probed with names that answer 404."""
    expected_of_valid_data = ["2xx", "401", "404", "409"]
    config = SchemathesisConfig.from_dict({
        "seed": 7,
        "headers": {"Authorization": f"Bearer {ws._dir.token()}"},
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        # the path parameters pinned below override a link's own values, so a followed link can name a model the
        # run deleted: that 404 is declared, not a lost resource
        "checks": {"positive_data_acceptance": {"expected-statuses": expected_of_valid_data},
                   "ensure_resource_availability": {"enabled": False}},
        "operations": [
            *({"include-path": path, "include-method": method,
               "checks": {"positive_data_acceptance": {"expected-statuses": [*expected_of_valid_data, "400"]}}}
              for method, path in CONTENT_RULES),
            {"include-path-regex": "^/api/v1/models/\\{name\\}/\\{version\\}$",
             "parameters": {"path.name": workspace_data["model"], "path.version": "1"}},
            {"include-path": "/api/v1/blobs/{sha256}", "parameters": {"path.sha256": workspace_data["blob"]}},
            {"include-path": "/api/v1/environments/{name}", "parameters": {"path.name": workspace_data["environment"]}},
        ],
    })
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config)


def test_schemathesis_finds_no_server_error_and_no_undeclared_answer(api_schema, capsys):
    requests_sent, failures = run_schemathesis(api_schema)
    with capsys.disabled():
        print(f"\nschemathesis sent {requests_sent} requests to the control plane; {len(failures)} failed a check")
    assert requests_sent > 26 * MAX_EXAMPLES  # every operation was reached, in every phase
    assert not failures, "\n".join(failures)


def run_schemathesis(schema) -> tuple[int, list[str]]:
    """Run every phase (examples, coverage, fuzzing, stateful) as ``schemathesis run`` does; the number of
    requests sent and a line for each failed check or error.

    Through the engine that ``schemathesis run`` drives, not ``schema.parametrize``: its fixture-backed form
    (``schemathesis.pytest.from_fixture``, needed for a server a fixture starts) does not run on pytest 9.2.
    """
    sent, failures = 0, []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished | events.FuzzScenarioFinished):
            recorder = event.recorder
            sent += len(recorder.interactions)
            for case_id, checks in recorder.checks.items():
                interaction = recorder.interactions.get(case_id)
                request = f"{interaction.request.method} {interaction.request.uri}" if interaction else case_id
                status = interaction.response.status_code if interaction and interaction.response else None
                failures.extend(f"{request} -> {status}: {check.name}: {check.failure_info.failure.title}\n"
                                f"    {check.failure_info.code_sample}"
                                for check in checks if check.status == Status.FAILURE)
        elif isinstance(event, events.NonFatalError):
            failures.append(f"{event.label}: error {event.value!r}")
        elif isinstance(event, events.FatalError):
            raise event.exception
    return sent, failures
