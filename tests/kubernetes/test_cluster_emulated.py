"""``Cluster`` against the Kubernetes API emulator (``emulator.py``): the requests it makes, what it reads back, and
the one-line errors a user sees for an unreachable, untrusted, unauthorized or forbidding cluster.

An emulator, not Kubernetes: these tests show the client asks the API the right things in the API's wire format.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.config import incluster_config

from modelport.backends.kubernetes.cluster import (
    Cluster,
    ClusterApiError,
    ClusterForbidden,
    ClusterTLSError,
    ClusterUnauthorized,
    ClusterUnreachable,
)
from modelport.errors import InvalidInput

from .emulated_objects import VALID_TOKEN
from .emulator import ApiEmulator, Seen, crash_looping_status

LABELS = {"app.kubernetes.io/managed-by": "modelport", "modelport.io/endpoint": "svc"}


def config_map(name: str, data: dict[str, str], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or LABELS},
            "data": data}


def deployment(name: str, replicas: int | None = 1, image: str = "scoring:1") -> dict[str, Any]:
    labels = {**LABELS, "modelport.io/replica-set": name}
    spec: dict[str, Any] = {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
        "containers": [{"name": "scoring", "image": image, "ports": [{"name": "http", "containerPort": 5001}]}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels}, "spec": spec}


def service(name: str) -> dict[str, Any]:
    labels = {**LABELS, "modelport.io/replica-set": name}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels},
            "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def kubeconfig_for(server: str, token: str = VALID_TOKEN, contexts: tuple[str, ...] = ("emulated",)) -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": contexts[0],
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": "c", "user": "u"}} for name in contexts]})


def test_connect_reads_the_kubeconfig_emulated(api_emulator: ApiEmulator, emulated_cluster: Cluster) -> None:
    assert emulated_cluster.server == api_emulator.url
    assert emulated_cluster.context == "emulated" and emulated_cluster.namespace == "default"
    api_emulator.version = {"major": "1", "minor": "29", "gitVersion": "v1.29.7"}
    assert emulated_cluster.version()["gitVersion"] == "v1.29.7"
    nodes = emulated_cluster.list_nodes()
    assert [n["metadata"]["name"] for n in nodes] == [n["metadata"]["name"] for n in api_emulator.nodes]
    assert all(n["kind"] == "Node" and n["status"]["capacity"]["cpu"] == "4" for n in nodes)


def test_apply_creates_then_updates_as_modelport_emulated(api_emulator: ApiEmulator, emulated_cluster: Cluster) -> None:
    created = emulated_cluster.apply(config_map("routes", {"a": "1"}))
    assert created["metadata"]["namespace"] == "default" and created["data"] == {"a": "1"}
    again = emulated_cluster.apply(config_map("routes", {"a": "1"}))
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]  # a no-op apply
    updated = emulated_cluster.apply(config_map("routes", {"a": "2"}))
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert emulated_cluster.get("ConfigMap", "routes")["data"] == {"a": "2"}
    # the emulator answers PATCH on an absent object only for server-side apply (a merge patch would be a 404)
    applies = [seen for seen in api_emulator.requests if seen.method == "PATCH"]
    assert [seen.path for seen in applies] == ["/api/v1/namespaces/default/configmaps/routes"] * 3
    assert all(seen.query == {"fieldManager": "modelport", "force": "true"} for seen in applies)


def test_apply_keeps_replicas_an_autoscaler_set_emulated(api_emulator: ApiEmulator,
                                                         emulated_cluster: Cluster) -> None:
    emulated_cluster.apply(deployment("svc-v1-1", replicas=1))
    emulated_cluster.scale("svc-v1-1", 3)
    assert emulated_cluster.get_scale("svc-v1-1")["spec"]["replicas"] == 3
    api_emulator.settle()
    emulated_cluster.apply(deployment("svc-v1-1", replicas=None, image="scoring:2"))
    stored = emulated_cluster.get("Deployment", "svc-v1-1")
    assert stored["spec"]["replicas"] == 3 and stored["metadata"]["generation"] == 3
    assert stored["status"]["readyReplicas"] == 3  # an apply leaves the status alone
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == "scoring:2"
    assert emulated_cluster.get_scale("absent") is None


def test_get_list_by_labels_and_delete_emulated(emulated_cluster: Cluster) -> None:
    emulated_cluster.apply(config_map("one", {}, {**LABELS, "modelport.io/version": "v1"}))
    emulated_cluster.apply(config_map("two", {}, {**LABELS, "modelport.io/version": "v2"}))
    emulated_cluster.apply(config_map("other", {}, {"app": "someone-else"}))
    assert {o["metadata"]["name"] for o in emulated_cluster.list("ConfigMap")} == {"one", "two", "other"}
    mine = emulated_cluster.list("ConfigMap", LABELS)
    assert {o["metadata"]["name"] for o in mine} == {"one", "two"}
    assert all(o["kind"] == "ConfigMap" and o["apiVersion"] == "v1" for o in mine)
    v2 = emulated_cluster.list("ConfigMap", {"modelport.io/version": "v2"})
    assert [o["metadata"]["name"] for o in v2] == ["two"]
    assert emulated_cluster.delete("ConfigMap", "one") is True
    assert emulated_cluster.delete("ConfigMap", "one") is False
    assert emulated_cluster.get("ConfigMap", "one") is None


def test_deleting_a_deployment_takes_its_pods_emulated(api_emulator: ApiEmulator, emulated_cluster: Cluster) -> None:
    emulated_cluster.apply(deployment("svc-v1-1", replicas=2))
    api_emulator.settle()
    assert len(emulated_cluster.list("Pod", LABELS)) == 2
    assert emulated_cluster.delete("Deployment", "svc-v1-1")
    assert emulated_cluster.list("Pod") == [] and emulated_cluster.list("ReplicaSet") == []
    assert api_emulator.requests[-3].query == {"propagationPolicy": "Background"}


def test_settle_runs_deployments_and_endpoint_slices_emulated(api_emulator: ApiEmulator,
                                                             emulated_cluster: Cluster) -> None:
    emulated_cluster.apply(deployment("svc-v1-1", replicas=2))
    emulated_cluster.apply(service("svc-v1-1"))
    api_emulator.settle(lambda name, index: crash_looping_status(["scoring"], exit_code=3) if index == 1 else None)
    status = emulated_cluster.get("Deployment", "svc-v1-1")["status"]
    assert (status["replicas"], status["readyReplicas"], status["unavailableReplicas"]) == (2, 1, 1)
    pods = {p["metadata"]["name"]: p for p in emulated_cluster.list("Pod", LABELS)}
    assert all(name.startswith("svc-v1-1-") for name in pods)
    (endpoint_slice,) = emulated_cluster.list("EndpointSlice", {"kubernetes.io/service-name": "svc-v1-1"})
    assert endpoint_slice["ports"][0]["port"] == 5001  # the named targetPort, resolved
    ready = {e["targetRef"]["name"]: e["conditions"]["ready"] for e in endpoint_slice["endpoints"]}
    assert ready == {name: pod["status"]["phase"] == "Running" and pod["status"]["conditions"][-1]["status"] == "True"
                     for name, pod in pods.items()}
    assert sorted(ready.values()) == [False, True]


def test_settle_rolls_out_a_new_template_and_exposes_services_emulated(api_emulator: ApiEmulator,
                                                                      emulated_cluster: Cluster) -> None:
    emulated_cluster.apply(deployment("svc-v1-1", replicas=2))
    exposed = service("svc-v1-1")
    exposed["spec"]["type"] = "LoadBalancer"
    emulated_cluster.apply(exposed)
    api_emulator.settle()
    before = {p["metadata"]["name"] for p in emulated_cluster.list("Pod")}
    emulated_cluster.apply(deployment("svc-v1-1", replicas=2, image="scoring:2"))
    api_emulator.settle()
    pods = emulated_cluster.list("Pod")
    assert len(pods) == 2 and before.isdisjoint(p["metadata"]["name"] for p in pods)
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"scoring:2"}
    assert len(emulated_cluster.list("ReplicaSet")) == 1
    stored = emulated_cluster.get("Service", "svc-v1-1")
    assert stored["status"]["loadBalancer"]["ingress"] == [{"ip": api_emulator.load_balancer_ip}]
    assert 30000 <= stored["spec"]["ports"][0]["nodePort"] <= 32767 and stored["spec"]["clusterIP"]


def test_secret_string_data_is_stored_as_data_emulated(emulated_cluster: Cluster) -> None:
    emulated_cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "svc-keys", "labels": LABELS},
                            "stringData": {"primaryKey": "k1"}})
    stored = emulated_cluster.get("Secret", "svc-keys")
    assert stored["data"] == {"primaryKey": "azE="} and "stringData" not in stored and stored["type"] == "Opaque"


def test_auto_settle_runs_what_is_applied_emulated() -> None:
    with ApiEmulator(auto_settle=True) as emulator:
        cluster = Cluster.connect(emulator.kubeconfig(), None, "default")
        cluster.apply(deployment("svc-v1-1", replicas=2))
        assert cluster.get("Deployment", "svc-v1-1")["status"]["readyReplicas"] == 2
        cluster.scale("svc-v1-1", 1)
        assert len(cluster.list("Pod", LABELS)) == 1
        cluster.close()


def test_pod_log_emulated(api_emulator: ApiEmulator, emulated_cluster: Cluster) -> None:
    api_emulator.put({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                      "spec": {"containers": [{"name": "scoring"}, {"name": "sidecar"}]}})
    api_emulator.pod_logs[("p", "scoring", False)] = "one\ntwo\nthree\n"
    api_emulator.pod_logs[("p", "scoring", True)] = "init() failed\n"
    assert emulated_cluster.pod_log("p", "scoring") == "one\ntwo\nthree\n"
    assert emulated_cluster.pod_log("p", "scoring", tail_lines=2) == "two\nthree\n"
    assert emulated_cluster.pod_log("p", "scoring", previous=True) == "init() failed\n"
    with pytest.raises(ClusterApiError, match="container name must be specified") as error:
        emulated_cluster.pod_log("p")
    assert error.value.api_status == 400


def test_events_by_field_selector_emulated(api_emulator: ApiEmulator, emulated_cluster: Cluster) -> None:
    for name, pod, reason in [("e1", "p1", "FailedScheduling"), ("e2", "p2", "BackOff")]:
        api_emulator.put({"apiVersion": "v1", "kind": "Event", "metadata": {"name": name}, "reason": reason,
                          "type": "Warning", "involvedObject": {"kind": "Pod", "name": pod}})
    assert {e["reason"] for e in emulated_cluster.events()} == {"FailedScheduling", "BackOff"}
    assert [e["reason"] for e in emulated_cluster.events("involvedObject.name=p2")] == ["BackOff"]


def test_allowed_asks_a_self_subject_access_review_emulated(api_emulator: ApiEmulator,
                                                           emulated_cluster: Cluster) -> None:
    assert emulated_cluster.allowed("apps", "deployments/scale", "patch")
    assert emulated_cluster.allowed("", "nodes", "list", cluster_scoped=True)
    api_emulator.deny("apps", "deployments/scale", "patch")
    api_emulator.deny("", "nodes", "list")
    assert not emulated_cluster.allowed("apps", "deployments/scale", "patch")
    assert emulated_cluster.allowed("apps", "deployments", "patch")
    assert not emulated_cluster.allowed("", "nodes", "list", cluster_scoped=True)


def test_forbidden_names_verb_resource_and_namespace_and_is_not_retried_emulated(
        api_emulator: ApiEmulator, emulated_cluster: Cluster) -> None:
    api_emulator.deny("apps", "deployments", "patch")
    with pytest.raises(ClusterForbidden) as error:
        emulated_cluster.apply(deployment("svc-v1-1"))
    assert (error.value.verb, error.value.group, error.value.resource, error.value.namespace) == \
        ("patch", "apps", "deployments", "default")
    message = str(error.value)
    assert "patch" in message and "deployments" in message and "'default'" in message and "\n" not in message
    assert sum(seen.method == "PATCH" for seen in api_emulator.requests) == 1
    api_emulator.deny("", "nodes", "list")
    with pytest.raises(ClusterForbidden, match="cluster-wide.*ClusterRole"):
        emulated_cluster.list_nodes()


def test_apply_that_creates_needs_create_emulated(api_emulator: ApiEmulator, emulated_cluster: Cluster) -> None:
    api_emulator.deny("", "configmaps", "create")
    with pytest.raises(ClusterForbidden):
        emulated_cluster.apply(config_map("routes", {}))


def test_api_refusals_carry_the_api_message_emulated(api_emulator: ApiEmulator, emulated_cluster: Cluster) -> None:
    with pytest.raises(ClusterApiError, match="metadata.labels") as error:
        emulated_cluster.apply(config_map("routes", {}, {"modelport.io/endpoint": "x" * 64}))
    assert error.value.api_status == 422
    emulated_cluster.apply(deployment("svc-v1-1"))
    moved = deployment("svc-v1-1")
    moved["spec"]["selector"]["matchLabels"]["extra"] = "x"
    moved["spec"]["template"]["metadata"]["labels"]["extra"] = "x"
    with pytest.raises(ClusterApiError, match="immutable"):
        emulated_cluster.apply(moved)
    stale = config_map("routes", {"a": "1"})
    emulated_cluster.apply(stale)
    emulated_cluster.apply(config_map("routes", {"a": "2"}))
    stale["metadata"]["resourceVersion"] = "1"
    with pytest.raises(ClusterApiError, match="the object has been modified") as error:
        emulated_cluster.apply(stale)
    assert error.value.api_status == 409
    elsewhere = Cluster.connect(api_emulator.kubeconfig(), None, namespace="missing")
    with pytest.raises(ClusterApiError, match='namespaces "missing" not found') as error:
        elsewhere.apply(config_map("routes", {}))
    assert error.value.api_status == 404
    elsewhere.close()


def test_wrong_token_is_unauthorized_emulated(api_emulator: ApiEmulator) -> None:
    wrong = "wrong-token-that-must-not-leak"
    cluster = Cluster.connect(api_emulator.kubeconfig(token=wrong), None, "default")
    with pytest.raises(ClusterUnauthorized) as error:
        cluster.list("Pod")
    assert "401" in str(error.value) and "kubeconfig" in str(error.value)
    assert wrong not in str(error.value) and VALID_TOKEN not in str(error.value)


def exec_plugin_kubeconfig(emulator: ApiEmulator, token: str) -> str:
    """A kubeconfig whose user gets its token from an exec credential plugin (as AKS's kubelogin does)."""
    document = yaml.safe_load(emulator.kubeconfig())
    credential = json.dumps({"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential",
                             "status": {"token": token}})
    document["users"][0]["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1",
                                             "command": sys.executable, "args": ["-c", f"print({credential!r})"]}}
    return yaml.safe_dump(document)


