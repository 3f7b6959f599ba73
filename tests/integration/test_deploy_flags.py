"""``modelport model deploy`` as a user moving off Azure runs it: real Azure ML files, az ml's flags over them, a real
control plane, replicas and front end, scored over HTTP.

The project's inferenceconfig.json lies in ``src/`` with ``sourceDirectory: "src"`` and names its conda file with
``environment.python.condaDependenciesFile``; that file's pip list takes the service's package from a PEP 503 index
(and the runtime's from a find-links folder) served on 127.0.0.1, so the deploy needs no network beyond loopback.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from modelport import Environment, Model, Webservice, Workspace
from modelport.api import server
from tests.integration.test_environment_build import GREETING_PROJECT, LocalIndex, greeting_wheel, runtime_wheelhouse

pytestmark = pytest.mark.timeout(900)

FILES = Path(__file__).resolve().parents[1] / "fixtures" / "azure_files"
GREETING_SCORE = '''
import json
import mp_greeting


def init():
    pass


def run(raw_data):
    return mp_greeting.GREETING
'''
GREETING = "hello from the local index, version 1.0"


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    workspace = Workspace.create("flagsws", tmp_path_factory.mktemp("ws"))
    weights = tmp_path_factory.mktemp("model") / "weights.txt"
    weights.write_text("w")
    Model.register(workspace, weights, "weights")
    yield workspace
    for service in Webservice.list(workspace):
        service.delete()
    server.stop(workspace._dir)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The project fixture, its score.py importing the package its conda file takes from the local index."""
    root = tmp_path_factory.mktemp("checkout") / "project"
    shutil.copytree(FILES / "project", root)
    (root / "src" / "score.py").write_text(GREETING_SCORE)
    packages = tmp_path_factory.mktemp("index")
    greeting_wheel(packages / GREETING_PROJECT, "1.0")
    wheels = runtime_wheelhouse(tmp_path_factory.mktemp("wheels"))
    with LocalIndex(packages) as index:
        (root / "src" / "conda_env.yml").write_text(
            f"name: project_environment\ndependencies:\n  - python={sys.version_info.major}.{sys.version_info.minor}\n"
            f"  - pip:\n    - azureml-defaults\n    - --index-url {index.url}\n    - --find-links {wheels}\n"
            f"    - {GREETING_PROJECT}==1.0\n")
        yield root


