"""The key rule on users' real files: deploymentconfig.json (AKS, ACI, AKSENDPOINT, local), both inferenceconfig.json
forms and Environment JSON.

A key Azure ML accepted that asks for nothing is silent; one asking for something modelport does not do is one
ConfigWarning naming the file's key and what modelport does instead; an unknown key warns with the nearest known key
and is an error only in strict mode.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest

from modelport.errors import InvalidInput
from modelport.sdk.deploy_config import DeploymentConfig, aks_deploy_configuration
from modelport.sdk.deploy_config_files import aci_deploy_configuration
from modelport.sdk.environment import Environment
from modelport.sdk.files import ConfigWarning, asks_for_nothing
from modelport.sdk.inference_config import InferenceConfig

FILES = Path(__file__).resolve().parent.parent / "fixtures" / "azure_files"


def messages(record) -> list[str]:
    return [str(warning.message) for warning in record if issubclass(warning.category, ConfigWarning)]


@pytest.fixture
def silent():
    """Inside, any ConfigWarning fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)
        yield


@pytest.fixture
def copied(tmp_path, monkeypatch):
    """A copy of a fixture folder as the current directory."""
    def copy(name: str) -> Path:
        shutil.copytree(FILES / name, tmp_path / name)
        monkeypatch.chdir(tmp_path / name)
        return tmp_path / name
    return copy


# deploymentconfig.json

def test_aks_file_with_enable_app_insights_deploys_with_one_warning_naming_the_nearest_key():
    path = FILES / "aks" / "deploymentconfig.json"
    with pytest.warns(ConfigWarning) as record:
        config = DeploymentConfig.from_file(path)
    assert messages(record) == [f"{path}: unknown key 'enableAppInsights' ignored (did you mean "
                                "'appInsightsEnabled'?); Azure ML ignored it too (strict mode makes this an error)"]
    assert (config.autoscale_max_replicas, config.autoscale_refresh_seconds, config.cpu_cores, config.memory_gb,
            config.scoring_timeout_ms, config.replica_max_concurrent_requests, config.enable_app_insights) == \
        (3, 10, 0.5, 1, 5000, 2, False)


def test_strict_mode_refuses_the_unknown_key():
    path = FILES / "aks" / "deploymentconfig.json"
    with pytest.raises(InvalidInput, match=rf"^{path}: unknown key 'enableAppInsights' \(did you mean "
                                           r"'appInsightsEnabled'\?\); known keys at the top level: "):
        DeploymentConfig.from_file(path, strict=True)


@pytest.mark.parametrize(("extra", "kept", "warning"), [
    ({"appInsightsEnabled": True}, ("enable_app_insights", True),
     "appInsightsEnabled true: there is no Application Insights; replicas export Prometheus metrics at /metrics and "
     "their logs are read with `modelport service logs`"),
    ({"dataCollection": {"storageEnabled": True}}, ("collect_model_data", True),
     "dataCollection.storageEnabled true: model data is not collected to storage; log inputs and outputs in run() "
     "if you need them"),
    ({"livenessProbeRequirements": {"initialDelaySeconds": 60}}, ("initial_delay_seconds", 60),
     "livenessProbeRequirements.initialDelaySeconds 60: it is applied on Kubernetes compute targets (the pods' "
     "probes); local replicas are probed at /-/ready every period_seconds and leave rotation after 3 failed probes"),
    ({"namespace": "models"}, ("namespace", "models"),
     "namespace \"models\": a service runs in its compute target's namespace (set when the cluster is attached), or "
     "in none locally; this value is kept but not used"),
])
def test_a_setting_not_applied_locally_is_kept_with_one_warning(extra, kept, warning):
    with pytest.warns(ConfigWarning) as record:
        config = DeploymentConfig.from_json_dict({"computeType": "aks", **extra}, source="dc.json")
    assert messages(record) == [f"dc.json: {warning}"]
    assert getattr(config, kept[0]) == kept[1]


@pytest.mark.parametrize("extra", [{"appInsightsEnabled": False}, {"dataCollection": {"storageEnabled": False}},
                                   {"livenessProbeRequirements": {"initialDelaySeconds": 310, "periodSeconds": 10}},
                                   {"namespace": None}, {"keys": None}])