def test_exec_credential_plugins_are_run_and_named_when_refused_emulated(api_emulator: ApiEmulator) -> None:
    cluster = Cluster.connect(exec_plugin_kubeconfig(api_emulator, VALID_TOKEN), None, "default")
    assert cluster.version()["major"] == "1"
    cluster.close()
    cluster = Cluster.connect(exec_plugin_kubeconfig(api_emulator, "expired-token"), None, "default")
    with pytest.raises(ClusterUnauthorized) as error:
        cluster.list("Pod")
    assert f"`{Path(sys.executable).name}`" in str(error.value) and "expired-token" not in str(error.value)
    cluster.close()


def test_unreachable_names_the_address(closed_port: int) -> None:
    server = f"http://127.0.0.1:{closed_port}"
    cluster = Cluster.connect(kubeconfig_for(server), None, "default", timeout_s=5)
    with pytest.raises(ClusterUnreachable) as error:
        cluster.version()
    message = str(error.value)
    assert server in message and "connection refused" in message and "authorized IP ranges" in message
    assert VALID_TOKEN not in message


def test_no_answer_is_unreachable_after_the_timeout(silent_port: int) -> None:
    cluster = Cluster.connect(kubeconfig_for(f"http://127.0.0.1:{silent_port}"), None, "default", timeout_s=0.5)
    with pytest.raises(ClusterUnreachable, match="no answer within 0.5 s"):
        cluster.version()


