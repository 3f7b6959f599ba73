"""``modelport kubernetes render``: Azure ML's files in, every object a deploy would apply out, as YAML.

Run through click's CliRunner on ``kubernetes_group`` itself; no cluster. The output must parse, pass the schemas
and ``manifest_checks``, carry the model's and environment's settings, and never hold a key.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner, Result

from modelport.backends.kubernetes import objects
from modelport.backends.kubernetes.images import app_image_name
from modelport.cli.kubernetes import PLACEHOLDER_KEYS, kubernetes_group
from modelport.sdk.compute import ComputeTarget, KubernetesCompute
from modelport.sdk.inference_config import InferenceConfig
from tests.conftest import FIXTURES, register_weights

from .manifest_checks import kinds, problems, scoring_deployments

AZURE_FILES = FIXTURES / "azure_files"
DEPLOY_CONFIG = str(AZURE_FILES / "aks" / "deploymentconfig.json")
REAL_KEY = "k3y-that-must-never-be-printed"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Azure ML's project layout (src/score.py, src/inferenceconfig.json with an inline environment), as the
    current folder, in no workspace."""
    folder = tmp_path / "project"
    shutil.copytree(AZURE_FILES / "project", folder)
    monkeypatch.chdir(folder)
    return folder


def render(*args: str) -> Result:
    return CliRunner().invoke(kubernetes_group, ["render", "-n", "greeter", "--ic", "src/inferenceconfig.json",
                                                 *args])


def env_of(rendered: list[dict[str, Any]]) -> dict[str, str]:
    scoring = scoring_deployments(rendered)[0]["spec"]["template"]["spec"]["containers"][0]
    return {variable["name"]: variable["value"] for variable in scoring["env"]}


