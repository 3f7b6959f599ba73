"""``modelport kubernetes render``: Azure ML's files in, every object a deploy would apply out, as YAML.

Run through click's CliRunner on ``kubernetes_group`` itself; no cluster. The output must parse, pass the schemas
and ``manifest_checks``, carry the model's and environment's settings, publish the service's route as a deploy does
(routes ConfigMap and auth Secret, read back with ``routing_state.read_state`` as the front end's controller reads
them), and never hold a key.
"""

from __future__ import annotations

import base64
import json
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
from modelport.frontend.routing_state import JWKS_FILE, KEYS_FILE, ROUTES_FILE, RoutingState, read_state
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


def the(rendered: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [item for item in kinds(rendered, kind) if item["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} objects named {name}"
    return found[0]


def routing_of(rendered: list[dict[str, Any]]) -> RoutingState:
    """The routing state the rendered routes ConfigMap and auth Secret publish, as the controller reads it."""
    state = read_state(the(rendered, "ConfigMap", objects.ROUTES_CONFIGMAP),
                       the(rendered, "Secret", objects.AUTH_SECRET))
    assert state is not None, "the auth Secret does not carry the routes ConfigMap's revision"
    return state


def secret_file(rendered: list[dict[str, Any]], name: str) -> Any:
    return json.loads(base64.b64decode(the(rendered, "Secret", objects.AUTH_SECRET)["data"][name]))


def test_render_prints_every_object_a_deploy_applies(project: Path) -> None:
    result = render("-m", "greeting:2", "--dc", DEPLOY_CONFIG, "--image", "registry.example/app:1", "--ct", "myaks",
                    "--namespace", "ml", "--primary-key", REAL_KEY)
    assert result.exit_code == 0, result.output
    rendered = list(yaml.safe_load_all(result.stdout))
    assert [item["kind"] for item in rendered] == ["Deployment", "Service", "ServiceAccount", "Role", "RoleBinding",
                                                   "Secret", "ConfigMap", "ConfigMap", "Deployment", "Service"]
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
    assert [item["metadata"]["name"] for item in kinds(rendered, "Secret")] == [objects.AUTH_SECRET]  # no keys one
    state = routing_of(rendered)
    assert state.revision == 1
    [route] = state.services
    assert (route.name, route.auth, route.scoring_timeout_ms) == ("greeter", "key", 5000)
    assert [(v.name, v.weight, v.replica_set) for v in route.versions] == [("default", 100, "default-1")]
    assert state.deployments == {("greeter", "default"): scoring["metadata"]["name"]}
    autoscale = state.autoscale[("greeter", "default")]
    assert autoscale is not None and (autoscale.min_replicas, autoscale.max_replicas) == (1, 3)
    assert route.keys == [PLACEHOLDER_KEYS["primary"], PLACEHOLDER_KEYS["secondary"]]
    assert secret_file(rendered, JWKS_FILE) is None
    assert REAL_KEY not in result.output
    assert REAL_KEY not in base64.b64decode(the(rendered, "Secret", objects.AUTH_SECRET)["data"][KEYS_FILE]).decode()
    assert "# Placeholders: the Secret a deploy writes holds the service's real keys" in result.stdout


def test_flags_win_over_the_file(project: Path) -> None:
    result = render("-m", "greeting:2", "--dc", DEPLOY_CONFIG, "--image", "registry.example/app:1",
                    "--num-replicas", "3", "--gpu-cores", "1", "--auth-enabled", "false", "--token-auth-enabled",
                    "true", "--ingress-service-type", "NodePort", "--tls")
    assert result.exit_code == 0, result.output
    rendered = list(yaml.safe_load_all(result.stdout))
    scoring = scoring_deployments(rendered)[0]
    assert scoring["spec"]["replicas"] == 3
    assert scoring["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert [item["metadata"]["name"] for item in kinds(rendered, "Secret")] == [objects.AUTH_SECRET]
    assert routing_of(rendered).services[0].auth == "token"
    assert secret_file(rendered, JWKS_FILE) is None  # the workspace's token public keys, only in the real Secret
    assert routing_of(rendered).autoscale[("greeter", "default")] is None  # a fixed count: the controller leaves it
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
    """The file's version (trafficPercentile 20) is its endpoint's first, so default: it gets its 20 % and, as
    the default version, the 80 % no version claims."""
    result = render("-m", "greeting:2", "--image", "registry.example/app:1", "--dc",
                    str(AZURE_FILES / "endpoint" / "deploymentconfig.json"), "--ks", REAL_KEY)
    assert result.exit_code == 0, result.output
    rendered = list(yaml.safe_load_all(result.stdout))
    scoring = scoring_deployments(rendered)[0]
    assert scoring["metadata"]["labels"][objects.VERSION] == "blue"
    assert scoring["metadata"]["name"] == objects.replica_set_name("greeter", "blue-1")
    state = routing_of(rendered)
    [route] = state.services
    assert [(v.name, v.weight, v.mirror_percent, v.replica_set) for v in route.versions] == [("blue", 100, 0, "blue-1")]
    assert state.deployments == {("greeter", "blue"): scoring["metadata"]["name"]}
    assert state.autoscale == {("greeter", "blue"): None}  # autoscaleEnabled false in the file
    routes = json.loads(the(rendered, "ConfigMap", objects.ROUTES_CONFIGMAP)["data"][ROUTES_FILE])
    assert routes["services"][0]["versions"][0]["deployment"] == scoring["metadata"]["name"]
    assert secret_file(rendered, KEYS_FILE) == {"revision": 1, "services": {"greeter": list(PLACEHOLDER_KEYS.values())}}
    assert not [item for item in kinds(rendered, "Secret") if item["metadata"]["name"] != objects.AUTH_SECRET]
    assert REAL_KEY not in result.output


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