def test_https_to_a_plain_http_server_is_a_tls_error_emulated(api_emulator: ApiEmulator) -> None:
    server = api_emulator.url.replace("http://", "https://")
    cluster = Cluster.connect(kubeconfig_for(server), None, "default")
    with pytest.raises(ClusterTLSError) as error:
        cluster.version()
    message = str(error.value)
    assert server in message and "TLS" in message and "certificate-authority" in message
    assert VALID_TOKEN not in message


def test_untrusted_certificate_is_a_tls_error_emulated() -> None:
    with ApiEmulator(tls=True) as trusted, ApiEmulator(tls=True) as other:
        assert trusted.url.startswith("https://")
        cluster = Cluster.connect(trusted.kubeconfig(), None, "default")
        assert cluster.version()["major"] == "1"  # the kubeconfig's certificate-authority-data is what is trusted
        cluster.close()
        wrong_authority = other.kubeconfig().replace(other.url, trusted.url)
        cluster = Cluster.connect(wrong_authority, None, "default")
        with pytest.raises(ClusterTLSError) as error:
            cluster.version()
        assert trusted.url in str(error.value) and "certificate-authority" in str(error.value)
        assert trusted.requests == [Seen("GET", "/version", {})]  # the untrusted attempt never got to send
        cluster.close()


