"""Issue 8, scoring runtime and azmlinfsrv's command line: real runtime processes over HTTP.

Differential where the reference transcripts record the behaviour (``../shared/contract/
reference-server-transcripts.txt``, azmlinfsrv 1.5.1): which responses carry
``x-ms-server-version``, ``GET /`` once ready, ``OPTIONS /score``, the separate health port (H1/H2)
and ``--model_dir`` (G1). Elsewhere the expected values are azmlinfsrv's documented behaviour.
Waits are bounded waits for an observable condition, never sleeps.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import FIXTURES, script

JSON = {"Content-Type": "application/json"}
KEY = "12345678-1234-1234-1234-123456789abc"
A, B, EVIL = "https://a.example", "https://b.example", "https://evil.example"
SERVER_VERSION = re.compile(r"modelport/\d+\.\d+\.\d+\S*")
BOUND_S = 30

_REPO = Path(__file__).resolve().parents[2]
_TRANSCRIPTS = [base / "shared" / "contract" / "reference-server-transcripts.txt" for base in (_REPO, _REPO.parent)]


def reference_response(section: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body the reference recorded for a section such as ``A4``."""
    path = next((p for p in _TRANSCRIPTS if p.is_file()), None)
    if path is None:
        pytest.skip("reference-server-transcripts.txt is not available in this checkout")
    text = path.read_text(encoding="utf-8", errors="replace")
    start = text.index(f"### {section} ")
    block = text[start:text.index("[curl exit=", start)]
    head, _, body = block[block.index("HTTP/1.1"):].partition("\n\n")
    status_line, *header_lines = head.splitlines()
    headers = {name.lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, body.rstrip("\n").encode()


def wait_for(condition, what: str, timeout: float = BOUND_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def score(url: str, body: bytes = b'{"kind": "ok"}', **kwargs) -> httpx.Response:
    return httpx.post(f"{url}/score", content=body, headers={**JSON, **kwargs.pop("headers", {})}, timeout=30,
                      **kwargs)


@pytest.fixture(scope="module")
def server(start_runtime):
    return start_runtime("--entry-script", script("score_hostile.py"), env={"AML_CORS_ORIGINS": f"{A}, {B}"})


# ---------------------------------------------------------------- GET / answers Healthy only once ready


def test_get_root_is_503_with_a_message_until_init_finished_then_healthy(start_runtime, tmp_path):
    release = tmp_path / "release"
    runtime = start_runtime("--entry-script", script("score_slow_init.py"), "--workers", "2",
                            env={"RELEASE_INIT": str(release)}, ready=False)
    runtime.wait_listening()
    early = httpx.get(f"{runtime.url}/", timeout=5)  # answered at once, never a hang
    assert early.status_code == 503
    assert early.headers["content-type"] == "application/json"
    assert early.json()["message"].startswith("The scoring script is still starting: init() has not finished")
    assert early.headers["retry-after"] == "5"  # every 503 says when to ask again
    assert httpx.get(f"{runtime.url}/-/live", timeout=5).status_code == 200  # liveness stays on /-/live
    release.touch()
    healthy = wait_for(lambda: (r := httpx.get(f"{runtime.url}/", timeout=5)).status_code == 200 and r,
                       "GET / to answer 200")
    status, headers, body = reference_response("A4")
    assert (healthy.status_code, healthy.headers["content-type"], healthy.content) == (
        status, headers["content-type"], body)


# ---------------------------------------------------------------- x-ms-server-version, as the reference


@pytest.mark.parametrize(("section", "method", "path", "body", "headers"), [
    ("A1", "POST", "/score", b'{"kind": "ok"}', JSON),
    ("A3", "POST", "/score", b'{"kind": "system_exit"}', JSON),
    ("A4", "GET", "/", None, {}),
    ("A5", "GET", "/swagger.json", None, {}),
    ("A7", "GET", "/swagger.json?version=9", None, {}),
    ("A14", "OPTIONS", "/score", None, {}),
    ("A15", "PUT", "/score", b"{}", {}),
    ("A16", "DELETE", "/", None, {}),
    ("A17", "GET", "/nonexistent", None, {}),
    ("A21", "POST", "/score", b'{"a":1}', {"x-request-id": "A" * 101}),
])
def test_x_ms_server_version_where_the_reference_sends_it(server, section, method, path, body, headers):
    ref_status, ref_headers, _ = reference_response(section)
    response = httpx.request(method, f"{server.url}{path}", content=body, headers=headers, timeout=30)
    assert response.status_code == ref_status
    if "x-ms-server-version" in ref_headers:
        assert ref_headers["x-ms-server-version"] == "azmlinfsrv/1.5.1"
        assert SERVER_VERSION.fullmatch(response.headers["x-ms-server-version"])
    else:
        assert "x-ms-server-version" not in response.headers


def test_options_on_the_get_routes_answers_like_flask(server):
    response = httpx.options(f"{server.url}/swagger.json")
    assert (response.status_code, response.content) == (200, b"")
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "OPTIONS"}


# ---------------------------------------------------------------- NaN / Infinity as json.dumps writes them


def test_non_finite_floats_are_written_as_the_reference_writes_them(server):
    response = score(server.url, b'{"kind": "nan"}')
    expected = {"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf"), "small": 1e-7, "none": None}
    assert response.status_code == 200
    # the reference's json.dumps(result), compact
    assert response.content == b'{"nan":NaN,"inf":Infinity,"ninf":-Infinity,"small":1e-07,"none":null}'
    assert response.content == json.dumps(expected, separators=(",", ":")).encode()


