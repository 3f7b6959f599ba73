"""The workspace's collections as Azure ML's ``Workspace`` gives them, and deployment targets.

``ws.models`` / ``ws.environments`` / ``ws.compute_targets`` / ``ws.webservices`` are dicts by name of
``Model`` (latest version), ``Environment`` (latest version), ``ComputeTarget`` and ``Webservice``.
A deployment target that is not attached is refused, by the SDK and ``modelport model deploy --ct``
with the same line, and nothing is deployed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelport import (
    AksWebservice,
    ComputeTarget,
    Environment,
    InferenceConfig,
    Model,
    Webservice,
)
from modelport.errors import NotFound
from tests.conftest import register_weights

APP = Path(__file__).resolve().parents[1] / "fixtures" / "deploy_app"
NOT_ATTACHED = ("compute target 'myaks' is not attached to workspace 'targetsws'; its targets are 'local' (this "
                "machine): deploy to one of them (--ct NAME, SDK: deployment_target=), or attach the cluster first "
                "(modelport computetarget attach kubernetes, SDK: ComputeTarget.attach)")


@pytest.fixture(scope="module")
def ws(new_workspace):
    return new_workspace("targetsws")


@pytest.fixture(scope="module")
def model(ws, tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    register_weights(ws, folder, "w-1")
    return register_weights(ws, folder, "w-2")


def inference_config() -> InferenceConfig:
    return InferenceConfig("score.py", source_directory=APP, environment=Environment("targets-test-env"))


def test_models_and_environments_are_the_latest_version_by_name(ws, model, tmp_path):
    other = tmp_path / "other.bin"
    other.write_bytes(b"x")
    Model.register(ws, other, "other-model")
    for pins in (["six==1.16.0"], ["six==1.17.0"]):
        env = Environment("pinned-env")
        env.python.conda_dependencies.add_pip_package(pins[0])
        env.register(ws)
    models = ws.models
    assert {name: (type(m), m.version) for name, m in models.items()} == {
        "echo-model": (Model, 2), "other-model": (Model, 1)}
    environments = ws.environments
    assert isinstance(environments["pinned-env"], Environment)
    assert (environments["pinned-env"].version, environments["pinned-env"].python.conda_dependencies.pip_packages) \
        == ("2", ["six==1.17.0"])


def test_compute_targets_hold_local(ws):
    targets = ws.compute_targets
    assert list(targets) == ["local"]
    assert isinstance(targets["local"], ComputeTarget)
    assert (targets["local"].name, targets["local"].type) == ("local", "Local")


def test_webservices_are_the_workspace_services_by_name(ws, model):
    assert ws.webservices == {}
    config = AksWebservice.deploy_configuration(num_replicas=1, auth_enabled=False)
    Model.deploy(ws, "listed-svc", [model], inference_config(), config,
                 deployment_target=ws.compute_targets["local"]).wait_for_deployment(timeout_sec=300)
    Model.deploy(ws, "named-target-svc", [model], inference_config(), config, deployment_target="local")
    services = ws.webservices
    assert sorted(services) == ["listed-svc", "named-target-svc"]
    assert all(isinstance(s, Webservice) for s in services.values())
    assert services["listed-svc"].state == "Healthy"
    assert services["listed-svc"].run({"echo": 3})["weights"] == "w-2"
    services["named-target-svc"].delete()
    assert list(ws.webservices) == ["listed-svc"]


@pytest.mark.parametrize("target", ["myaks", "deployment_target object", "compute_target_name"])
def test_an_unattached_target_is_refused_and_nothing_is_deployed(ws, model, target):
    with pytest.raises(NotFound) as refused:
        if target == "myaks":
            Model.deploy(ws, "never-svc", [model], inference_config(), deployment_target="myaks")
        elif target == "compute_target_name":
            Model.deploy(ws, "never-svc", [model], inference_config(),
                         AksWebservice.deploy_configuration(compute_target_name="myaks"))
        else:
            Model.deploy(ws, "never-svc", [model], inference_config(), deployment_target=ComputeTarget(ws, "myaks"))
    assert str(refused.value) == NOT_ATTACHED
    assert "never-svc" not in ws.webservices


def test_cli_refuses_the_target_with_the_same_line(ws, model, tmp_path):
    (tmp_path / "inferenceconfig.json").write_text(json.dumps({"entryScript": "score.py", "sourceDirectory": str(APP)}))
    result = subprocess.run([sys.executable, "-m", "modelport.cli.main", "model", "deploy", "-n", "never-svc",
                             "-m", model.id, "--ic", str(tmp_path / "inferenceconfig.json"), "--ct", "myaks"],
                            cwd=ws.path, capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stderr) == (1, f"Error: {NOT_ATTACHED}\n")
    assert "never-svc" not in ws.webservices