def test_unknown_context_lists_the_contexts_without_echoing_the_kubeconfig() -> None:
    text = kubeconfig_for("https://example.invalid", contexts=("prod", "staging"))
    with pytest.raises(InvalidInput) as error:
        Cluster.connect(text, "dev", "default")
    message = str(error.value)
    assert "'dev'" in message and "prod, staging" in message
    assert VALID_TOKEN not in message and "example.invalid" not in message
    with pytest.raises(InvalidInput, match="not valid YAML"):
        Cluster.connect("clusters: [unclosed", None, "default")
    with pytest.raises(InvalidInput, match="no contexts"):
        Cluster.connect("just text", None, "default")
    dangling = yaml.safe_load(text)
    dangling["clusters"] = []
    with pytest.raises(InvalidInput, match="context 'prod' cannot be used") as error:
        Cluster.connect(yaml.safe_dump(dangling), None, "default")
    assert VALID_TOKEN not in str(error.value)


def test_in_cluster_uses_the_service_account_emulated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with ApiEmulator(tls=True) as emulator:
        # what the kubelet mounts into a pod, at a test path: the ServiceAccount token and the cluster's CA
        (tmp_path / "token").write_text(VALID_TOKEN)
        (tmp_path / "ca.crt").write_bytes(emulator.certificate)
        monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(tmp_path / "token"))
        monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(tmp_path / "ca.crt"))
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", emulator.url.rsplit(":", 1)[1])
        cluster = Cluster.in_cluster("default")
        cluster.apply(config_map("modelport-frontend-applied", {"generation": "1"}))
        assert emulator.get_object("ConfigMap", "modelport-frontend-applied")["data"] == {"generation": "1"}
        cluster.close()


def test_in_cluster_outside_a_pod_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(InvalidInput, match="not running inside a Kubernetes pod"):
        Cluster.in_cluster("default")