def test_pandas_missing_values(server):
    response = score(server.url, b'{"kind": "pandas_nan"}')
    assert response.content == b'[{"a":1.0,"b":"x"},{"a":NaN,"b":NaN}]'


# ---------------------------------------------------------------- CORS (AML_CORS_ORIGINS)


def test_preflight_from_an_allowed_origin(server):
    response = httpx.options(f"{server.url}/score", headers={
        "Origin": A, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, authorization"})
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["access-control-allow-origin"] == A
    assert response.headers["access-control-allow-methods"] == "GET, POST"
    assert response.headers["access-control-allow-headers"] == "authorization, content-type"
    assert response.headers["vary"] == "Origin"


def test_a_post_from_an_allowed_origin_carries_it_and_others_get_none(server):
    allowed = score(server.url, headers={"Origin": B})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == B
    other = score(server.url, headers={"Origin": EVIL})
    assert other.status_code == 200
    assert not [name for name in other.headers if name.startswith("access-control-")]
    preflight = httpx.options(f"{server.url}/score", headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"})
    assert not [name for name in preflight.headers if name.startswith("access-control-")]


def test_cors_flag_and_no_cors_without_origins(start_runtime):
    runtime = start_runtime("--entry-script", script("score_hostile.py"), "--cors-origins", "*")
    response = score(runtime.url, headers={"Origin": EVIL})
    assert response.headers["access-control-allow-origin"] == EVIL  # "*" echoes the origin, as flask-cors does
    plain = start_runtime("--entry-script", script("score_hostile.py"))
    assert "access-control-allow-origin" not in score(plain.url, headers={"Origin": A}).headers


# ---------------------------------------------------------------- quiet probes


def test_probes_and_metrics_are_not_in_the_access_log_at_info(server):
    for path in ("/", "/-/live", "/-/ready", "/metrics"):
        assert httpx.get(f"{server.url}{path}").status_code == 200
    score(server.url, headers={"x-request-id": "after-the-probes"})
    wait_for(lambda: "request_id=after-the-probes" in server.log(), "the /score access line")
    access = [line for line in server.log().splitlines() if "modelport.access" in line]
    assert not [line for line in access if re.search(r"path=(/|/-/live|/-/ready|/metrics) ", line)]


def test_probes_are_logged_at_debug_level(start_runtime):
    runtime = start_runtime("--entry-script", script("score_hostile.py"), env={"AZUREML_LOG_LEVEL": "DEBUG"})
    httpx.get(f"{runtime.url}/metrics")
    wait_for(lambda: re.search(r" D \[\d+\] modelport\.access - method=GET path=/metrics status=200", runtime.log()),
             "a debug access line for /metrics")


# ---------------------------------------------------------------- Azure's source_directory layout


def test_inference_config_source_directory_layout(start_runtime):
    app = FIXTURES / "azure_layout"
    runtime = start_runtime("--entry-script", "source_directory/x/y/score.py", cwd=app,
                            env={"AZUREML_SOURCE_DIRECTORY": "source_directory"})
    answer = score(runtime.url, b"{}").json()
    assert answer == {
        "data": {"labels": ["cat", "dog"]},  # read from ./source_directory/data.json
        "cwd": str(app),
        "app_root": str(app),
        "source_directory": "source_directory",
        "helper": "helper from source_directory",
        "missing_model": "ModelNotFoundException",
        "missing_version": "WebserviceException",
        "user_error_is_azureml": "AzureMLException",
    }


def test_inference_server_import_path_and_azureml_exceptions(start_runtime):
    runtime = start_runtime("--entry-script", script("score_rawhttp_inference_server.py"),
                            env={"AML_CORS_ORIGINS": A})
    response = httpx.post(f"{runtime.url}/score", content=b"abc", headers={"Content-Type": "text/plain"})
    assert (response.status_code, response.content) == (200, b"cba")
    user_error = httpx.post(f"{runtime.url}/score", content=b"user-error")
    assert (user_error.status_code, user_error.json()) == (400, {"error": "bad input"})
    own = httpx.options(f"{runtime.url}/score", headers={"Origin": A, "Access-Control-Request-Method": "POST"})
    assert own.status_code == 204  # OPTIONS goes to a @rawhttp run(), as in the reference (E4)
    assert own.headers.get_list("access-control-allow-origin") == ["https://own.example"]  # run()'s own, kept


def test_a_real_inference_server_install_wins_over_the_shims(start_runtime, tmp_path):
    api = tmp_path / "site" / "azureml_inference_server_http" / "api"
    api.mkdir(parents=True)
    (api.parent / "__init__.py").write_text("")
    (api / "__init__.py").write_text("")
    (api / "aml_request.py").write_text("_rawHttpRequested = False\nREAL = True\n")
    (tmp_path / "score.py").write_text(
        "import azureml_inference_server_http.api.aml_request as aml_request\n"
        "def init(): pass\n"
        "def run(raw): return {'real': getattr(aml_request, 'REAL', False), 'file': aml_request.__file__}\n")
    runtime = start_runtime("--entry-script", "score.py", cwd=tmp_path, env={"PYTHONPATH": str(tmp_path / "site")})
    assert score(runtime.url, b"{}").json() == {"real": True, "file": str(api / "aml_request.py")}


# ---------------------------------------------------------------- azmlinfsrv's flags and variables


def test_reference_flags_reach_run_as_the_reference_sets_them(start_runtime, tmp_path):
    model_dir = tmp_path / "azureml-models" / "mymodel" / "3"
    model_dir.mkdir(parents=True)
    runtime = start_runtime("--entry_script", script("score_hostile.py"), "--model_dir", str(model_dir),
                            "--worker_count", "2", "--appinsights_instrumentation_key", KEY,
                            "--access_control_allow_origins", A)
    names = ["AZUREML_MODEL_DIR", "AML_APP_INSIGHTS_ENABLED", "AML_APP_INSIGHTS_KEY", "WORKER_COUNT",
             "AML_CORS_ORIGINS", "SERVER_PORT", "HEALTH_PORT"]
    env = score(runtime.url, json.dumps({"kind": "env", "names": names}).encode()).json()
    assert env == {"AZUREML_MODEL_DIR": str(model_dir), "AML_APP_INSIGHTS_ENABLED": "true",
                   "AML_APP_INSIGHTS_KEY": KEY, "WORKER_COUNT": "2", "AML_CORS_ORIGINS": A,
                   "SERVER_PORT": runtime.url.rsplit(":", 1)[1], "HEALTH_PORT": runtime.url.rsplit(":", 1)[1]}
    pids = wait_for(lambda: len(p := {score(runtime.url).json()["pid"] for _ in range(10)}) == 2 and p,
                    "both workers to answer")
    assert len(pids) == 2
    assert KEY not in runtime.log()  # the key is not written to the log


def test_app_insights_is_false_for_run_by_default(server):
    env = score(server.url, b'{"kind": "env", "names": ["AML_APP_INSIGHTS_ENABLED", "AML_APP_INSIGHTS_KEY"]}').json()
    assert env == {"AML_APP_INSIGHTS_ENABLED": "false", "AML_APP_INSIGHTS_KEY": None}


def test_a_missing_model_dir_is_a_warning_and_the_value_stays_relative(start_runtime, tmp_path):
    runtime = start_runtime("--entry_script", script("score_hostile.py"), "--model_dir", "./not/there", cwd=tmp_path)
    env = score(runtime.url, b'{"kind": "env", "names": ["AZUREML_MODEL_DIR"]}').json()
    assert env == {"AZUREML_MODEL_DIR": "./not/there"}
    assert re.search(r" W \[\d+\] modelport\.supervisor - The model directory \./not/there \(AZUREML_MODEL_DIR\) "
                     r"does not exist", runtime.log())


def test_config_file_of_the_reference(start_runtime, tmp_path):
    config = tmp_path / "server-config.json"
    config.write_text(json.dumps({"AZUREML_ENTRY_SCRIPT": script("score_hostile.py"), "SERVICE_NAME": "from-config",
                                  "SCORING_TIMEOUT_MS": 250, "AML_CORS_ORIGINS": A, "unknown_key": 1}))
    runtime = start_runtime("--config_file", str(config))
    assert httpx.get(f"{runtime.url}/swagger.json").json()["info"]["title"] == "from-config"
    assert score(runtime.url, b'{"kind": "sleep", "secs": 3}').json() == {"message": "Scoring timeout after 250 ms"}
    assert score(runtime.url, headers={"Origin": A}).headers["access-control-allow-origin"] == A
    assert "keys that are not server settings, ignored: 'unknown_key'" in runtime.log()


def test_help_lists_the_reference_flags_and_variables():
    result = subprocess.run([sys.executable, "-m", "modelport.runtime", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0
    for flag in ("--entry_script", "--model_dir", "--port", "--worker_count", "--health_port",
                 "--access_control_allow_origins", "--appinsights_instrumentation_key", "--config_file",
                 "--cors-origins"):
        assert flag in result.stdout, flag
    for variable in ("SEPERATE_HEALTH_ENDPOINT", "HEALTH_PORT", "AML_APP_INSIGHTS_ENABLED", "AML_APP_INSIGHTS_KEY",
                     "WORKER_TIMEOUT", "AML_CORS_ORIGINS", "AZUREML_CONFIG_FILE"):
        assert variable in result.stdout, variable


# ---------------------------------------------------------------- a separate health port


def test_seperate_health_endpoint_serves_the_same_app_on_a_second_port(start_runtime):
    runtime = start_runtime("--entry-script", script("score_hostile.py"),
                            env={"SEPERATE_HEALTH_ENDPOINT": "true", "HEALTH_PORT": "0"})
    health_port = int(re.search(r"health:\s+http://[\d.]+:(\d+)", runtime.log()).group(1))
    assert f":{health_port}" != runtime.url[runtime.url.rindex(":"):]
    health = f"http://127.0.0.1:{health_port}"
    status, headers, body = reference_response("H1")
    response = httpx.get(f"{health}/")
    assert (response.status_code, response.content, response.headers["content-type"]) == (
        status, body, headers["content-type"])
    assert reference_response("H2")[0] == 200
    assert score(health).status_code == 200  # H2: the same routes on the health port
    env = score(health, b'{"kind": "env", "names": ["HEALTH_PORT"]}').json()
    assert env == {"HEALTH_PORT": str(health_port)}


# ---------------------------------------------------------------- logs on stdout, logging.json


def test_logs_and_prints_go_to_stdout(tmp_path):
    out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "modelport.runtime", "--entry-script",
                                 script("score_plain.py"), "--port", "0"], stdout=stdout, stderr=stderr,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            match = wait_for(lambda: re.search(r"listening:\s+http://([\d.]+):(\d+)", out.read_text()),
                             "the listening line on stdout")
            url = f"http://{match.group(1)}:{match.group(2)}"
            wait_for(lambda: _status(f"{url}/") == 200, "GET / to answer 200")
            score(url, b'{"kind": "print", "text": "to-stdout"}')
            wait_for(lambda: "printed from run(): to-stdout" in out.read_text(), "the print on stdout")
        finally:
            proc.terminate()
            proc.wait(30)
    text = out.read_text()
    assert "modelport.print - init called" in text
    assert "modelport.access - method=POST path=/score status=200" in text
    assert not re.search(r" [IWE] \[\d+\] ", err.read_text())  # no log lines on stderr


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.TransportError:
        return 0


def test_logging_json_in_the_app_root_configures_logging(start_runtime, tmp_path):
    (tmp_path / "score.py").write_text(
        "import logging\n"
        "def init():\n    print('init says hello')\n"
        "def run(raw):\n    logging.getLogger('user').debug('debug from run')\n    return {'ok': True}\n")
    (tmp_path / "logging.json").write_text(json.dumps({
        "version": 1,
        "formatters": {"tagged": {"format": "TAGGED %(name)s %(levelname)s %(message)s"}},
        "handlers": {"out": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "tagged"}},
        "loggers": {"user": {"level": "DEBUG", "handlers": ["out"], "propagate": False},
                    "modelport.access": {"level": "WARNING"}},
    }))
    runtime = start_runtime("--entry-script", "score.py", cwd=tmp_path)
    assert score(runtime.url, b"{}").json() == {"ok": True}
    wait_for(lambda: "TAGGED user DEBUG debug from run" in runtime.log(), "the user logger's line")
    log = runtime.log()
    assert f"Loaded logging config from {tmp_path / 'logging.json'}" in log
    assert "modelport.print - init says hello" in log  # loggers the file does not name keep working
    assert "modelport.access" not in log  # the file raised it to WARNING


# ---------------------------------------------------------------- a port still held


def test_a_port_still_held_is_retried_before_failing(start_runtime):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        runtime = start_runtime("--entry-script", script("score_hostile.py"), "--port", str(port), ready=False)
        wait_for(lambda: f"Port {port} on 127.0.0.1 is in use; retrying in 1 s (attempt 1 of 5)" in runtime.log(),
                 "the retry line")
    finally:
        holder.close()  # the old server goes away while the new one retries
    runtime.wait_ready()
    assert runtime.url == f"http://127.0.0.1:{port}"
    assert score(runtime.url).status_code == 200


def test_a_port_held_for_good_fails_with_a_message(start_runtime):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        runtime = start_runtime("--entry-script", script("score_hostile.py"), "--port", str(holder.getsockname()[1]),
                                ready=False)
        assert runtime.proc.wait(timeout=BOUND_S) == 2
        assert "is already in use (tried 5 times, 1 s apart)" in runtime.log()
    finally:
        holder.close()


# ---------------------------------------------------------------- WORKER_TIMEOUT


def test_worker_timeout_restarts_a_worker_whose_run_does_not_return(start_runtime):
    runtime = start_runtime("--entry-script", script("score_hostile.py"), env={"WORKER_TIMEOUT": "1"})
    before = score(runtime.url).json()["pid"]
    stuck = score(runtime.url, b'{"kind": "sleep", "secs": 5}')
    assert (stuck.status_code, stuck.json()) == (
        500, {"message": "run() did not finish within WORKER_TIMEOUT=1 s; the worker restarts"})
    assert stuck.headers["x-ms-run-function-failed"] == "True"

    def new_worker():
        try:
            response = score(runtime.url)
        except httpx.TransportError:
            return None
        return response.status_code == 200 and response.json()["pid"] != before

    wait_for(new_worker, "a replacement worker to serve")
    assert "(WORKER_TIMEOUT); restarting this worker" in runtime.log()