def test_render_prints_every_object_a_deploy_applies(project: Path) -> None:
    result = render("-m", "greeting:2", "--dc", DEPLOY_CONFIG, "--image", "registry.example/app:1", "--ct", "myaks",
                    "--namespace", "ml", "--primary-key", REAL_KEY)
    assert result.exit_code == 0, result.output
    rendered = list(yaml.safe_load_all(result.stdout))
    assert [item["kind"] for item in rendered] == ["Deployment", "Service", "Secret", "ServiceAccount", "Role",
                                                   "RoleBinding", "ConfigMap", "ConfigMap", "Deployment", "Service"]
    assert {item["metadata"]["namespace"] for item in rendered} == {"ml"}
    assert problems(rendered, "default", "myaks") == []
    for item in rendered:
        for version in ("1.29", "1.33"):
            kubernetes_validate.validate(item, version, strict=True)
    env = env_of(rendered)
    assert env["AZUREML_MODEL_DIR"] == "/var/azureml-app/azureml-models/greeting/2"
    assert env["AZUREML_ENTRY_SCRIPT"] == "src/score.py" and env["AZUREML_SOURCE_DIRECTORY"] == "src"
    assert env["EXAMPLE_ENV_VAR"] == "EXAMPLE_VALUE"  # the inference config's environment variables
    assert (env["SERVICE_NAME"], env["SCORING_TIMEOUT_MS"], env["MODELPORT_MAX_CONCURRENT_REQUESTS"]) \
        == ("greeter", "5000", "2")  # the deploymentconfig.json's settings
    scoring = scoring_deployments(rendered)[0]
    assert scoring["metadata"]["name"] == objects.replica_set_name("greeter", "default-1")
    assert "replicas" not in scoring["spec"]  # autoscaled in the file: the controller owns the count
    assert scoring["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] \
        == {"cpu": "500m", "memory": "1Gi"}
    assert kinds(rendered, "Secret")[0]["stringData"] == PLACEHOLDER_KEYS
    assert REAL_KEY not in result.output


def test_flags_win_over_the_file(project: Path) -> None:
    result = render("-m", "greeting:2", "--dc", DEPLOY_CONFIG, "--image", "registry.example/app:1",
                    "--num-replicas", "3", "--gpu-cores", "1", "--auth-enabled", "false", "--token-auth-enabled",
                    "true", "--ingress-service-type", "NodePort", "--tls")
    assert result.exit_code == 0, result.output
    rendered = list(yaml.safe_load_all(result.stdout))
    scoring = scoring_deployments(rendered)[0]
    assert scoring["spec"]["replicas"] == 3
    assert scoring["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert not kinds(rendered, "Secret")  # token auth: no keys
    front_end = next(item for item in kinds(rendered, "Service") if item["metadata"]["name"] == objects.FRONT_END_NAME)
    assert front_end["spec"]["type"] == "NodePort" and [p["port"] for p in front_end["spec"]["ports"]] == [80, 443]
    assert problems(rendered, "default", "kubernetes") == []


@pytest.mark.parametrize(("args", "expected"), [
    (("-m", "greeting:2"), "give --image IMAGE"),
    (("-m", "greeting", "--image", "x"), "give NAME:VERSION"),
    (("-m", "greeting:2", "--image", "x", "--dc", "local.json"), "not computeType 'local'"),
    (("-m", "greeting:2", "--image", "x", "--ct", "k8s_cluster"), "compute target name"),
])
def test_mistakes_are_one_line_errors(project: Path, args: tuple[str, ...], expected: str) -> None:
    (project / "local.json").write_text('{"computeType": "local"}')
    result = render(*args)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and expected in result.stderr
    assert result.stderr.strip().count("\n") == 0 and not result.stdout


def test_an_endpoint_version_is_rendered_under_its_name(project: Path) -> None:
    result = render("-m", "greeting:2", "--image", "registry.example/app:1", "--dc",
                    str(AZURE_FILES / "endpoint" / "deploymentconfig.json"))
    assert result.exit_code == 0, result.output
    scoring = scoring_deployments(list(yaml.safe_load_all(result.stdout)))[0]
    assert scoring["metadata"]["labels"][objects.VERSION] == "blue"
    assert scoring["metadata"]["name"] == objects.replica_set_name("greeter", "blue-1")


def test_in_a_workspace_models_resolve_and_the_image_is_the_one_a_deploy_builds(project: Path, new_workspace) -> None:
    workspace = new_workspace("render-ws")
    model = register_weights(workspace, project)
    result = render("-m", model.name, "-w", str(workspace.path))
    assert result.exit_code == 0, result.output
    rendered = list(yaml.safe_load_all(result.stdout))
    assert problems(rendered, "render-ws", "kubernetes") == []
    assert env_of(rendered)["AZUREML_MODEL_DIR"] == f"/var/azureml-app/azureml-models/{model.name}/{model.version}"
    inference = InferenceConfig.from_file("src/inferenceconfig.json", workspace)
    record = model.serialize()
    expected = app_image_name(inference.environment._to_dict(), inference.package_source(workspace),
                              ({key: record[key] for key in ("name", "version", "artifact_sha256", "artifact_kind",
                                                             "artifact_name")},),
                              None, "score.py", "src")
    assert scoring_deployments(rendered)[0]["spec"]["template"]["spec"]["containers"][0]["image"] == expected


def test_an_attached_targets_settings_are_rendered_emulated(project: Path, new_workspace, api_emulator,
                                                             tmp_path: Path) -> None:
    """A cluster attached through the API emulator: its Service type and image registry are what render uses,
    and flags that would contradict it are refused."""
    workspace = new_workspace("render-attached")
    model = register_weights(workspace, project)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(api_emulator.kubeconfig())
    ComputeTarget.attach(workspace, "myaks", KubernetesCompute.attach_configuration(
        kubeconfig=str(kubeconfig), ingress_service_type="NodePort", image_registry="registry.example/team"))
    result = render("-m", model.name, "-w", str(workspace.path), "--ct", "myaks")
    assert result.exit_code == 0, result.output
    rendered = list(yaml.safe_load_all(result.stdout))
    assert problems(rendered, "render-attached", "myaks") == []
    front_end = next(item for item in kinds(rendered, "Service") if item["metadata"]["name"] == objects.FRONT_END_NAME)
    assert front_end["spec"]["type"] == "NodePort"
    image = scoring_deployments(rendered)[0]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith("registry.example/team/modelport-app:")
    for flags, expected in ((("--tls",), "--tls: compute target 'myaks' is attached"),
                            (("--namespace", "other"), "namespace 'other' is not compute target 'myaks'")):
        refused = render("-m", model.name, "-w", str(workspace.path), "--ct", "myaks", *flags)
        assert refused.exit_code == 1 and expected in refused.stderr, refused.output
