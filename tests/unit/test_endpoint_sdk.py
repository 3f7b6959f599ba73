"""The endpoint SDK and CLI without a control plane: Azure ML's names and parameters, the file form, the class
``Webservice(ws, name)`` gives, version objects, refusals made before any call, and every command's help."""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

import modelport
import modelport.spec
from modelport import AksEndpoint, AksWebservice, Endpoint, LocalWebservice, Webservice
from modelport.cli.main import cli
from modelport.errors import InvalidInput, WebserviceException
from modelport.sdk.deploy_config import DeploymentConfig
from modelport.sdk.endpoint import AksEndpointVersion, VersionType, service_class
from modelport.sdk.files import ConfigWarning

AZURE_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "azure_files" / "endpoint" / "deploymentconfig.json"
# azureml-core's AksEndpoint.create_version/update_version parameters, in Azure's order
AZURE_VERSION_PARAMETERS = [
    "version_name", "autoscale_enabled", "autoscale_min_replicas", "autoscale_max_replicas",
    "autoscale_refresh_seconds", "autoscale_target_utilization", "collect_model_data", "cpu_cores", "memory_gb",
    "scoring_timeout_ms", "replica_max_concurrent_requests", "max_request_wait_time", "num_replicas", "tags",
    "properties", "description", "models", "inference_config", "gpu_cores", "period_seconds",
    "initial_delay_seconds", "timeout_seconds", "success_threshold", "failure_threshold", "traffic_percentile",
    "is_default", "is_control_version_type", "cpu_cores_limit", "memory_gb_limit"]


def version_view(name: str, **changes) -> dict:
    """One entry of the control plane's ``versions``, as ``GET /services/{name}`` answers it."""
    deploy = {k: v for k, v in DeploymentConfig(num_replicas=2, tags={"stage": "canary"}).to_settings().items()
              if k not in ("version_name", "traffic_percentile")}
    return {"name": name, "state": "Healthy", "reason": None, "traffic_percentile": 0.0,
            "effective_percentile": 0.0, "is_default": False, "is_control": False, "type": "treatment",
            "mirror_percentile": 0.0, "replica_set": f"{name}-1", "generation": 1, "models": ["m:1"],
            "entry_script": "score.py", "environment": "env", "deploy": deploy, **changes}


VIEW = {"name": "ep", "kind": "endpoint", "state": "Healthy", "error": None, "scoring_uri": "http://127.0.0.1:1/s",
        "swagger_uri": None, "auth": "key", "models": ["m:1"], "deploy": version_view("blue")["deploy"],
        "tags": {"team": "ml"}, "description": "rollout",
        "versions": {"blue": version_view("blue", is_default=True, is_control=True, type="control",
                                          effective_percentile=70.0),
                     "green": version_view("green", traffic_percentile=30.0, effective_percentile=30.0)}}


def test_the_public_endpoint_is_the_sdk_class_not_the_desired_state():
    assert modelport.Endpoint is modelport.AksEndpoint is AksEndpoint is Endpoint
    assert modelport.Endpoint is not modelport.spec.Endpoint
    assert issubclass(AksEndpoint, AksWebservice) and issubclass(AksEndpoint, Webservice)  # as in azureml-core
    assert "Endpoint" in modelport.__all__ and "AksEndpoint" in modelport.__all__