def modelport(ws, project: Path, *args: str) -> subprocess.CompletedProcess:
    """The CLI run from the project's root, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "modelport.cli.main", *args, "-w", str(ws.path)], cwd=project,
                          capture_output=True, text=True, timeout=600)


def warnings_of(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("Warning: ")]


def test_flags_override_the_files_and_the_project_layout_deploys(ws, project):
    dc = FILES / "aks" / "deploymentconfig.json"
    result = modelport(ws, project, "model", "deploy", "-n", "greeting-svc", "-m", "weights:1",
                       "--ic", "src/inferenceconfig.json", "--dc", str(dc), "--auth-enabled", "false", "--nr", "1",
                       "--tag", "team=ml", "--description", "from the az flags", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert warnings_of(result) == [f"Warning: {dc}: unknown key 'enableAppInsights' ignored (did you mean "
                                   "'appInsightsEnabled'?); Azure ML ignored it too (strict mode makes this an error)"]
    view = json.loads(result.stdout)
    assert view["state"] == "Healthy"
    answer = httpx.post(view["scoring_uri"], content="{}", headers={"Content-Type": "application/json"}, timeout=60)
    assert (answer.status_code, answer.json()) == (200, GREETING)  # no key: --auth-enabled false beat authEnabled
    deploy = Webservice(ws, "greeting-svc").serialize()["deploy"]
    assert (deploy["auth_enabled"], deploy["num_replicas"], deploy["autoscale_enabled"], deploy["tags"],
            deploy["description"], deploy["scoring_timeout_ms"], deploy["replica_max_concurrent_requests"]) == \
        (False, 1, False, {"team": "ml"}, "from the az flags", 5000, 2)


def test_an_aci_file_deploys_as_a_one_replica_local_service_with_key_auth(ws, project):
    dc = FILES / "aci" / "deploymentconfig.json"
    result = modelport(ws, project, "model", "deploy", "-n", "aci-svc", "-m", "weights:1",
                       "--ic", "src/inferenceconfig.json", "--dc", str(dc), "-o", "json")
    assert result.returncode == 0, result.stderr
    assert warnings_of(result)[0].startswith(f"Warning: {dc}: computeType ACI: ACI deploys as a local service "
                                             "here: one replica on this machine")
    assert warnings_of(result)[1:] == [
        f"Warning: {dc}: location \"westeurope\": the service runs on this machine, not in an Azure region",
        f"Warning: {dc}: dnsNameLabel \"churn-model\": the service is reached at its scoring URI on the front end "
        "(service.scoring_uri), not at a DNS name"]
    service = Webservice(ws, "aci-svc")
    refused = httpx.post(service.scoring_uri, content="{}", timeout=60)
    key = service.get_keys()[0]
    scored = httpx.post(service.scoring_uri, content="{}", timeout=60, headers={"Authorization": f"Bearer {key}"})
    assert (refused.status_code, scored.status_code, scored.json()) == (401, 200, GREETING)
    deploy = service.serialize()["deploy"]
    assert (deploy["num_replicas"], deploy["cpu_cores_limit"], deploy["memory_gb_limit"]) == (1, 0.5, 1.0)


def test_an_endpoint_file_deploys_an_endpoint_with_its_first_version(ws, project):
    dc = FILES / "endpoint" / "deploymentconfig.json"
    result = modelport(ws, project, "model", "deploy", "-n", "endpoint-svc", "-m", "weights:1",
                       "--ic", "src/inferenceconfig.json", "--dc", str(dc), "-o", "json")
    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    assert (view["kind"], list(view["versions"])) == ("endpoint", ["blue"])
    blue = view["versions"]["blue"]
    assert (blue["traffic_percentile"], blue["effective_percentile"], blue["is_default"]) == (20, 100, True)
    Webservice(ws, "endpoint-svc").delete()


def test_strict_refuses_an_unknown_key_before_deploying(ws, project):
    dc = FILES / "aks" / "deploymentconfig.json"
    result = modelport(ws, project, "model", "deploy", "-n", "strict-svc", "-m", "weights:1",
                       "--ic", "src/inferenceconfig.json", "--dc", str(dc), "--strict")
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: {dc}: unknown key 'enableAppInsights' (did you mean "
                                    "'appInsightsEnabled'?); known keys at the top level: ")
    assert "strict-svc" not in [service.name for service in Webservice.list(ws)]


NO_AZURE = ("there is no Azure subscription or resource group here; the workspace is the one of the folder "
            "(-w/--workspace, default: this folder or a parent)")


@pytest.fixture(scope="module")
def az_line(ws, project):
    """A whole ``az ml model deploy`` line: -g, --workspace-name, --subscription-id, and the registered environment
    (the project's conda file) named by -e and --ev instead of an inference config's."""
    registered = Environment.from_conda_specification("greeting-registered",
                                                      project / "src" / "conda_env.yml").register(ws)
    return modelport(ws, project, "model", "deploy", "-n", "az-line-svc", "-m", "weights:1", "-g", "myrg",
                     "--workspace-name", "flagsws", "--subscription-id", "0000-11", "-e", "greeting-registered",
                     "--ev", registered.version, "--es", "score.py", "--sd", "src", "--nr", "1", "--tag", "team=ml",
                     "-o", "json")


def test_a_whole_az_line_deploys_with_the_registered_environment(ws, az_line):
    assert az_line.returncode == 0, az_line.stderr
    assert warnings_of(az_line) == [f'Warning: the command line: --resource-group "myrg": {NO_AZURE}',
                                    f'Warning: the command line: --subscription-id "0000-11": {NO_AZURE}']
    service = Webservice(ws, "az-line-svc")
    key = service.get_keys()[0]
    answer = httpx.post(service.scoring_uri, content="{}", timeout=60, headers={"Authorization": f"Bearer {key}"})
    assert (answer.status_code, answer.json()) == (200, GREETING)  # the package only the registered env has


def test_regen_key_shows_the_keys_and_run_prints_a_table(ws, project, az_line):
    regenerated = modelport(ws, project, "service", "regen-key", "-n", "az-line-svc", "-k", "Secondary",
                            "-s", "a-secondary-key-of-32-characters", "-o", "json")
    assert regenerated.returncode == 0, regenerated.stderr
    primary, _ = Webservice(ws, "az-line-svc").get_keys()
    assert json.loads(regenerated.stdout) == {"primaryKey": primary,
                                              "secondaryKey": "a-secondary-key-of-32-characters"}
    table = modelport(ws, project, "service", "run", "-n", "az-line-svc", "-d", "{}", "-o", "table")
    assert (table.returncode, table.stdout.splitlines()) == (0, ["result", GREETING]), table.stderr
    plain = modelport(ws, project, "service", "run", "-n", "az-line-svc", "-d", "{}")
    assert json.loads(plain.stdout) == GREETING  # JSON by default, as az ml service run printed


def test_service_update_applies_the_setting_flags_and_adds_tags(ws, project, az_line):
    result = modelport(ws, project, "service", "update", "-n", "az-line-svc", "--nr", "2", "--tm", "7000",
                       "--tag", "stage=prod", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["state"] == "Healthy"
    deploy = Webservice(ws, "az-line-svc").serialize()["deploy"]
    assert (deploy["num_replicas"], deploy["scoring_timeout_ms"], deploy["tags"]) == \
        (2, 7000, {"team": "ml", "stage": "prod"})
