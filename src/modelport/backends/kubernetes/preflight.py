"""The cluster checks of an attach (Azure ML's ``ComputeTarget.attach`` of a Kubernetes cluster), in one pass.

``operations.compute_checks`` calls ``check_attachment`` on attach and refresh, before anything is created in the
cluster. It reports every failure at once, each as one line saying what is wrong and what to do: whether the API
answers (if not, that is the only problem; a 401 says the fix the caller gives), the server's version, Azure ML's
vCPU rule for the cluster purpose, a node the front end fits on, and every permission modelport needs (``rbac``),
with a Role granting the missing ones.
A refusal (403) is a finding, never an internal error, and nothing is retried.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from ...spec.compute import DEV_TEST, FAST_PROD, MIN_VCPUS, KubernetesTarget
from . import objects, rbac, scheduling
from .cluster import Cluster, ClusterError, ClusterForbidden, ClusterTLSError, ClusterUnauthorized, ClusterUnreachable

OLDEST_SUPPORTED = (1, 27)  # older is refused
NEWEST_TESTED = (1, 33)  # newer only warns
ROLE_NAME = "modelport-control-plane"  # the Role and ClusterRole the attach report proposes
ATTACH_AGAIN = "attach again with a fresh kubeconfig"  # what to do about a 401 while attaching
_GENERIC_401_FIX = "; get a fresh kubeconfig"  # how Cluster's 401 message starts its (generic) fix


@dataclass(frozen=True)
class AttachReport:
    """What ``check_attachment`` found. ``problems``: what stops the attach, one line each (a proposed Role's
    YAML follows its line); ``warnings``: what works but needs care; ``server_version``: the API's ``gitVersion``
    (None when it did not answer); ``vcpus``: the schedulable nodes' vCPUs (None when nodes could not be read)."""

    problems: list[str]
    warnings: list[str]
    server_version: str | None
    vcpus: float | None

    @property
    def ok(self) -> bool:
        """Whether the cluster can be attached (no problem; warnings allowed)."""
        return not self.problems


def check_attachment(cluster: Cluster, target: KubernetesTarget,
                     front_end_requests: dict[str, dict[str, str]] = objects.FRONT_END_REQUESTS,
                     unauthorized_fix: str = ATTACH_AGAIN) -> AttachReport:
    """Check that ``cluster`` (connected with the kubeconfig to attach, in ``target.namespace``) can host ``target``.

    ``front_end_requests``: the front end pod's requests per container (``{"envoy": {"cpu": "250m", "memory":
    "256Mi"}, ...}``); ``unauthorized_fix``: what a 401 tells the user to do (attach again, or for an attached
    target, refresh it with a fresh kubeconfig). Raises nothing: every failure, a Cluster error included, becomes a
    problem line. The API not answering at all (timeout, refused, DNS, TLS, 401) is the one problem reported,
    naming the API URL."""
    problems: list[str] = []
    warnings: list[str] = []
    try:
        answer = cluster.version()
    except ClusterUnauthorized as err:
        return AttachReport([unauthorized(err, unauthorized_fix)], [], None, None)
    except (ClusterUnreachable, ClusterTLSError) as err:
        return AttachReport([str(err)], [], None, None)
    except ClusterError as err:
        answer = None
        problems.append(f"the API's /version could not be read ({err}); the server version was not checked")
    server_version = _version_check(answer, problems, warnings) if answer is not None else None
    vcpus = _node_checks(cluster, target, front_end_requests, problems, warnings)
    problems.extend(_permission_problems(cluster))
    return AttachReport(problems, warnings, server_version, vcpus)


def unauthorized(err: ClusterUnauthorized, fix: str) -> str:
    """``err``'s message (which credentials were rejected, by which API) with ``fix`` as what to do."""
    return f"{str(err).partition(_GENERIC_401_FIX)[0]}; {fix}"


def _version_check(answer: dict[str, Any], problems: list[str], warnings: list[str]) -> str:
    """The server's version (``gitVersion``), with a problem when older than ``OLDEST_SUPPORTED`` and a warning
    when newer than ``NEWEST_TESTED``. ``minor`` may carry a suffix (``"27+"`` on EKS and GKE)."""
    shown = answer.get("gitVersion") or f"v{answer.get('major')}.{answer.get('minor')}"
    numbers = [re.match(r"\d+", str(answer.get(part) or "")) for part in ("major", "minor")]
    if not all(numbers):
        numbers = list(re.finditer(r"\d+", shown))[:2]
    if len(numbers) < 2 or not all(numbers):
        warnings.append(f"the Kubernetes version {shown!r} could not be read; it was not checked")
        return shown
    version = (int(numbers[0].group()), int(numbers[1].group()))
    if version < OLDEST_SUPPORTED:
        problems.append(f"Kubernetes {shown} is older than {_dotted(OLDEST_SUPPORTED)}, the oldest modelport "
                        "supports: upgrade the cluster")
    elif version > NEWEST_TESTED:
        warnings.append(f"Kubernetes {shown} is newer than {_dotted(NEWEST_TESTED)}, the newest modelport was "
                        "tested with; it is expected to work")
    return shown