def test_deploy_configuration_takes_every_azure_parameter():
    given = dict(autoscale_enabled=True, autoscale_min_replicas=2, autoscale_max_replicas=5,
                 autoscale_refresh_seconds=3, autoscale_target_utilization=60, collect_model_data=False,
                 auth_enabled=False, cpu_cores=0.5, memory_gb=1.5, enable_app_insights=False, scoring_timeout_ms=9000,
                 replica_max_concurrent_requests=2, max_request_wait_time=900, primary_key="p", secondary_key="s",
                 tags={"a": "b"}, properties={"c": "d"}, description="first", gpu_cores=1, period_seconds=11,
                 initial_delay_seconds=12, timeout_seconds=3, success_threshold=2, failure_threshold=4,
                 namespace="team-a", token_auth_enabled=True, version_name="blue", traffic_percentile=40,
                 compute_target_name="local", cpu_cores_limit=1.0, memory_gb_limit=2.0, cors_origins=["*"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = AksEndpoint.deploy_configuration(**given)
    assert config.compute_type == "AKSENDPOINT"
    assert {param: getattr(config, param) for param in given} == given
    assert [str(w.message) for w in caught if issubclass(w.category, ConfigWarning)] == [
        str(w.message) for w in caught]  # only ConfigWarnings (Kubernetes-only settings), nothing refused
    fixed = AksEndpoint.deploy_configuration(num_replicas=3, version_name="v1")
    assert (fixed.num_replicas, fixed.autoscale_enabled, fixed.traffic_percentile) == (3, False, 0)


def test_an_azure_endpoint_file_reads_as_an_endpoint():
    config = DeploymentConfig.from_file(AZURE_FILE)
    assert (config.compute_type, config.version_name, config.traffic_percentile, config.num_replicas,
            config.auth_enabled) == ("AKSENDPOINT", "blue", 20, 1, True)
    assert DeploymentConfig.from_json_dict(config.to_json_dict()) == config


@pytest.mark.parametrize("method", ["create_version", "update_version"])
def test_version_methods_keep_azures_parameters_and_order(method):
    parameters = list(inspect.signature(getattr(AksEndpoint, method)).parameters.values())[1:]
    assert [p.name for p in parameters] == [*AZURE_VERSION_PARAMETERS, "mirror_percentile"]
    assert parameters[-1].kind is inspect.Parameter.KEYWORD_ONLY  # modelport's own, never taken by position


def test_update_keeps_azures_parameters():
    names = list(inspect.signature(AksEndpoint.update).parameters)[1:]
    assert names[:6] == ["auth_enabled", "token_auth_enabled", "enable_app_insights", "description", "tags",
                         "properties"]


@pytest.mark.parametrize(("called", "kind", "made"), [
    (Webservice, "endpoint", AksEndpoint), (AksWebservice, "endpoint", AksEndpoint),
    (LocalWebservice, "endpoint", AksEndpoint), (Webservice, "webservice", Webservice),
    (AksEndpoint, "webservice", AksWebservice), (LocalWebservice, "webservice", LocalWebservice)])
def test_the_class_follows_what_the_service_is(called, kind, made):
    assert service_class(called, {"kind": kind}) is made
    assert type(called(None, "ep", _view={**VIEW, "kind": kind})) is made


def test_versions_as_azure_names_them():
    endpoint = Webservice(None, "ep", _view=VIEW)
    assert isinstance(endpoint, AksEndpoint) and endpoint.compute_type == "AKSENDPOINT"
    blue, green = endpoint.versions["blue"], endpoint.versions["green"]
    assert isinstance(blue, AksEndpointVersion)
    assert (blue.version_type, green.version_type) == (VersionType.control, VersionType.treatment)
    assert (blue.version_type, green.version_type) == ("Control", "Treatment")  # Azure's strings
    assert AksEndpoint.VersionType.control == "Control"
    assert (green.traffic_percentile, green.effective_percentile, blue.effective_percentile) == (30, 30, 70)
    assert (blue.is_default, green.is_default, green.num_replicas, green.tags) == (True, False, 2,
                                                                                  {"stage": "canary"})
    assert (green.scoring_uri, endpoint.default_version.name) == ("http://127.0.0.1:1/s", "blue")
    assert (endpoint.tags, endpoint.description) == ({"team": "ml"}, "rollout")  # the endpoint's, not a version's


def test_what_is_refused_before_any_call():
    endpoint = Webservice(None, "ep", _view=VIEW)  # no workspace: a call to the control plane would fail
    with pytest.raises(InvalidInput, match="^update_version got nothing to change for version 'green' of endpoint "
                                           "'ep'; give traffic_percentile="):
        endpoint.update_version("green")
    with pytest.raises(InvalidInput, match="^update got nothing to change for endpoint 'ep'") as raised:
        endpoint.update()
    assert isinstance(raised.value, WebserviceException)  # what Azure ML's SDK raised
    with pytest.warns(ConfigWarning, match="^AksEndpoint.update: enable_app_insights true: "):
        endpoint.update(enable_app_insights=True)  # warned, and nothing else to send
    with pytest.raises(InvalidInput, match=r"^endpoint 'ep' keeps no properties of its own; give them to a version: "
                                           r"update_version\(version_name, properties=\{...\}\)$"):
        endpoint.update(properties={"k": "v"})


COMMANDS = [["create"], ["show"], ["list"], ["update"], ["logs"], ["delete"], ["promote"], ["rollback"],
            ["history"], ["version", "create"], ["version", "update"], ["version", "delete"], ["version", "list"]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_endpoint_command_has_help_and_both_outputs(command):
    result = CliRunner().invoke(cli, ["endpoint", *command, "--help"])
    assert result.exit_code == 0, result.output
    assert "-o, --output [table|json]" in result.output
    summary = result.output.split("\n\n")[1].strip()
    assert summary and not summary.startswith("Options"), result.output


def test_version_commands_take_model_deploys_flags_and_the_traffic_flags():
    for command in ("create", "update"):
        text = CliRunner().invoke(cli, ["endpoint", "version", command, "--help"]).output
        for flag in ("--num-replicas", "--cpu-cores-limit", "--entry-script", "--conda-file", "--tag", "--ic",
                     "--traffic-percentile", "--is-default", "--is-control-version-type", "--mirror-percent",
                     "--version-name"):
            assert flag in text, (command, flag)
