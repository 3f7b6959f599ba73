"""DeploymentConfig: Azure ML's deploy_configuration defaults, validation and deploymentconfig.json."""

import json

import pytest

from modelport.errors import InvalidInput
from modelport.reconcile.autoscale import AutoscaleSettings
from modelport.sdk.deploy_config import (
    DeploymentConfig,
    aks_deploy_configuration,
    check_service_name,
    endpoint_deploy_configuration,
)
from modelport.sdk.deploy_config_files import local_deploy_configuration
from modelport.sdk.files import ConfigWarning

# The example deploymentconfig.json of contract/aml-v1-api.md.
AKS_EXAMPLE = {
    "computeType": "aks",
    "autoScaler": {"autoscaleEnabled": True, "minReplicas": 1, "maxReplicas": 10,
                   "refreshPeriodInSeconds": 1, "targetUtilization": 70},
    "dataCollection": {"storageEnabled": False},
    "authEnabled": True,
    "containerResourceRequirements": {"cpu": 0.5, "memoryInGB": 1.0},
    "scoringTimeoutMs": 60000,
    "maxConcurrentRequestsPerContainer": 1,
    "maxQueueWaitMs": 500,
    "livenessProbeRequirements": {"periodSeconds": 10, "initialDelaySeconds": 310,
                                  "timeoutSeconds": 2, "successThreshold": 1, "failureThreshold": 3},
}

DEFAULTS = {
    "compute_type": "aks", "autoscale_enabled": True, "autoscale_min_replicas": 1, "autoscale_max_replicas": 10,
    "autoscale_refresh_seconds": 1, "autoscale_target_utilization": 70, "collect_model_data": False,
    "auth_enabled": True, "token_auth_enabled": False, "cpu_cores": 0.1, "memory_gb": 0.5, "cpu_cores_limit": None,
    "memory_gb_limit": None, "gpu_cores": 0, "enable_app_insights": False, "scoring_timeout_ms": 60000,
    "replica_max_concurrent_requests": 1, "max_request_wait_time": 500, "num_replicas": None, "primary_key": None,
    "secondary_key": None, "period_seconds": 10, "initial_delay_seconds": 310, "timeout_seconds": 2,
    "success_threshold": 1, "failure_threshold": 3, "namespace": None, "compute_target_name": None, "tags": None,
    "properties": None, "description": None, "version_name": None, "traffic_percentile": 0, "port": None,
    "cors_origins": None,
}


LOCAL_PORT = ("local services are served by the front end on its port (MODELPORT_FRONTEND_PORT) at their scoring "
              "URI (service.scoring_uri), not on a port of their own")


def warned(recwarn) -> list[str]:
    """The ConfigWarning messages recorded so far (then forgotten)."""
    messages = [str(w.message) for w in recwarn.list if issubclass(w.category, ConfigWarning)]
    recwarn.clear()
    return messages