def test_a_setting_that_asks_for_nothing_is_silent(silent, extra):
    assert DeploymentConfig.from_json_dict({"computeType": "aks", **extra}) == aks_deploy_configuration()


def test_sdk_parameters_not_applied_locally_warn_by_their_keyword():
    with pytest.warns(ConfigWarning) as record:
        config = aks_deploy_configuration(enable_app_insights=True, num_replicas=2)
    assert messages(record) == ["AksWebservice.deploy_configuration: enable_app_insights true: there is no "
                                "Application Insights; replicas export Prometheus metrics at /metrics and their logs "
                                "are read with `modelport service logs`"]
    assert (config.enable_app_insights, config.num_replicas) == (True, 2)


def test_aci_file_says_first_that_it_deploys_as_a_local_service():
    path = FILES / "aci" / "deploymentconfig.json"
    with pytest.warns(ConfigWarning) as record:
        config = DeploymentConfig.from_file(path)
    assert messages(record) == [
        f"{path}: computeType ACI: ACI deploys as a local service here: one replica on this machine, with "
        "containerResourceRequirements.cpu and containerResourceRequirements.memoryInGB as its CPU and memory limits "
        "and authEnabled as key auth (off by default, as on ACI); for more replicas or Kubernetes, deploy with "
        "computeType aks",
        f"{path}: location \"westeurope\": the service runs on this machine, not in an Azure region",
        f"{path}: dnsNameLabel \"churn-model\": the service is reached at its scoring URI on the front end "
        "(service.scoring_uri), not at a DNS name"]
    assert (config.compute_type, config.num_replicas, config.autoscale_enabled, config.auth_enabled,
            config.cpu_cores, config.cpu_cores_limit, config.memory_gb, config.memory_gb_limit) == \
        ("aks", 1, False, True, 0.5, 0.5, 1.0, 1.0)


def test_aci_without_auth_or_sizes_has_acis_defaults():
    with pytest.warns(ConfigWarning):
        config = DeploymentConfig.from_json_dict({"computeType": "aci"})
    assert (config.auth_enabled, config.num_replicas, config.cpu_cores, config.cpu_cores_limit,
            config.memory_gb_limit) == (False, 1, 0.1, None, None)


def test_aci_keys_that_do_not_apply_warn_and_ssl_is_named():
    with pytest.warns(ConfigWarning) as record:
        DeploymentConfig.from_json_dict({"computeType": "ACI", "sslEnabled": True, "numReplicas": 3,
                                         "autoScaler": {"autoscaleEnabled": False}}, source="dc.json")
    assert messages(record)[1:] == [
        "dc.json: sslEnabled true: the front end serves plain HTTP on this machine; put a TLS-terminating proxy in "
        "front of it for HTTPS",
        "dc.json: numReplicas 3: does not apply to computeType ACI; ignored, as Azure ML's reader did"]


