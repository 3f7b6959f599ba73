"""Deploy a registered model as a local service and use it: the whole flow through real processes."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from modelport import AksWebservice, Environment, InferenceConfig, Model, Webservice, Workspace
from modelport.api import server
from modelport.errors import Conflict, InvalidInput
from modelport.sdk.webservice import WebserviceError

APP = Path(__file__).resolve().parents[1] / "fixtures" / "deploy_app"


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    os.environ["MODELPORT_SCALE_DOWN_DELAY_S"] = "2"  # read by the control plane this workspace starts
    workspace = Workspace.create("deployws", tmp_path_factory.mktemp("ws"))
    yield workspace
    os.environ.pop("MODELPORT_SCALE_DOWN_DELAY_S")
    for service in Webservice.list(workspace):
        service.delete()
    server.stop(workspace._dir)


@pytest.fixture(scope="module")
def model(ws, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "weights.txt"
    path.write_text("w-1")
    return Model.register(ws, path, "echo-model")


def inference_config(**variables) -> InferenceConfig:
    env = Environment("deploy-test-env")
    env.environment_variables = dict(variables)
    return InferenceConfig("score.py", source_directory=APP, environment=env)


def wait_until(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_deploy_score_and_delete(ws, model):
    config = AksWebservice.deploy_configuration(num_replicas=1, auth_enabled=False)
    service = Model.deploy(ws, "echo-svc", [model], inference_config(), config)
    assert service.state == "Transitioning"
    service.wait_for_deployment(timeout_sec=120)
    assert service.state == "Healthy"
    assert service.run({"echo": "hi"})["weights"] == "w-1"
    assert httpx.get(service.swagger_uri).json()["swagger"] == "2.0"
    assert "init" in service.get_logs().lower() or service.get_logs()
    assert [s.name for s in Webservice.list(ws, model_name="echo-model")] == ["echo-svc"]
    with pytest.raises(Conflict, match="already exists"):
        Model.deploy(ws, "echo-svc", [model], inference_config(), config)
    pid = service.run({})["pid"]
    service.delete()
    assert not Path(f"/proc/{pid}").exists()  # stopped before delete() returned


def test_init_failure_is_failed_with_the_log_tail(ws, model):
    config = AksWebservice.deploy_configuration(num_replicas=1, auth_enabled=False)
    service = Model.deploy(ws, "broken-svc", [model], inference_config(FAIL_INIT="1"), config)
    started = time.monotonic()
    with pytest.raises(WebserviceError, match="init exploded on purpose"):
        service.wait_for_deployment(timeout_sec=60)
    assert time.monotonic() - started < 30
    assert service.state == "Failed"
    service.delete()


def test_bad_names_and_missing_models(ws, model):
    config = AksWebservice.deploy_configuration(num_replicas=1)
    with pytest.raises(InvalidInput, match="service name"):
        Model.deploy(ws, "Bad_Name", [model], inference_config(), config)
    with pytest.raises(InvalidInput):
        Model.deploy(ws, "no-models", [], inference_config(), config)


def test_autoscaling_follows_load_up_and_down(ws, model):
    config = AksWebservice.deploy_configuration(autoscale_min_replicas=1, autoscale_max_replicas=3,
                                                autoscale_refresh_seconds=1, autoscale_target_utilization=70,
                                                max_request_wait_time=5000, auth_enabled=False)
    service = Model.deploy(ws, "scaled-svc", [model], inference_config(), config)
    service.wait_for_deployment(timeout_sec=120)

    def replicas() -> tuple[int, int]:
        status = Webservice(ws, "scaled-svc").serialize()["status"]
        return status.get("replicas", 0), status.get("ready_replicas", 0)

    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(service.scoring_uri, json={"sleep": 0.3}, timeout=30)

    threads = [threading.Thread(target=load) for _ in range(6)]
    for thread in threads:
        thread.start()
    try:
        assert wait_until(lambda: replicas() == (3, 3), timeout=30), replicas()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert wait_until(lambda: replicas()[0] == 1, timeout=30), replicas()  # down after the (short) delay
    service.delete()


@pytest.fixture(scope="module")
def keyed(ws, model):
    """One key-auth service shared by the auth, update and resilience tests (2 replicas)."""
    config = AksWebservice.deploy_configuration(num_replicas=2)
    service = Model.deploy(ws, "keyed-svc", [model], inference_config(APP_VERSION="1"), config)
    service.wait_for_deployment(timeout_sec=120)
    yield service
    service.delete()


def call(service, key: str | None, body: dict | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(service.scoring_uri, json=body or {}, headers=headers, timeout=30)


def test_key_auth(keyed):
    primary, secondary = keyed.get_keys()
    assert call(keyed, primary).status_code == 200
    assert call(keyed, secondary).status_code == 200
    for bad in (None, "wrong-key"):
        response = call(keyed, bad)
        assert response.status_code == 401
        assert "message" in response.json()
    keyed.regen_key("Primary")
    new_primary, _ = keyed.get_keys()
    assert wait_until(lambda: call(keyed, primary).status_code == 401, timeout=10)
    assert call(keyed, new_primary).status_code == 200
    assert keyed.run({"echo": 1})["echo"] == 1  # the SDK uses the current key


def test_token_auth(ws, model, keyed):
    config = AksWebservice.deploy_configuration(num_replicas=1, auth_enabled=False, token_auth_enabled=True)
    service = Model.deploy(ws, "token-svc", [model], inference_config(), config)
    service.wait_for_deployment(timeout_sec=120)
    token, refresh_by = service.get_token()
    assert refresh_by > datetime.now()  # Azure's naive local datetime
    assert call(service, token).status_code == 200
    assert call(service, None).status_code == 401
    assert call(service, token[:-4] + "AAAA").status_code == 401  # forged signature
    assert service.run({"echo": "t"})["echo"] == "t"
    with pytest.raises(InvalidInput, match="tokens are not enabled for service 'keyed-svc': it uses key auth"):
        Webservice(ws, keyed.name).get_token()
    service.delete()


def test_response_names_the_version(keyed):
    response = call(keyed, keyed.get_keys()[0])
    assert any(name.endswith("version") for name in response.headers)


def test_both_replicas_serve_and_a_killed_one_is_replaced(keyed):
    key = keyed.get_keys()[0]
    pids = {call(keyed, key).json()["pid"] for _ in range(30)}
    assert len(pids) == 2, pids  # least-request balancing spreads the load
    victim = pids.pop()
    os.kill(victim, 9)
    failures = 0
    deadline = time.monotonic() + 30
    seen: set[int] = set()
    while time.monotonic() < deadline and len(seen - {victim}) < 2:
        response = call(keyed, key)
        if response.status_code == 200:
            seen.add(response.json()["pid"])
        else:
            failures += 1
    assert victim not in seen
    assert len(seen) == 2, f"expected the survivor and a replacement, saw {seen}"
    assert failures <= 2  # at most the requests the dying replica held


def test_rolling_update_under_load_has_no_failed_request(keyed):
    key = keyed.get_keys()[0]
    stop = threading.Event()
    results: list[int] = []

    def load() -> None:
        while not stop.is_set():
            results.append(call(keyed, key, {"sleep": 0.02}).status_code)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        keyed.update(inference_config=inference_config(APP_VERSION="2"))
        keyed.wait_for_deployment(timeout_sec=120)
        assert wait_until(lambda: call(keyed, key).json()["version"] == "2", timeout=30)
        time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert results and set(results) == {200}, {s: results.count(s) for s in set(results)}


def test_control_plane_restart_keeps_serving(ws, keyed):
    key = keyed.get_keys()[0]
    before = call(keyed, key).json()["pid"]
    old = server.read_info(ws._dir)["pid"]
    os.kill(old, 9)
    assert call(keyed, key).status_code == 200  # Envoy and the replicas outlive the control plane
    Webservice(ws, "keyed-svc").update_deployment_state()  # the client starts a new control plane
    assert server.read_info(ws._dir)["pid"] != old
    time.sleep(2)
    pids = {call(keyed, key).json()["pid"] for _ in range(20)}
    assert before in pids or len(pids) == 2  # the same replicas were re-adopted, not duplicated
    assert Webservice(ws, "keyed-svc").state == "Healthy"


def test_an_environment_that_fails_to_build_fails_the_service_with_the_log_tail(ws, model):
    env = Environment("unbuildable-env")
    env.python.conda_dependencies.add_pip_package("modelport-no-such-package==0.0.1")
    config = AksWebservice.deploy_configuration(num_replicas=1)
    service = Model.deploy(ws, "unbuildable", [model], InferenceConfig("score.py", APP, env), config)
    with pytest.raises(WebserviceError, match="modelport-no-such-package"):
        service.wait_for_deployment(timeout_sec=120)
    assert service.state == "Failed"
    service.delete()


def test_gpu_cores_without_a_gpu_is_refused(ws, model):
    if Path("/dev/nvidia0").exists():
        pytest.skip("this machine has a GPU")
    with pytest.raises(InvalidInput, match="gpu_cores=1"):
        Model.deploy(ws, "gpu-svc", [model], inference_config(), AksWebservice.deploy_configuration(gpu_cores=1))


def test_resource_limits_are_reported(ws, model):
    config = AksWebservice.deploy_configuration(num_replicas=1, auth_enabled=False, cpu_cores_limit=1,
                                                memory_gb_limit=2)
    service = Model.deploy(ws, "limited-svc", [model], inference_config(), config)
    service.wait_for_deployment(timeout_sec=120)
    resources = service.serialize()["status"]["resources"]
    assert any("RLIMIT_AS" in note for note in resources) and any("affinity" in note for note in resources)
    service.delete()


def test_cli_deploys_azure_ml_files_unchanged(ws, model, tmp_path):
    import json
    import subprocess
    import sys

    (tmp_path / "inferenceconfig.json").write_text(json.dumps({
        "entryScript": "score.py", "sourceDirectory": str(APP),
        "environment": {"name": "cli-env", "python": {"userManagedDependencies": False,
                                                      "condaDependencies": {"dependencies": []}}}}))
    (tmp_path / "deploymentconfig.json").write_text(json.dumps({
        "computeType": "aks", "autoScaler": {"autoscaleEnabled": False}, "numReplicas": 1, "authEnabled": True,
        "containerResourceRequirements": {"cpu": 0.5, "memoryInGB": 1.0}, "scoringTimeoutMs": 60000}))

    def modelport(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "modelport.cli.main", *args], cwd=ws.path, capture_output=True,
                              text=True, timeout=300)

    deployed = modelport("model", "deploy", "-n", "cli-svc", "-m", model.id, "--ic",
                         str(tmp_path / "inferenceconfig.json"), "--dc", str(tmp_path / "deploymentconfig.json"),
                         "-o", "json")
    assert deployed.returncode == 0, deployed.stderr
    assert json.loads(deployed.stdout)["state"] == "Healthy"
    assert json.loads(modelport("service", "run", "-n", "cli-svc", "-d", '{"echo": 5}').stdout)["echo"] == 5
    listed = json.loads(modelport("service", "list", "-o", "json").stdout)
    assert "cli-svc" in [s["name"] for s in listed]
    keys = json.loads(modelport("service", "keys", "-n", "cli-svc", "-o", "json").stdout)
    assert keys["primaryKey"] and keys["secondaryKey"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"computeType": "aks", "autoScaler": {"minReplica": 1}}))
    refused = modelport("model", "deploy", "-n", "cli-bad", "-m", model.id, "--ic",
                        str(tmp_path / "inferenceconfig.json"), "--dc", str(bad))
    assert refused.returncode == 1 and "autoScaler.minReplica" in refused.stderr
    assert modelport("service", "delete", "-n", "cli-svc").returncode == 0