def leaves(data: dict, prefix: str = "") -> dict:
    """Flatten nested JSON objects to {"a.b": value}."""
    out = {}
    for key, value in data.items():
        if isinstance(value, dict) and key not in ("tags", "properties"):
            out.update(leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_every_default_matches_the_azure_table():
    config = aks_deploy_configuration()
    assert {name: getattr(config, name) for name in DEFAULTS} == DEFAULTS


def test_the_defaults_cover_every_field():
    assert set(DEFAULTS) == set(DeploymentConfig.__dataclass_fields__)


def test_none_means_not_given_as_in_azure():
    assert aks_deploy_configuration(num_replicas=None, cpu_cores=None) == aks_deploy_configuration()


def test_num_replicas_alone_turns_autoscaling_off():
    config = aks_deploy_configuration(num_replicas=3)
    assert (config.autoscale_enabled, config.num_replicas) == (False, 3)


@pytest.mark.parametrize("kwargs, message", [
    ({"autoscale_enabled": True, "num_replicas": 2},
     r"autoscale_enabled \(autoScaler.autoscaleEnabled\) is true and num_replicas \(numReplicas\) is given; turn "
     "autoscaling off for a fixed number of replicas, or leave the number out to autoscale"),
    ({"autoscale_enabled": False}, r"autoscale_enabled \(autoScaler.autoscaleEnabled\) is false but num_replicas "
                                   r"\(numReplicas\) is not given; give the number of replicas, or turn "
                                   "autoscaling on"),
    ({"num_replicas": 0}, r"num_replicas \(numReplicas\) must be greater than 0; got 0"),
    ({"autoscale_min_replicas": 0}, r"autoscale_min_replicas \(autoScaler.minReplicas\) must be greater than 0"),
    ({"autoscale_min_replicas": 5, "autoscale_max_replicas": 4},
     r"autoscale_min_replicas \(autoScaler.minReplicas\) 5 cannot be greater than autoscale_max_replicas "
     r"\(autoScaler.maxReplicas\) 4"),
    ({"autoscale_refresh_seconds": 0}, r"autoscale_refresh_seconds \(autoScaler.refreshPeriodInSeconds\) must be"),
    ({"autoscale_target_utilization": 0}, "must be a percentage from 1 to 100; got 0"),
    ({"autoscale_target_utilization": 101}, "must be a percentage from 1 to 100; got 101"),
    ({"num_replicas": 2, "autoscale_min_replicas": 2},
     r"autoscale_min_replicas \(autoScaler.minReplicas\) is given but autoscaling is off; remove it, or turn "
     "autoscaling on and leave the number of replicas out"),
    ({"num_replicas": 2, "autoscale_target_utilization": 50}, "autoscale_target_utilization .* is given but "),
    ({"auth_enabled": True, "token_auth_enabled": True},
     r"auth_enabled \(authEnabled\) and token_auth_enabled \(tokenAuthEnabled\) cannot both be true; turn key auth "
     "off to use token auth"),
    ({"cpu_cores": 0}, r"cpu_cores \(containerResourceRequirements.cpu\) must be greater than 0; got 0"),
    ({"memory_gb": -1}, r"memory_gb \(containerResourceRequirements.memoryInGB\) must be greater than 0"),
    ({"cpu_cores": 2, "cpu_cores_limit": 1}, r"cpu_cores_limit \(containerResourceRequirements.cpuLimit\) 1 must be "
                                             r"greater than or equal to cpu_cores"),
    ({"memory_gb": 2, "memory_gb_limit": 1.5}, r"memory_gb_limit .* 1.5 must be greater than or equal to memory_gb"),
    ({"gpu_cores": -1}, r"gpu_cores \(gpuCores\) must be a whole number of 0 or more; got -1"),
    ({"gpu_cores": 1.5}, r"gpu_cores \(gpuCores\) must be a whole number; got 1.5"),
    ({"replica_max_concurrent_requests": 0}, r"replica_max_concurrent_requests .* must be at least 1; got 0"),
    ({"scoring_timeout_ms": 0}, r"scoring_timeout_ms \(scoringTimeoutMs\) must be at least 1"),
    ({"max_request_wait_time": -5}, r"max_request_wait_time \(maxQueueWaitMs\) must be at least 1; got -5"),
    ({"period_seconds": 0}, r"period_seconds \(livenessProbeRequirements.periodSeconds\) must be at least 1"),
    ({"timeout_seconds": 0}, r"timeout_seconds \(livenessProbeRequirements.timeoutSeconds\) must be at least 1"),
    ({"success_threshold": 0}, r"success_threshold .* must be at least 1"),
    ({"failure_threshold": 0}, r"failure_threshold .* must be at least 1"),
    ({"initial_delay_seconds": -1}, r"initial_delay_seconds .* must be 0 or more; got -1"),
    ({"namespace": "Prod"}, "namespace 'Prod' is not a valid Kubernetes namespace; use up to 63 lowercase"),
    ({"namespace": "team-"}, "namespace 'team-' is not a valid Kubernetes namespace"),
    ({"namespace": "a" * 64}, "is not a valid Kubernetes namespace"),
    ({"primary_key": ""}, r"primary_key \(keys.primaryKey\) must not be empty"),
    ({"cpu_cores": "2"}, r"cpu_cores \(containerResourceRequirements.cpu\) must be a number; got '2'"),
    ({"auth_enabled": "yes"}, r"auth_enabled \(authEnabled\) must be true or false; got 'yes'"),
    ({"autoscale_max_replicas": True}, r"autoscale_max_replicas \(autoScaler.maxReplicas\) must be a whole number"),
    ({"tags": {"team": 1}}, "tags must map strings to strings"),
    ({"description": 5}, "description must be a string; got 5"),
])
def test_each_rule_names_the_parameter_and_the_fix(kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        aks_deploy_configuration(**kwargs)


@pytest.mark.filterwarnings("ignore::modelport.sdk.files.ConfigWarning")  # kept settings warn: other tests
def test_accepted_edges():
    config = aks_deploy_configuration(autoscale_min_replicas=4, autoscale_max_replicas=4,
                                      autoscale_target_utilization=100, namespace="a" * 63, cpu_cores=1,
                                      cpu_cores_limit=1, gpu_cores=2, initial_delay_seconds=0)
    assert (config.autoscale_min_replicas, config.namespace, config.cpu_cores_limit, config.gpu_cores) == \
        (4, "a" * 63, 1, 2)


def test_unknown_keyword_is_named_with_a_suggestion_and_the_valid_names():
    with pytest.raises(InvalidInput, match=r"unknown parameter 'autoscale_min_replica' \(did you mean "
                                           r"'autoscale_min_replicas'\?\); valid parameters: auth_enabled, "):
        aks_deploy_configuration(autoscale_min_replica=2)


def test_endpoint_only_parameters_are_refused_for_a_webservice():
    with pytest.raises(InvalidInput, match="unknown parameter 'traffic_percentile'"):
        aks_deploy_configuration(traffic_percentile=10)
    with pytest.raises(InvalidInput, match="version_name .* applies only to AksEndpoint"):
        DeploymentConfig(version_name="blue")


def test_blobfuse_enabled_is_accepted_for_compatibility():
    assert aks_deploy_configuration(blobfuse_enabled=True) == aks_deploy_configuration()


def test_endpoint_fields():
    config = endpoint_deploy_configuration(version_name="blue", traffic_percentile=25, cpu_cores=1)
    assert (config.compute_type, config.version_name, config.traffic_percentile, config.cpu_cores) == \
        ("AKSENDPOINT", "blue", 25, 1)
    assert endpoint_deploy_configuration().traffic_percentile == 0
    with pytest.raises(InvalidInput, match=r"traffic_percentile \(trafficPercentile\) must be from 0 to 100; got 101"):
        endpoint_deploy_configuration(traffic_percentile=101)
    with pytest.raises(InvalidInput, match=r"version_name \(versionName\) 'Blue' is not valid; use 1-32 lowercase"):
        endpoint_deploy_configuration(version_name="Blue")


def test_local_config_has_one_replica_no_auth_no_autoscaling(recwarn):
    config = local_deploy_configuration(8890)
    assert (config.compute_type, config.port, config.auth_enabled, config.token_auth_enabled,
            config.autoscale_enabled, config.num_replicas) == ("local", 8890, False, False, False, 1)
    assert warned(recwarn) == [f"LocalWebservice.deploy_configuration: port 8890: {LOCAL_PORT}"]
    assert local_deploy_configuration().port is None
    assert warned(recwarn) == []  # no port asks for nothing


@pytest.mark.parametrize("port", [0, 65536])
def test_local_port_range(port):
    with pytest.raises(InvalidInput, match=f"port {port} must be from 1 to 65535"):
        local_deploy_configuration(port)


def test_port_and_local_invariants_are_enforced():
    with pytest.raises(InvalidInput, match="port applies only to local deployments"):
        DeploymentConfig(port=80)
    with pytest.raises(InvalidInput, match="a local deployment runs one replica without auth"):
        DeploymentConfig(compute_type="local")


@pytest.mark.parametrize("name", ["abc", "my-service-1", "a" * 32])
def test_service_names_accepted(name):
    assert check_service_name(name) == name


@pytest.mark.parametrize("name", ["ab", "a" * 33, "1abc", "abc-", "My-service", "my_service", None])
def test_service_names_refused_with_the_rule(name):
    with pytest.raises(InvalidInput, match=f"service name {name!r} is not valid; use 3-32 lowercase letters, "
                                           "digits and '-', starting with a letter and ending with a letter or digit"):
        check_service_name(name)


# deploymentconfig.json

def test_the_contract_example_parses_silently_and_round_trips(recwarn):
    config = DeploymentConfig.from_json_dict(AKS_EXAMPLE)
    assert warned(recwarn) == []  # every key asks for Azure's default or for what modelport does
    assert (config.cpu_cores, config.memory_gb, config.autoscale_enabled, config.autoscale_max_replicas) == \
        (0.5, 1.0, True, 10)
    written = config.to_json_dict()
    example = leaves(AKS_EXAMPLE)
    assert {key: value for key, value in leaves(written).items() if key in example} == example
    assert DeploymentConfig.from_json_dict(written) == config
    assert json.loads(json.dumps(written)) == written


@pytest.mark.filterwarnings("ignore::modelport.sdk.files.ConfigWarning")  # kept settings warn: other tests
def test_from_file_reads_the_file(tmp_path):
    path = tmp_path / "deploymentconfig.json"
    path.write_text(json.dumps({**AKS_EXAMPLE, "tags": {"team": "ml"}, "namespace": "models",
                                "keys": {"primaryKey": "p1", "secondaryKey": "s1"}}))
    config = DeploymentConfig.from_file(path)
    assert (config.tags, config.namespace, config.primary_key, config.secondary_key) == \
        ({"team": "ml"}, "models", "p1", "s1")


def test_malformed_json_names_the_file_and_the_error(tmp_path):
    path = tmp_path / "deploymentconfig.json"
    path.write_text('{"computeType": "aks",}')
    with pytest.raises(InvalidInput, match=r"deploymentconfig.json is not valid JSON: Expecting property name .*"
                                           r"line 1 column 23"):
        DeploymentConfig.from_file(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InvalidInput, match="deployment config .*nope.json not found"):
        DeploymentConfig.from_file(tmp_path / "nope.json")


def test_unknown_nested_key_is_a_warning_with_the_nearest_key(recwarn):
    data = {"computeType": "aks", "autoScaler": {"autoscaleEnabled": True, "minReplica": 2}}
    config = DeploymentConfig.from_json_dict(data)
    assert config == aks_deploy_configuration()
    assert warned(recwarn) == ["deploymentconfig.json: unknown key 'autoScaler.minReplica' ignored (did you mean "
                               "'autoScaler.minReplicas'?); Azure ML ignored it too (strict mode makes this an error)"]


def test_unknown_key_is_an_error_in_strict_mode():
    data = {"computeType": "aks", "autoScaler": {"autoscaleEnabled": True, "minReplica": 2}}
    with pytest.raises(InvalidInput, match=r"^deploymentconfig.json: unknown key 'autoScaler.minReplica' \(did you "
                                           r"mean 'autoScaler.minReplicas'\?\); known keys under autoScaler: "
                                           "autoscaleEnabled, maxReplicas, minReplicas, refreshPeriodInSeconds, "
                                           r"targetUtilization; fix or remove it \(strict mode\)$"):
        DeploymentConfig.from_json_dict(data, strict=True)
    with pytest.raises(InvalidInput, match=r"unknown key 'replicas' \(did you mean 'numReplicas'\?\); "
                                           "known keys at the top level: appInsightsEnabled, authEnabled, "):
        DeploymentConfig.from_json_dict({"computeType": "aks", "replicas": 2}, strict=True)


def test_wrong_types_name_the_key_and_the_expected_type():
    with pytest.raises(InvalidInput, match=r"^cfg.json: containerResourceRequirements.cpu must be a number; "
                                           r"got '0.5'$"):
        DeploymentConfig.from_json_dict({"computeType": "aks", "containerResourceRequirements": {"cpu": "0.5"}},
                                        source="cfg.json")
    with pytest.raises(InvalidInput, match="livenessProbeRequirements must be a JSON object with keys "):
        DeploymentConfig.from_json_dict({"computeType": "aks", "livenessProbeRequirements": 10})
    with pytest.raises(InvalidInput, match="must hold a JSON object with computeType; got list"):
        DeploymentConfig.from_json_dict([])


def test_file_errors_use_the_file_key_names_not_the_parameters():
    data = {"computeType": "aks", "autoScaler": {"minReplicas": 3, "maxReplicas": 2}}
    with pytest.raises(InvalidInput, match=r"^dc.json: autoScaler.minReplicas 3 cannot be greater than "
                                           r"autoScaler.maxReplicas 2; raise the maximum or lower the minimum$"):
        DeploymentConfig.from_json_dict(data, source="dc.json")
    with pytest.raises(InvalidInput, match=r"^deploymentconfig.json: autoScaler.autoscaleEnabled is true and "
                                           "numReplicas is given; turn autoscaling off"):
        DeploymentConfig.from_json_dict({"computeType": "aks", "numReplicas": 2,
                                         "autoScaler": {"autoscaleEnabled": True}})
    with pytest.raises(InvalidInput, match="^deploymentconfig.json: authEnabled and tokenAuthEnabled cannot both"):
        DeploymentConfig.from_json_dict({"computeType": "aks", "tokenAuthEnabled": True})


@pytest.mark.parametrize("value, expected", [("aks", "aks"), ("AKS", "aks"), ("Kubernetes", "aks"),
                                             ("LOCAL", "local")])
def test_compute_type_is_case_insensitive(value, expected):
    assert DeploymentConfig.from_json_dict({"computeType": value}).compute_type == expected


def test_compute_type_is_required_and_checked():
    with pytest.raises(InvalidInput, match="computeType is required; use aks"):
        DeploymentConfig.from_json_dict({"authEnabled": True})
    with pytest.raises(InvalidInput, match="computeType 'Batch' is not supported; use aks"):
        DeploymentConfig.from_json_dict({"computeType": "Batch"})


def test_local_file(recwarn):
    config = DeploymentConfig.from_json_dict({"computeType": "local", "port": 6789, "authEnabled": False})
    assert config == DeploymentConfig(compute_type="local", port=6789, auth_enabled=False, num_replicas=1)
    assert config.to_json_dict() == {"computeType": "local", "port": 6789}
    # the port warns once, naming where the service is served; authEnabled false asks for nothing
    assert warned(recwarn) == [f"deploymentconfig.json: port 6789: {LOCAL_PORT}"]
    assert DeploymentConfig.from_json_dict({"computeType": "local", "authEnabled": True}) == \
        local_deploy_configuration()
    assert warned(recwarn) == ["deploymentconfig.json: authEnabled true: does not apply to computeType local; "
                               "ignored, as Azure ML's reader did"]


@pytest.mark.parametrize("kind", ["AKSENDPOINT", "aksEndpoint"])
def test_endpoint_files_deploy_an_endpoint_version(kind):
    data = {"computeType": kind, "versionName": "green", "trafficPercentile": 30, "numReplicas": 2}
    config = DeploymentConfig.from_json_dict(data)
    assert (config.compute_type, config.version_name, config.traffic_percentile, config.num_replicas) == (
        "AKSENDPOINT", "green", 30, 2)


def test_an_endpoint_config_writes_azures_file_shape():
    config = endpoint_deploy_configuration(version_name="green", traffic_percentile=30, num_replicas=2,
                                           token_auth_enabled=True, auth_enabled=False)
    assert config.to_json_dict() == {"computeType": "AKSENDPOINT", "autoScaler": {"autoscaleEnabled": False},
                                     "authEnabled": False, "tokenAuthEnabled": True,
                                     "containerResourceRequirements": {"cpu": 0.1, "memoryInGB": 0.5},
                                     "gpuCores": 0, "appInsightsEnabled": False, "scoringTimeoutMs": 60000,
                                     "maxConcurrentRequestsPerContainer": 1, "maxQueueWaitMs": 500,
                                     "numReplicas": 2, "dataCollection": {"storageEnabled": False},
                                     "livenessProbeRequirements": {"periodSeconds": 10, "initialDelaySeconds": 310,
                                                                   "timeoutSeconds": 2, "successThreshold": 1,
                                                                   "failureThreshold": 3},
                                     "versionName": "green", "trafficPercentile": 30}


def test_keys_of_another_compute_type_are_ignored_with_a_warning(recwarn):
    config = DeploymentConfig.from_json_dict({"computeType": "aks", "trafficPercentile": 10, "versionName": None,
                                              "location": "westeurope", "sslEnabled": False})
    assert config == aks_deploy_configuration()
    assert warned(recwarn) == [
        "deploymentconfig.json: trafficPercentile 10: does not apply to computeType aks; ignored, as Azure ML's "
        "reader did",
        'deploymentconfig.json: location "westeurope": does not apply to computeType aks; ignored, as Azure '
        "ML's reader did"]


def test_null_values_mean_not_given():
    config = DeploymentConfig.from_json_dict({"computeType": "aks", "numReplicas": None, "keys": None,
                                              "containerResourceRequirements": {"cpu": None, "memoryInGB": 2}})
    assert (config.autoscale_enabled, config.cpu_cores, config.memory_gb, config.primary_key) == (True, 0.1, 2, None)


@pytest.mark.filterwarnings("ignore::modelport.sdk.files.ConfigWarning")  # kept settings warn: other tests
def test_a_written_config_with_every_field_round_trips():
    config = aks_deploy_configuration(num_replicas=2, cpu_cores=1, cpu_cores_limit=2, memory_gb=1, memory_gb_limit=4,
                                      gpu_cores=1, primary_key="p", secondary_key="s", namespace="ns", tags={"a": "b"},
                                      properties={"c": "d"}, description="demo", compute_target_name="aks-1",
                                      collect_model_data=True, enable_app_insights=True)
    written = config.to_json_dict()
    assert written["containerResourceRequirements"] == {"cpu": 1, "memoryInGB": 1, "cpuLimit": 2, "memoryInGBLimit": 4}
    assert (written["keys"], written["computeTargetName"], written["numReplicas"]) == \
        ({"primaryKey": "p", "secondaryKey": "s"}, "aks-1", 2)
    assert DeploymentConfig.from_json_dict(written) == config


# updated() and autoscaler_settings()

def test_updated_changes_only_what_is_given_and_validates():
    config = aks_deploy_configuration(cpu_cores=1)
    changed = config.updated(autoscale_max_replicas=4, cpu_cores=None)
    assert (changed.autoscale_max_replicas, changed.cpu_cores, config.autoscale_max_replicas) == (4, 1, 10)
    with pytest.raises(InvalidInput, match="autoscale_min_replicas .* 5 cannot be greater than"):
        config.updated(autoscale_min_replicas=5, autoscale_max_replicas=4)
    with pytest.raises(InvalidInput, match=r"scoring_timeout_ms \(scoringTimeoutMs\) must be at least 1"):
        config.updated(scoring_timeout_ms=0)


def test_updated_switches_between_fixed_and_autoscaled():
    fixed = aks_deploy_configuration().updated(num_replicas=3)
    assert (fixed.autoscale_enabled, fixed.num_replicas) == (False, 3)
    back = fixed.updated(autoscale_enabled=True)
    assert (back.autoscale_enabled, back.num_replicas) == (True, None)
    with pytest.raises(InvalidInput, match=r"autoscale_enabled \(autoScaler.autoscaleEnabled\) is true and "):
        fixed.updated(autoscale_enabled=True, num_replicas=2)
    with pytest.raises(InvalidInput, match="autoscale_max_replicas .* is given but autoscaling is off"):
        fixed.updated(autoscale_max_replicas=5)


def test_updated_token_auth_needs_key_auth_off():
    config = aks_deploy_configuration()
    with pytest.raises(InvalidInput, match=r"auth_enabled \(authEnabled\) and token_auth_enabled .* cannot both"):
        config.updated(token_auth_enabled=True)
    changed = config.updated(token_auth_enabled=True, auth_enabled=False)
    assert (changed.auth_enabled, changed.token_auth_enabled) == (False, True)


def test_updated_properties_are_add_only_and_tags_replace():
    config = aks_deploy_configuration(properties={"owner": "ana"}, tags={"a": "1"})
    changed = config.updated(properties={"stage": "prod"}, tags={"b": "2"})
    assert (changed.properties, changed.tags) == ({"owner": "ana", "stage": "prod"}, {"b": "2"})
    assert config.properties == {"owner": "ana"}
    with pytest.raises(InvalidInput, match="property 'owner' is already 'ana' and properties are add-only"):
        config.updated(properties={"owner": "bo"})


def test_updated_refuses_identity_and_unknown_names():
    config = endpoint_deploy_configuration(version_name="blue")
    with pytest.raises(InvalidInput, match="version_name .* cannot change after deployment"):
        config.updated(version_name="green")
    with pytest.raises(InvalidInput, match=r"compute_type cannot change after deployment"):
        config.updated(compute_type="aks")
    with pytest.raises(InvalidInput, match="port does not apply to AKSENDPOINT deployments; remove it"):
        config.updated(port=80)
    with pytest.raises(InvalidInput, match=r"update got an unknown parameter 'replica' \(did you mean "):
        config.updated(replica=2)
    assert config.updated(traffic_percentile=40).traffic_percentile == 40
    assert config.updated(version_name="blue", compute_type="aksendpoint", traffic_percentile=5).traffic_percentile == 5


def test_settings_round_trip_and_feed_updated():
    config = aks_deploy_configuration(num_replicas=2, tags={"a": "b"}, compute_target_name="aks-1")
    settings = config.to_settings()
    assert (settings["num_replicas"], settings["autoscale_enabled"], settings["compute_type"]) == (2, False, "aks")
    assert json.loads(json.dumps(settings)) == settings
    assert DeploymentConfig.from_settings(settings) == config
    assert config.updated(**settings) == config
    with pytest.raises(InvalidInput, match="stored deployment settings got an unknown parameter 'replicas'"):
        DeploymentConfig.from_settings({**settings, "replicas": 3})


def test_autoscaler_settings():
    config = aks_deploy_configuration(autoscale_min_replicas=2, autoscale_max_replicas=8,
                                      autoscale_target_utilization=50, autoscale_refresh_seconds=3,
                                      replica_max_concurrent_requests=4)
    assert config.autoscaler_settings() == AutoscaleSettings(min_replicas=2, max_replicas=8, target_utilization=50,
                                                             refresh_seconds=3, max_concurrent=4)
    fixed = aks_deploy_configuration(num_replicas=3).autoscaler_settings()
    assert (fixed.min_replicas, fixed.max_replicas) == (3, 3)
    local = local_deploy_configuration().autoscaler_settings()
    assert (local.min_replicas, local.max_replicas) == (1, 1)