def test_aci_deploy_configuration_takes_azures_parameters():
    with pytest.warns(ConfigWarning) as record:
        config = aci_deploy_configuration(cpu_cores=2, memory_gb=4, auth_enabled=True, location="eastus",
                                          ssl_enabled=False, primary_key="p1", tags={"team": "ml"})
    assert messages(record) == [
        "AciWebservice.deploy_configuration: ACI deploys as a local service here: one replica on this machine, with "
        "cpu_cores and memory_gb as its CPU and memory limits and auth_enabled as key auth (off by default, as on "
        "ACI); for more replicas or Kubernetes, use AksWebservice.deploy_configuration",
        "AciWebservice.deploy_configuration: location \"eastus\": the service runs on this machine, not in an Azure "
        "region"]
    assert (config.cpu_cores_limit, config.memory_gb_limit, config.auth_enabled, config.primary_key, config.tags,
            config.num_replicas) == (2, 4, True, "p1", {"team": "ml"}, 1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'num_replicas'"):
        aci_deploy_configuration(num_replicas=2)


def test_an_aks_endpoint_file_is_read_with_its_version_and_share():
    config = DeploymentConfig.from_file(FILES / "endpoint" / "deploymentconfig.json")
    assert (config.compute_type, config.version_name, config.traffic_percentile, config.num_replicas) == (
        "AKSENDPOINT", "blue", 20, 1)


def test_yaml_deploymentconfig_is_read_as_the_az_cli_did(tmp_path):
    path = tmp_path / "deploymentconfig.yml"
    path.write_text("computeType: AKS\nautoScaler:\n  autoscaleEnabled: True\n  maxReplicas: 3\nauthEnabled: True\n")
    assert DeploymentConfig.from_file(path).autoscale_max_replicas == 3


# inferenceconfig.json

def test_legacy_file_with_null_and_false_image_keys_reads_silently(silent, copied):
    folder = copied("legacy")
    config = InferenceConfig.from_file("inferenceconfig.json")
    assert (config.entry_script, Path(config.source_directory)) == ("score.py", folder)
    assert config.environment.python.conda_dependencies.pip_packages == ["azureml-defaults", "six==1.16.0"]


@pytest.mark.parametrize(("key", "value", "instead"), [
    ("enableGpu", True, "local builds make a virtual environment with this machine's Python and build no image; "
                        "replicas get this machine's GPUs with gpuCores in deploymentconfig.json"),
    ("extraDockerfileSteps", "steps.txt", "local builds make a virtual environment with this machine's Python and "
                                          "build no image, so Docker steps are not run; install Python packages "
                                          "through condaFile's pip list"),
    ("baseImage", "python:3.11-slim", "local builds make a virtual environment with this machine's Python and "
                                      "build no image"),
    ("cudaVersion", "10.0", "local builds make a virtual environment with this machine's Python and build no "
                            "image; CUDA comes from this machine's driver and the wheels pip installs"),
    ("runtime", "spark-py", "the entry script runs with Python; add pyspark to the pip list if score.py uses Spark"),
])
def test_legacy_keys_asking_for_an_image_warn_with_what_modelport_does(copied, key, value, instead):
    folder = copied("legacy")
    data = json.loads((folder / "inferenceconfig.json").read_text())
    (folder / "ic.json").write_text(json.dumps({**data, key: value}))
    with pytest.warns(ConfigWarning) as record:
        InferenceConfig.from_file("ic.json")
    assert messages(record) == [f"ic.json: {key} {json.dumps(value)}: {instead}"]


def test_unknown_inference_key_warns_with_the_nearest_and_strict_refuses(copied):
    folder = copied("legacy")
    data = json.loads((folder / "inferenceconfig.json").read_text())
    (folder / "ic.json").write_text(json.dumps({**data, "entryScripts": "other.py"}))
    with pytest.warns(ConfigWarning) as record:
        InferenceConfig.from_file("ic.json")
    assert messages(record) == ["ic.json: unknown key 'entryScripts' ignored (did you mean 'entryScript'?); Azure ML "
                                "ignored it too (strict mode makes this an error)"]
    with pytest.raises(InvalidInput, match=r"^ic.json: unknown key 'entryScripts' \(did you mean 'entryScript'\?\)"):
        InferenceConfig.from_file("ic.json", strict=True)


def test_unknown_runtime_is_refused(copied):
    folder = copied("legacy")
    (folder / "ic.json").write_text(json.dumps({"entryScript": "score.py", "runtime": "R"}))
    with pytest.raises(InvalidInput, match=r"^ic.json: runtime 'R' is not one Azure ML accepted; use python, "
                                           r"python-slim, spark-py \(or leave it out\)$"):
        InferenceConfig.from_file("ic.json")


def test_environment_form_as_azure_serialized_it_reads_silently(silent, copied):
    folder = copied("project")
    config = InferenceConfig.from_file("src/inferenceconfig.json")
    assert config.environment.name == "greeting-env"
    assert config.environment.docker.base_image == "mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04:20210615.v1"
    data = json.loads((folder / "src" / "inferenceconfig.json").read_text())
    data["environment"].update(docker=None, spark=None, databricks=None, r=None, assetId="azureml://x/y")
    (folder / "src" / "ic.json").write_text(json.dumps(data))
    assert InferenceConfig.from_file("src/ic.json").environment.docker.shm_size is None  # null sections: defaults


@pytest.mark.parametrize(("change", "warning"), [
    (lambda env: env["docker"].update(baseImage="nvcr.io/nvidia/pytorch:23.10-py3"),
     "environment.docker.baseImage \"nvcr.io/nvidia/pytorch:23.10-py3\": local builds make a virtual environment with "
     "this machine's Python, not an image; kept for image builds"),
    (lambda env: env["docker"].update(arguments=["--gpus", "all"]),
     'environment.docker.arguments ["--gpus", "all"]: replicas run as processes on this machine, not in '
     "containers; kept for image builds"),
    (lambda env: env["python"].update(condaDependencie={}),
     "unknown key 'environment.python.condaDependencie' ignored (did you mean "
     "'environment.python.condaDependencies'?); Azure ML ignored it too (strict mode makes this an error)"),
    (lambda env: env.update(assetId="azureml://locations/x/environments/y") or env.update(enviromentVariables={}),
     "unknown key 'environment.enviromentVariables' ignored (did you mean 'environment.environmentVariables'?); "
     "Azure ML ignored it too (strict mode makes this an error)"),
])
def test_environment_keys_follow_the_rule(copied, change, warning):
    folder = copied("project")
    data = json.loads((folder / "src" / "inferenceconfig.json").read_text())
    change(data["environment"])
    (folder / "src" / "ic.json").write_text(json.dumps(data))
    with pytest.warns(ConfigWarning) as record:
        InferenceConfig.from_file("src/ic.json")
    assert messages(record) == [f"src/ic.json: {warning}"]


def test_conda_only_packages_are_named_not_silently_left_out(copied):
    folder = copied("legacy")
    (folder / "myenv.yml").write_text("dependencies:\n  - python=3.11\n  - scikit-learn=1.3\n  - pip:\n    - six\n")
    with pytest.warns(ConfigWarning) as record:
        InferenceConfig.from_file("inferenceconfig.json")
    assert messages(record) == ["inferenceconfig.json: condaFile: conda packages scikit-learn=1.3 are not installed by "
                                "local builds (there is no conda here); add their pip names to the pip list if "
                                "score.py needs them"]


def test_spark_packages_are_refused_not_ignored(copied):
    folder = copied("project")
    data = json.loads((folder / "src" / "inferenceconfig.json").read_text())
    data["environment"]["spark"]["packages"] = [{"group": "com.microsoft.ml.spark", "artifact": "mmlspark",
                                                 "version": "0.15"}]
    (folder / "src" / "ic.json").write_text(json.dumps(data))
    with pytest.raises(InvalidInput, match="^src/ic.json: Spark packages .* are not supported by modelport"):
        InferenceConfig.from_file("src/ic.json")


def test_environment_load_from_directory_reads_the_scaffold(silent, copied):
    folder = copied("env_folder")
    env = Environment.load_from_directory(folder)
    assert (env.name, env.python.conda_dependencies.pip_packages, env.environment_variables) == \
        ("scaffolded-env", ["azureml-defaults", "six==1.16.0"], {"EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"})


@pytest.mark.parametrize("registry", [{"address": None, "username": None, "password": None}, {}, None,
                                      {"address": "", "username": None, "password": None}])
def test_a_base_image_registry_of_nulls_asks_for_nothing(silent, copied, registry):
    folder = copied("legacy")
    data = json.loads((folder / "inferenceconfig.json").read_text())
    (folder / "ic.json").write_text(json.dumps({**data, "baseImageRegistry": registry}))
    assert InferenceConfig.from_file("ic.json").entry_script == "score.py"


def test_a_base_image_registry_that_asks_for_something_is_shown_as_json_without_its_password(copied):
    folder = copied("legacy")
    data = json.loads((folder / "inferenceconfig.json").read_text())
    registry = {"address": "myacr.azurecr.io", "username": "ci", "password": "hunter2"}
    (folder / "ic.json").write_text(json.dumps({**data, "baseImageRegistry": registry}))
    with pytest.warns(ConfigWarning) as record:
        InferenceConfig.from_file("ic.json")
    assert messages(record) == ['ic.json: baseImageRegistry {"address": "myacr.azurecr.io", "username": "ci", '
                                '"password": "***"}: local builds make a virtual environment with this machine\'s '
                                "Python and build no image"]


@pytest.mark.parametrize(("value", "nothing"), [
    ({"address": None, "username": None, "password": None}, True), ([None, "", {}], True),
    ({"registry": {"address": None}, "arguments": []}, True), (0, False), ({"address": "acr.io"}, False),
    ([None, "--gpus"], False)])
def test_nested_values_ask_for_nothing_when_every_leaf_does(value, nothing):
    assert asks_for_nothing(value) is nothing


def test_a_misspelt_entry_script_names_entry_script_and_the_folder_it_looked_in(copied):
    folder = copied("project")
    (folder / "ic.json").write_text(json.dumps({"entryScript": "scor.py", "sourceDirectory": "src"}))
    with pytest.raises(InvalidInput) as raised:
        InferenceConfig.from_file("ic.json")
    assert str(raised.value) == (f"ic.json: entryScript 'scor.py': no file in sourceDirectory {folder / 'src'} (did "
                                 "you mean 'score.py'?); fix the name (it is relative to sourceDirectory)")


def test_strict_mode_reports_every_unknown_key_of_a_deployment_config_at_once():
    data = {"computeType": "aks", "enableAppInsights": True, "autoScaler": {"maxReplica": 3},
            "livenessProbeRequirements": {"periodSecond": 5}}
    with pytest.raises(InvalidInput) as raised:
        DeploymentConfig.from_json_dict(data, source="dc.json", strict=True)
    lines = str(raised.value).splitlines()
    assert [line.split(" (did you mean")[0] for line in lines] == [
        "dc.json: unknown key 'enableAppInsights'", "dc.json: unknown key 'autoScaler.maxReplica'",
        "dc.json: unknown key 'livenessProbeRequirements.periodSecond'"]
    assert "(did you mean 'autoScaler.maxReplicas'?); known keys under autoScaler: " in lines[1]


def test_strict_mode_reports_every_unknown_key_of_an_inference_config_at_once(copied):
    folder = copied("project")
    data = json.loads((folder / "src" / "inferenceconfig.json").read_text())
    data["environment"]["python"]["condaDependencie"] = {}
    (folder / "src" / "ic.json").write_text(json.dumps({**data, "entryScripts": "x.py", "sourceDir": "src"}))
    with pytest.raises(InvalidInput) as raised:
        InferenceConfig.from_file("src/ic.json", strict=True)
    assert [line.split(" (did you mean")[0] for line in str(raised.value).splitlines()] == [
        "src/ic.json: unknown key 'entryScripts'", "src/ic.json: unknown key 'sourceDir'",
        "src/ic.json: unknown key 'environment.python.condaDependencie'"]


def test_strict_mode_reports_every_unknown_key_of_an_environment_file_at_once(copied):
    folder = copied("project")
    data = json.loads((folder / "src" / "inferenceconfig.json").read_text())["environment"]
    (folder / "src" / "env.json").write_text(json.dumps({**data, "nam": "x",
                                                         "docker": {**data["docker"], "shm": "1g"}}))
    with pytest.raises(InvalidInput) as raised:
        Environment.load_from_file("src/env.json", strict=True)
    assert [line.split(" (did you mean")[0] for line in str(raised.value).splitlines()] == [
        "src/env.json: unknown key 'docker.shm'", "src/env.json: unknown key 'nam'"]  # in the file's order


def test_strict_mode_names_the_misspelt_key_before_the_error_it_causes(copied):
    copied("legacy")
    Path("ic.json").write_text(json.dumps({"entryScripts": "score.py"}))
    with pytest.raises(InvalidInput) as raised:
        InferenceConfig.from_file("ic.json", strict=True)
    assert [line.split(";")[0] for line in str(raised.value).splitlines()] == [
        "ic.json: unknown key 'entryScripts' (did you mean 'entryScript'?)",
        "ic.json: entryScript is required: the scoring script, e.g. score.py"]
