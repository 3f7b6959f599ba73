"""Deploy a registered model as a local service and use it: the whole flow through real processes."""

from __future__ import annotations

import os
import threading
import time
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
    assert wait_until(lambda: not Path(f"/proc/{pid}").exists())


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
            try:
                httpx.post(service.scoring_uri, json={"sleep": 0.3}, timeout=30)
            except httpx.HTTPError:
                pass

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
