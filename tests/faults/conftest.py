"""The fault suite: real services behind the real front end, with replicas, Envoy and the control plane
killed under load, hostile input and the on-disk modes. Loopback only; every wait is bounded.

Each test records its figures (requests, failures by outcome, recovery seconds) with ``figures``;
they are printed at the end of the run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from modelport import AksWebservice, Environment, InferenceConfig, Model, Webservice
from tests.conftest import register_weights

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
def ws(new_workspace):
    return new_workspace("faultws", **FAULT_ENV)


@pytest.fixture(scope="module")
def model(ws, tmp_path_factory):
    return register_weights(ws, tmp_path_factory.mktemp("model"))


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


def status(ws, name: str) -> dict:
    return Webservice(ws, name).serialize()["status"]
