"""Attach checks against the Kubernetes API emulator (real HTTP, the official client): what a user attaching a
cluster is told, every failure in one pass."""

from __future__ import annotations

import socket

import pytest
import yaml

from modelport.backends.kubernetes import rbac
from modelport.backends.kubernetes.cluster import Cluster
from modelport.backends.kubernetes.preflight import ROLE_NAME, check_attachment
from modelport.spec.compute import DEV_TEST, KubernetesTarget

from .emulator import ApiEmulator, node


def target(api: ApiEmulator, purpose: str = "FastProd", namespace: str = "default") -> KubernetesTarget:
    return KubernetesTarget(name="aks-prod", server=api.url, namespace=namespace, cluster_purpose=purpose)


def connect(kubeconfig: str, namespace: str = "default") -> Cluster:
    return Cluster.connect(kubeconfig, context=None, namespace=namespace, timeout_s=5)


def test_emulated_good_cluster_passes(api_emulator: ApiEmulator, emulated_cluster: Cluster):
    report = check_attachment(emulated_cluster, target(api_emulator))
    assert report.ok and report.problems == [] and report.warnings == []
    assert report.server_version == "v1.30.4" and report.vcpus == 12.0  # three 4-core nodes: Azure's minimum


def test_emulated_fast_prod_with_8_vcpus_fails_suggesting_dev_test(api_emulator: ApiEmulator,
                                                                   emulated_cluster: Cluster):
    api_emulator.nodes = [node("aks-nodepool1-00000"), node("aks-nodepool1-00001")]
    report = check_attachment(emulated_cluster, target(api_emulator))
    assert not report.ok and report.vcpus == 8.0
    [problem] = report.problems
    assert "FastProd needs at least 12 vCPUs" in problem and "8 vCPUs on 2 schedulable node(s)" in problem
    assert f"cluster_purpose={DEV_TEST}" in problem


def test_emulated_dev_test_passes_with_a_warning_it_is_not_for_production(api_emulator: ApiEmulator,
                                                                          emulated_cluster: Cluster):
    api_emulator.nodes = [node("aks-nodepool1-00000", cpu="2", memory="8Gi")]
    report = check_attachment(emulated_cluster, target(api_emulator, DEV_TEST))
    assert report.ok and report.vcpus == 2.0
    [warning] = report.warnings
    assert "DevTest is for development and test, not production" in warning