def _node_checks(cluster: Cluster, target: KubernetesTarget, front_end_requests: dict[str, dict[str, str]],
                 problems: list[str], warnings: list[str]) -> float | None:
    """Azure ML's vCPU rule for ``target.cluster_purpose`` and a node the front end fits on; the vCPUs counted."""
    if target.cluster_purpose == DEV_TEST:
        warnings.append(f"cluster_purpose {DEV_TEST} is for development and test, not production: use {FAST_PROD} "
                        f"(at least {MIN_VCPUS[FAST_PROD]:g} vCPUs) for production services")
    try:
        nodes = cluster.list_nodes()
    except ClusterForbidden:
        problems.append("the vCPU and front-end checks did not run: listing nodes was refused (granted by the "
                        "ClusterRole below)")
        return None
    except ClusterError as err:
        problems.append(f"the vCPU and front-end checks did not run: the nodes could not be read ({err})")
        return None
    vcpus = scheduling.vcpus(nodes)
    if vcpus < target.min_vcpus:
        excluded = [f"{scheduling.node_name(n)} ({why})" for n in nodes
                    if (why := scheduling.unschedulable_reason(n)) is not None]
        counted = (f"{vcpus:g} vCPUs on {len(nodes) - len(excluded)} schedulable node(s)"
                   + (f"; not counted: {', '.join(excluded)}" if excluded else ""))
        fix = (f"add nodes, or attach with cluster_purpose={DEV_TEST} (at least {MIN_VCPUS[DEV_TEST]:g} vCPUs, for "
               "development and test)" if target.cluster_purpose == FAST_PROD else "add nodes")
        problems.append(f"cluster_purpose {target.cluster_purpose} needs at least {target.min_vcpus:g} vCPUs on "
                        f"schedulable nodes; the cluster has {counted}: {fix}")
    request = scheduling.pod_request({"containers": [{"name": name, "resources": {"requests": dict(requests)}}
                                                     for name, requests in front_end_requests.items()]})
    fit = scheduling.check_fit(request, 1, nodes, [])
    if fit.never_fits:
        problems.append(f"the front end ({request.describe()}) cannot be scheduled: {fit.never_fits}")
    return vcpus


def _permission_problems(cluster: Cluster) -> list[str]:
    """One problem listing every permission of ``rbac.CONTROL_PLANE_RULES`` (in the namespace) and
    ``rbac.CLUSTER_RULES`` (cluster-wide) the credentials lack, followed by the Role/ClusterRole YAML granting
    exactly those; none when all are granted."""
    missing: dict[bool, list[tuple[str, str, str]]] = {False: [], True: []}  # cluster-scoped? -> missing verbs
    try:
        for cluster_scoped, rules in ((False, rbac.CONTROL_PLANE_RULES), (True, rbac.CLUSTER_RULES)):
            for group, resource, verb in rbac.verbs(rules):
                if not cluster.allowed(group, resource, verb, cluster_scoped=cluster_scoped):
                    missing[cluster_scoped].append((group, resource, verb))
    except ClusterError as err:
        return [f"the credentials' permissions could not be checked (a SelfSubjectAccessReview failed: {err}); "
                "they need create on selfsubjectaccessreviews (authorization.k8s.io), which every authenticated user "
                "has by default"]
    if not missing[False] and not missing[True]:
        return []
    listed = "; ".join(
        f"{where}: " + ", ".join(f"{verb} {resource}" + (f" ({group})" if group else "") for group, resource, verb in
                                 found)
        for where, found in ((f"namespace {cluster.namespace}", missing[False]), ("cluster-wide", missing[True]))
        if found)
    binding = (f"kubectl create rolebinding {ROLE_NAME} -n {cluster.namespace} --role={ROLE_NAME} --user=<user>"
               if missing[False] else "")
    cluster_binding = (f"kubectl create clusterrolebinding {ROLE_NAME} --clusterrole={ROLE_NAME} --user=<user>"
                       if missing[True] else "")
    bind = " and ".join(command for command in (binding, cluster_binding) if command)
    documents = [_role("Role", missing[False], cluster.namespace)] if missing[False] else []
    documents += [_role("ClusterRole", missing[True], None)] if missing[True] else []
    return [f"the kubeconfig's credentials lack {len(missing[False]) + len(missing[True])} permission(s) modelport "
            f"needs ({listed}); a cluster administrator can grant exactly these by applying the YAML below "
            f"(kubectl apply -f) and binding it to the kubeconfig's user or ServiceAccount ({bind}):\n"
            + yaml.safe_dump_all(documents, sort_keys=False).rstrip()]


def _role(kind: str, missing: list[tuple[str, str, str]], namespace: str | None) -> dict[str, Any]:
    """A Role (``namespace`` given) or ClusterRole granting exactly ``missing`` (group, resource, verb), one rule
    per group and resource."""
    rules: dict[tuple[str, str], list[str]] = {}
    for group, resource, verb in missing:
        rules.setdefault((group, resource), []).append(verb)
    metadata: dict[str, Any] = {"name": ROLE_NAME, **({"namespace": namespace} if namespace else {}),
                                "labels": {objects.MANAGED_BY: objects.MANAGER}}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": metadata,
            "rules": [{"apiGroups": [group], "resources": [resource], "verbs": verbs}
                      for (group, resource), verbs in rules.items()]}


def _dotted(version: tuple[int, int]) -> str:
    return ".".join(map(str, version))
