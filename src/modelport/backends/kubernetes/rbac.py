"""The permissions modelport needs in a cluster, as Kubernetes RBAC policy rules.

``CONTROL_PLANE_RULES``: what the control plane does with the attached kubeconfig in the target's
namespace (apply, read and delete its objects, read pods, logs and events, run a kaniko build Job);
``CLUSTER_RULES``: the one cluster-scoped read (nodes, for the vCPU and capacity checks);
``CONTROLLER_RULES``: what the in-cluster front-end controller's ServiceAccount gets, and nothing
more (it reads routing state, watches EndpointSlices, writes what it applied and scales Deployments
through the scale subresource). Attach checks every verb of the first two and lists the missing
ones with a ready-to-apply Role.
"""

from __future__ import annotations

from typing import Any

from .objects import APPLIED_CONFIGMAP, AUTH_SECRET, ROUTES_CONFIGMAP

_MANAGE = ["get", "list", "create", "patch", "delete"]

CONTROL_PLANE_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": _MANAGE},
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["services", "secrets", "configmaps", "serviceaccounts"], "verbs": _MANAGE},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": _MANAGE},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": _MANAGE},  # kaniko builds (applied: patch)
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list"]},
]

CLUSTER_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]},
]

CONTROLLER_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [ROUTES_CONFIGMAP, APPLIED_CONFIGMAP],
     "verbs": ["get", "watch", "patch"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [AUTH_SECRET], "verbs": ["get", "watch"]},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["list"]},
    {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get", "patch"]},
]


def verbs(rules: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """Every (api group, resource, verb) the rules grant, in order: what attach asks the cluster about."""
    return [(group, resource, verb) for rule in rules for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]]