def test_emulated_cordoned_and_not_ready_nodes_do_not_count(api_emulator: ApiEmulator, emulated_cluster: Cluster):
    down = node("aks-nodepool1-00002")
    down["status"]["conditions"] = [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"}]
    api_emulator.nodes = [node("aks-nodepool1-00000"), node("aks-nodepool1-00001", unschedulable=True), down]
    report = check_attachment(emulated_cluster, target(api_emulator))
    assert report.vcpus == 4.0
    [problem] = report.problems
    assert "aks-nodepool1-00001 (cordoned)" in problem and "aks-nodepool1-00002 (not Ready)" in problem


def test_emulated_front_end_that_fits_no_node_is_a_problem(api_emulator: ApiEmulator, emulated_cluster: Cluster):
    api_emulator.nodes = [node(f"small-{i}", cpu="4", memory="1Gi", allocatable_memory="300Mi") for i in range(3)]
    report = check_attachment(emulated_cluster, target(api_emulator))
    [problem] = report.problems
    assert problem.startswith("the front end (0.35 cores, 0.5 GB) cannot be scheduled")
    assert "memory too large" in problem


def test_emulated_denied_verbs_are_listed_with_a_role_granting_exactly_them(api_emulator: ApiEmulator):
    api_emulator.deny("", "pods/log", "get")
    api_emulator.deny("apps", "deployments", "delete")
    api_emulator.deny("", "nodes", "list")
    api_emulator.namespaces.add("models")
    cluster = connect(api_emulator.kubeconfig(namespace="models"), namespace="models")
    report = check_attachment(cluster, target(api_emulator, namespace="models"))
    permissions = next(p for p in report.problems if "permission(s)" in p)
    assert "lack 3 permission(s)" in permissions
    assert "namespace models: delete deployments (apps), get pods/log; cluster-wide: list nodes" in permissions
    role, cluster_role = yaml.safe_load_all(permissions.split("\n", 1)[1])
    assert role["kind"] == "Role" and role["metadata"] == {"name": ROLE_NAME, "namespace": "models",
                                                           "labels": {"app.kubernetes.io/managed-by": "modelport"}}
    assert role["rules"] == [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["delete"]},
                             {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]
    assert cluster_role["kind"] == "ClusterRole" and "namespace" not in cluster_role["metadata"]
    assert cluster_role["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]
    assert f"--role={ROLE_NAME}" in permissions and f"--clusterrole={ROLE_NAME}" in permissions
    # the refused node list is a finding, not an error, and the checks that need it say they did not run
    assert any(p.startswith("the vCPU and front-end checks did not run: listing nodes was refused")
               for p in report.problems)
    assert report.vcpus is None


def test_emulated_every_rbac_verb_is_asked(api_emulator: ApiEmulator, emulated_cluster: Cluster):
    check_attachment(emulated_cluster, target(api_emulator))
    asked = [seen for seen in api_emulator.requests if seen.path.endswith("/selfsubjectaccessreviews")]
    assert len(asked) == len(rbac.verbs(rbac.CONTROL_PLANE_RULES)) + len(rbac.verbs(rbac.CLUSTER_RULES))


def test_emulated_wrong_token_is_the_one_problem_named_401(api_emulator: ApiEmulator):
    report = check_attachment(connect(api_emulator.kubeconfig(token="expired-token")), target(api_emulator))
    [problem] = report.problems
    assert "401" in problem and api_emulator.url in problem and "expired-token" not in problem
    assert report.server_version is None and report.vcpus is None


def test_emulated_wrong_token_says_the_fix_the_caller_gives(api_emulator: ApiEmulator):
    cluster = connect(api_emulator.kubeconfig(token="expired-token"))
    [attaching] = check_attachment(cluster, target(api_emulator)).problems
    assert attaching == (f"the Kubernetes API at {api_emulator.url} rejected the credentials (401): they are wrong "
                         "or expired; attach again with a fresh kubeconfig")
    fix = "refresh it with a fresh kubeconfig: modelport computetarget refresh -n aks-prod --kubeconfig FILE"
    [attached] = check_attachment(cluster, target(api_emulator), unauthorized_fix=fix).problems
    assert attached == attaching.replace("attach again with a fresh kubeconfig", fix)


def test_emulated_closed_port_is_unreachable_naming_the_url(api_emulator: ApiEmulator):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    kubeconfig = api_emulator.kubeconfig().replace(api_emulator.url, closed)
    report = check_attachment(connect(kubeconfig), target(api_emulator))
    [problem] = report.problems
    assert closed in problem and "connection refused" in problem and "authorized IP ranges" in problem


@pytest.mark.parametrize(("git_version", "minor", "problem", "warning"), [
    ("v1.26.15", "26", "older than 1.27", None),
    ("v1.34.1-eks-1234", "34+", None, "newer than 1.33"),
    ("v1.31.2-gke.1", "31+", None, None),
])
def test_emulated_server_version_rules(api_emulator: ApiEmulator, emulated_cluster: Cluster, git_version: str,
                                       minor: str, problem: str | None, warning: str | None):
    api_emulator.version = {"major": "1", "minor": minor, "gitVersion": git_version, "platform": "linux/amd64"}
    report = check_attachment(emulated_cluster, target(api_emulator))
    assert report.server_version == git_version
    assert [problem in p for p in report.problems] == ([True] if problem else [])
    assert [warning in w for w in report.warnings] == ([True] if warning else [])


def test_emulated_several_failures_are_all_listed(api_emulator: ApiEmulator, emulated_cluster: Cluster):
    api_emulator.version = {"major": "1", "minor": "25", "gitVersion": "v1.25.6"}
    api_emulator.nodes = [node("aks-nodepool1-00000", cpu="8")]
    api_emulator.deny("batch", "jobs", "create")
    report = check_attachment(emulated_cluster, target(api_emulator))
    assert len(report.problems) == 3
    assert "older than 1.27" in report.problems[0]
    assert "needs at least 12 vCPUs" in report.problems[1]
    assert "create jobs (batch)" in report.problems[2]


def test_emulated_tls_failure_is_the_one_problem_naming_the_url(api_emulator: ApiEmulator):
    # the emulator speaks plain HTTP: a TLS handshake with it fails as with a server whose certificate does not match
    tls_url = api_emulator.url.replace("http://", "https://")
    report = check_attachment(connect(api_emulator.kubeconfig().replace(api_emulator.url, tls_url)),
                              target(api_emulator))
    [problem] = report.problems
    assert "TLS handshake" in problem and tls_url in problem
