"""Rendered Kubernetes objects, checked offline: the official schemas of Kubernetes 1.29 and 1.33
(``kubernetes-validate --strict``, shipped with the package), our semantic checks (``manifest_checks``) and what
users rely on (replica counts, resources, probes, names, TLS). No cluster is involved.

Golden files (``golden/*.yaml``) pin three configurations byte for byte, so any change to what a deploy applies
shows up in review; after an intended change, rewrite them with ``MODELPORT_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes.utils import parse_quantity

from modelport.backends.kubernetes import objects, rbac
from modelport.backends.kubernetes.frontend_manifests import (
    ADMIN_SOCKET,
    BOOTSTRAP_CONFIGMAP,
    TLS_DIR,
    TLS_SECRET,
    XDS_DIR,
    FrontEndSpec,
    front_end_objects,
    tls_secret,
)
from modelport.backends.kubernetes.manifests import (
    APP_ROOT,
    ScoringWorkload,
    cpu_quantity,
    memory_quantity,
    runtime_env,
    scoring_objects,
    to_yaml,
)
from modelport.cli.kubernetes import render_objects
from modelport.frontend.config import bootstrap
from modelport.reconcile.backend import ReplicaSetSpec
from modelport.sdk.deploy_config import DeploymentConfig
from modelport.spec.compute import KubernetesTarget

from .manifest_checks import kinds, problems, scoring_deployments

GOLDEN = Path(__file__).parent / "golden"
KUBERNETES_VERSIONS = ("1.29", "1.33")
LONG = "a" * 31 + "z"  # 32 characters: the longest service and version name


def target(**fields: Any) -> KubernetesTarget:
    return KubernetesTarget(**{"name": "myaks", "server": "https://10.0.0.1:6443", "namespace": "ml", **fields})


def workload(endpoint: str = "diabetes", version: str = "default", generation: int = 1, workspace: str = "team-ws",
             the_target: KubernetesTarget | None = None, **settings: Any) -> ScoringWorkload:
    config = DeploymentConfig(**settings)  # AKS, validated (the SDK's factory would warn about local probes)
    return ScoringWorkload(workspace=workspace, target=the_target or target(), endpoint=endpoint, version=version,
                           replica_set=f"{version}-{generation}", image="registry.example/modelport-app:0123abcd",
                           replicas=None if config.autoscale_enabled else config.num_replicas,
                           deploy=config.to_settings(), env={"SERVICE_NAME": endpoint, "GREETING": "hello world"})


def deploy_objects(w: ScoringWorkload, tls: bool = False) -> list[dict[str, Any]]:
    """Everything a deploy of ``w`` applies (as ``modelport kubernetes render`` prints it), plus the TLS Secret."""
    front_end = FrontEndSpec(w.workspace, w.target, "registry.example/modelport-frontend:1",
                             TLS_SECRET if tls else None)
    rendered = render_objects(w, front_end, key_auth=w.deploy["auth_enabled"])
    return rendered + ([tls_secret(w.workspace, w.target, "<certificate>", "<private key>")] if tls else [])


CONFIGURATIONS = {
    "defaults": lambda: deploy_objects(workload()),
    "fixed-3-replicas": lambda: deploy_objects(workload(autoscale_enabled=False, num_replicas=3)),
    "gpu-with-limits": lambda: deploy_objects(workload(gpu_cores=1, cpu_cores=2, memory_gb=8, cpu_cores_limit=4,
                                                       memory_gb_limit=16)),
    "token-auth": lambda: deploy_objects(workload(auth_enabled=False, token_auth_enabled=True)),
    "tls-nodeport": lambda: deploy_objects(workload(the_target=target(ingress_service_type="NodePort", has_tls=True,
                                                                      ssl_cname="ml.example.com")), tls=True),
    "long-names": lambda: deploy_objects(workload(endpoint=LONG, version=LONG, generation=12345,
                                                  workspace="a workspace named at length " * 4)),
}
GOLDEN_CONFIGURATIONS = ("defaults", "gpu-with-limits", "tls-nodeport")


def workspace_of(rendered: list[dict[str, Any]]) -> str:
    return rendered[0]["metadata"]["labels"][objects.WORKSPACE]


def the(rendered: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [item for item in kinds(rendered, kind) if name is None or item["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} objects named {name}"
    return found[0]


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == name)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("configuration", sorted(CONFIGURATIONS))
def test_every_object_is_valid_for_the_kubernetes_api(configuration: str, version: str) -> None:
    for item in CONFIGURATIONS[configuration]():
        kubernetes_validate.validate(item, version, strict=True)


def test_the_schema_check_refuses_what_the_api_would() -> None:
    """The validator in use does reject objects (a misspelt field, a wrong type), so the test above can fail."""
    deployment = scoring_objects(workload())[0]
    misspelt = copy.deepcopy(deployment)
    misspelt["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "5001"
    for broken in (misspelt, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


@pytest.mark.parametrize("configuration", sorted(CONFIGURATIONS))
def test_semantic_checks_pass(configuration: str) -> None:
    rendered = CONFIGURATIONS[configuration]()
    assert problems(rendered, workspace_of(rendered), "myaks") == []


@pytest.mark.parametrize("configuration", GOLDEN_CONFIGURATIONS)
def test_golden_files(configuration: str) -> None:
    """The YAML of three configurations, exactly; ``MODELPORT_UPDATE_GOLDEN=1`` rewrites the files instead."""
    text = to_yaml(CONFIGURATIONS[configuration]())
    path = GOLDEN / f"{configuration}.yaml"
    if os.environ.get("MODELPORT_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    assert path.read_text() == text, f"{path.name} differs; rerun with MODELPORT_UPDATE_GOLDEN=1 if intended"
    assert list(yaml.safe_load_all(text)) == CONFIGURATIONS[configuration]()


def test_an_autoscaled_version_leaves_the_replica_count_to_the_controller() -> None:
    autoscaled = the(scoring_objects(workload()), "Deployment")
    fixed = the(scoring_objects(workload(autoscale_enabled=False, num_replicas=3)), "Deployment")
    assert "replicas" not in autoscaled["spec"]
    assert fixed["spec"]["replicas"] == 3
    assert fixed["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_resources_follow_the_deployment_config() -> None:
    defaults = container(the(scoring_objects(workload()), "Deployment"), "scoring")["resources"]
    assert defaults == {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"memory": "512Mi"}}
    gpu = container(the(scoring_objects(workload(gpu_cores=1, cpu_cores=1.5, memory_gb=2.5, cpu_cores_limit=2,
                                                 memory_gb_limit=3)), "Deployment"), "scoring")["resources"]
    assert gpu == {"requests": {"cpu": "1500m", "memory": "2560Mi", "nvidia.com/gpu": "1"},
                   "limits": {"memory": "3Gi", "cpu": "2", "nvidia.com/gpu": "1"}}


@pytest.mark.parametrize("value", [0.1, 0.25, 1, 1.5, 2, 3.999, 16])
def test_quantities_keep_their_value(value: float) -> None:
    assert float(parse_quantity(cpu_quantity(value))) == pytest.approx(value, abs=0.0005)
    assert float(parse_quantity(memory_quantity(value))) == pytest.approx(value * 1024 ** 3, abs=1024)


def test_probes_use_azure_settings_and_spare_a_slow_init() -> None:
    scoring = container(the(scoring_objects(workload(period_seconds=20, timeout_seconds=5, success_threshold=2,
                                                     failure_threshold=4, initial_delay_seconds=45)),
                            "Deployment"), "scoring")
    ready, live, startup = scoring["readinessProbe"], scoring["livenessProbe"], scoring["startupProbe"]
    assert (ready["periodSeconds"], ready["timeoutSeconds"], ready["successThreshold"], ready["failureThreshold"]) \
        == (20, 5, 2, 4)
    assert (live["periodSeconds"], live["successThreshold"], live["failureThreshold"]) == (20, 1, 4)
    assert startup["httpGet"]["path"] == "/-/ready"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 45  # liveness waits for init() that long
    assert startup["failureThreshold"] == math.ceil(45 / 20)


def test_a_replica_stopping_finishes_its_longest_request() -> None:
    pod = the(scoring_objects(workload(scoring_timeout_ms=90000, max_request_wait_time=2000)), "Deployment")
    assert pod["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 92


def test_scoring_env_and_app_root() -> None:
    env = container(the(scoring_objects(workload()), "Deployment"), "scoring")["env"]
    assert env == [{"name": "SERVICE_NAME", "value": "diabetes"}, {"name": "GREETING", "value": "hello world"},
                   {"name": "AML_APP_ROOT", "value": APP_ROOT}]


def test_runtime_env_points_at_the_entry_script_and_models_as_azure_did() -> None:
    spec = ReplicaSetSpec(service="s", replica_set="default-1", environment={}, snapshot="0" * 64,
                          models=({"name": "mnist", "version": 3},), entry_script="score.py", replicas=1,
                          source_directory="src", env={"SERVICE_NAME": "s"})
    assert runtime_env(spec) == {"SERVICE_NAME": "s", "AZUREML_SOURCE_DIRECTORY": "src",
                                 "AZUREML_ENTRY_SCRIPT": "src/score.py",
                                 "AZUREML_MODEL_DIR": f"{APP_ROOT}/azureml-models/mnist/3"}
    two = ReplicaSetSpec(**{**vars(spec), "models": spec.models + ({"name": "vocab", "version": 1},),
                            "source_directory": None})
    assert runtime_env(two)["AZUREML_MODEL_DIR"] == f"{APP_ROOT}/azureml-models"
    assert runtime_env(two)["AZUREML_ENTRY_SCRIPT"] == "score.py"


def test_long_names_are_shortened_uniquely_within_63_characters() -> None:
    first = scoring_objects(workload(endpoint=LONG, version=LONG, generation=1))
    second = scoring_objects(workload(endpoint=LONG, version=LONG, generation=2))
    names = {item["metadata"]["name"] for item in first + second}
    assert len(names) == 2 and all(len(name) <= 63 for name in names)
    assert the(first, "Service")["metadata"]["name"] == the(first, "Deployment")["metadata"]["name"]


def test_keys_live_only_in_the_front_ends_auth_secret() -> None:
    """A service's keys (and a token service's public keys) are in the front end's Secret, the one place Envoy's
    controller reads them from: no Secret per service."""
    assert [s["metadata"]["name"] for s in kinds(CONFIGURATIONS["token-auth"](), "Secret")] == [objects.AUTH_SECRET]


def test_init_containers_and_volumes_deliver_the_app() -> None:
    """The seam for an artifact-store fetcher: an init container fills a volume the scoring container mounts."""
    fetch = {"name": "fetch-app", "image": "registry.example/fetcher:1", "args": ["s3://bucket/app", APP_ROOT],
             "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
             "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                 "capabilities": {"drop": ["ALL"]}},
             "volumeMounts": [{"name": "app", "mountPath": APP_ROOT}]}
    base = workload()
    w = ScoringWorkload(**{**vars(base), "init_containers": (fetch,), "volumes": ({"name": "app", "emptyDir": {}},),
                           "mounts": ({"name": "app", "mountPath": APP_ROOT, "readOnly": True},)})
    rendered = scoring_objects(w)
    pod = the(rendered, "Deployment")["spec"]["template"]["spec"]
    assert pod["initContainers"] == [fetch]
    assert {"name": "app", "mountPath": APP_ROOT, "readOnly": True} in pod["containers"][0]["volumeMounts"]
    assert problems(rendered, "team-ws", "myaks") == []
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(the(rendered, "Deployment"), version, strict=True)


def test_front_end_wiring_is_consistent() -> None:
    """Envoy reads the bootstrap from its ConfigMap; the controller writes the xDS files and reads the admin socket
    the bootstrap names, in a folder both containers mount."""
    rendered = front_end_objects(FrontEndSpec("team-ws", target(), "registry.example/modelport-frontend:1"))
    deployment = the(rendered, "Deployment", objects.FRONT_END_NAME)
    envoy, controller = container(deployment, "envoy"), container(deployment, "controller")
    config_map = the(rendered, "ConfigMap", BOOTSTRAP_CONFIGMAP)
    assert json.loads(config_map["data"]["bootstrap.json"]) == bootstrap(XDS_DIR, ADMIN_SOCKET)
    config_path = envoy["command"][envoy["command"].index("-c") + 1]
    mount = next(m for m in envoy["volumeMounts"] if m["mountPath"] == config_path)
    volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == BOOTSTRAP_CONFIGMAP and mount["subPath"] in config_map["data"]
    flags = dict(zip(controller["command"][3::2], controller["command"][4::2], strict=True))
    assert flags == {"--namespace": "ml", "--compute-target": "myaks", "--xds-dir": str(XDS_DIR),
                     "--admin-socket": str(ADMIN_SOCKET)}
    shared = {m["mountPath"] for m in envoy["volumeMounts"]} & {m["mountPath"] for m in controller["volumeMounts"]}
    assert any(XDS_DIR.is_relative_to(path) and ADMIN_SOCKET.is_relative_to(path) for path in shared)
    assert json.loads(the(rendered, "ConfigMap", objects.ROUTES_CONFIGMAP)["data"]["routes.json"]) \
        == {"revision": 0, "services": []}
    assert the(rendered, "Role")["rules"] == rbac.CONTROLLER_RULES
    assert [c["name"] for c in deployment["spec"]["template"]["spec"]["containers"]] == ["controller", "envoy"]


def test_tls_front_end_serves_https_from_the_secret() -> None:
    rendered = CONFIGURATIONS["tls-nodeport"]()
    service = the(rendered, "Service", objects.FRONT_END_NAME)
    assert service["spec"]["type"] == "NodePort"
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] \
        == [(80, objects.FRONT_END_PORT), (443, objects.FRONT_END_TLS_PORT)]
    deployment = the(rendered, "Deployment", objects.FRONT_END_NAME)
    envoy = container(deployment, "envoy")
    tls_mount = next(m for m in envoy["volumeMounts"] if m["mountPath"] == str(TLS_DIR))
    volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == tls_mount["name"])
    secret = the(rendered, "Secret", TLS_SECRET)
    assert volume["secret"]["secretName"] == TLS_SECRET and secret["type"] == "kubernetes.io/tls"
    assert set(secret["stringData"]) == {"tls.crt", "tls.key"}
    assert container(deployment, "controller")["command"][-2:] == ["--tls-dir", str(TLS_DIR)]
    plain = the(CONFIGURATIONS["defaults"](), "Service", objects.FRONT_END_NAME)
    assert [p["port"] for p in plain["spec"]["ports"]] == [80] and plain["spec"]["type"] == "LoadBalancer"


def _broken(mutate) -> list[str]:
    rendered = CONFIGURATIONS["defaults"]()
    mutate(rendered)
    return problems(rendered, "team-ws", "myaks")


def _scoring_container(rendered: list[dict[str, Any]]) -> dict[str, Any]:
    return scoring_deployments(rendered)[0]["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda r: r[0]["metadata"]["labels"].pop(objects.WORKSPACE), "lacks the attachment's labels"),
    (lambda r: r[0]["spec"]["selector"]["matchLabels"].update({objects.VERSION: "other"}), "does not match"),
    (lambda r: r.append({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                         "metadata": {"name": "hpa", "labels": r[0]["metadata"]["labels"]}}), "would fight"),
    (lambda r: kinds(r, "Role")[0]["rules"][0]["verbs"].append("delete"), "not exactly rbac.CONTROLLER_RULES"),
    (lambda r: _scoring_container(r)["securityContext"].update({"allowPrivilegeEscalation": True}),
     "allows privilege escalation"),
    (lambda r: scoring_deployments(r)[0]["spec"]["template"]["spec"].update({"automountServiceAccountToken": True}),
     "no service account token"),
    (lambda r: _scoring_container(r)["livenessProbe"]["httpGet"].update({"path": "/-/ready"}),
     "livenessProbe is not GET /-/live"),
    (lambda r: _scoring_container(r)["resources"]["requests"].update({"memory": "1.5GB"}), "is no quantity"),
    (lambda r: _scoring_container(r)["resources"]["requests"].update({"memory": "2Gi"}), "exceeds its limit"),
    (lambda r: r[1]["spec"]["ports"][0].update({"targetPort": 5002}), "is not a port of its pods"),
    (lambda r: r[0]["metadata"].update({"name": "Diabetes_1"}), "is not a DNS label"),
    (lambda r: r[0]["metadata"]["labels"].update({objects.ENDPOINT: "-x" * 40}), "value is not"),
    (lambda r: _scoring_container(r)["env"].append({"name": "GREETING", "value": "again"}), "set twice"),
])
def test_semantic_checks_catch_broken_objects(mutate, expected: str) -> None:
    found = _broken(mutate)
    assert any(expected in line for line in found), found


def test_rendered_objects_apply_and_their_services_reach_their_pods_emulated(api_emulator, emulated_cluster) -> None:
    """Through the API emulator (server-side apply, then its emulated controller-manager): every kind rendered is
    accepted, and each Service's EndpointSlice holds its Deployment's ready pod on the port the pod serves."""
    rendered = deploy_objects(workload(the_target=target(namespace="default"), autoscale_enabled=False,
                                       num_replicas=1))
    for item in rendered:
        emulated_cluster.apply(item)
    api_emulator.settle()
    for service in kinds(rendered, "Service"):
        name = service["metadata"]["name"]
        slices = emulated_cluster.list("EndpointSlice", {"kubernetes.io/service-name": name})
        assert len(slices) == 1, name
        assert [endpoint["conditions"]["ready"] for endpoint in slices[0]["endpoints"]] == [True], name
        assert [port["port"] for port in slices[0]["ports"]] == [port["targetPort"]
                                                                  for port in service["spec"]["ports"]], name
