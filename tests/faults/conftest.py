"""The fault suite: real services behind the real front end, with replicas, Envoy and the control plane
killed under load, hostile input and the on-disk modes. Loopback only; every wait is bounded.

Each test records its figures (requests, failures by outcome, recovery seconds) with ``figures``;
they are printed at the end of the run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from modelport import AksWebservice, Environment, InferenceConfig, Model, Webservice, Workspace
from modelport.api import server

APP = Path(__file__).resolve().parents[1] / "fixtures" / "deploy_app"
FAULT_ENV = {
    "MODELPORT_FRONTEND_HEADERS_TIMEOUT_S": "2",  # slow clients are cut off quickly in these tests
    "MODELPORT_FRONTEND_BODY_TIMEOUT_S": "3",
    "MODELPORT_REPLICA_STOP_TIMEOUT_S": "3",
}
_FIGURES: list[str] = []


@pytest.fixture
def figures(request):
    """``figures("...")`` records a line of measured figures for this test, printed after the run."""
    def record(line: str) -> None:
        _FIGURES.append(f"{request.node.name}: {line}")
    return record


def pytest_terminal_summary(terminalreporter):
    if _FIGURES:
        terminalreporter.section("fault suite figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    saved = {k: os.environ.get(k) for k in FAULT_ENV}
    os.environ.update(FAULT_ENV)  # read by the control plane this workspace starts
    workspace = Workspace.create("faultws", tmp_path_factory.mktemp("ws"))
    yield workspace
    for service in Webservice.list(workspace):
        service.delete()
    server.stop(workspace._dir)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def model(ws, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "weights.txt"
    path.write_text("w-1")
    return Model.register(ws, path, "echo-model")


def inference_config(**variables: str) -> InferenceConfig:
    env = Environment("fault-env")
    env.environment_variables = dict(variables)
    return InferenceConfig("score.py", source_directory=APP, environment=env)


def deploy(ws, model, name: str, replicas: int = 2, **settings) -> Webservice:
    """Deploy the echo app with ``replicas`` replicas (key auth unless told) and wait until Healthy."""
    variables = settings.pop("variables", {})
    config = AksWebservice.deploy_configuration(num_replicas=replicas, **settings)
    service = Model.deploy(ws, name, [model], inference_config(**variables), config)
    service.wait_for_deployment(timeout_sec=120)
    return service


def replica_states(ws, service: str) -> dict[str, dict]:
    """``{"default-1/replica-0": state, ...}``: the local backend's replica state files of a service."""
    root = ws._dir.root / "replicas" / service
    return {f"{p.parent.name}/{p.stem}": json.loads(p.read_text()) for p in sorted(root.glob("*/replica-*.json"))}


def status(ws, name: str) -> dict:
    return Webservice(ws, name).serialize()["status"]
