"""Objects and matching rules of the emulated Kubernetes API (see ``emulator.py``): realistic Node and Pod status
dicts for tests, the API's label and field selector rules, its ``Status`` errors, and the resource table.

Used by ``emulator.py`` (the state and emulated controllers), ``emulator_http.py`` (the HTTP side) and by tests that
build nodes and pod statuses.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any, NamedTuple

from kubernetes.utils import parse_quantity

VALID_TOKEN = "emulated-token-not-a-secret"
APPLY = "application/apply-patch+yaml"
USER = "emulated-user"  # who the API's messages say asked
MERGES = ("application/merge-patch+json", "application/strategic-merge-patch+json")

# (group, version, plural) -> (kind, namespaced): the API's own paths, independent of modelport's table
RESOURCES: dict[tuple[str, str, str], tuple[str, bool]] = {
    ("apps", "v1", "deployments"): ("Deployment", True), ("apps", "v1", "replicasets"): ("ReplicaSet", True),
    ("", "v1", "services"): ("Service", True), ("", "v1", "secrets"): ("Secret", True),
    ("", "v1", "configmaps"): ("ConfigMap", True), ("", "v1", "serviceaccounts"): ("ServiceAccount", True),
    ("", "v1", "pods"): ("Pod", True), ("", "v1", "events"): ("Event", True),
    ("rbac.authorization.k8s.io", "v1", "roles"): ("Role", True),
    ("rbac.authorization.k8s.io", "v1", "rolebindings"): ("RoleBinding", True),
    ("batch", "v1", "jobs"): ("Job", True), ("discovery.k8s.io", "v1", "endpointslices"): ("EndpointSlice", True),
    ("", "v1", "nodes"): ("Node", False),
}
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_REQUIREMENT = re.compile(r"^([A-Za-z0-9./_-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)$")


class Route(NamedTuple):
    """What a resource path names."""

    group: str
    version: str
    plural: str
    kind: str
    namespace: str | None
    name: str | None
    subresource: str | None

    @property
    def resource(self) -> str:
        """``<plural>[.<group>]``, as the API's messages name a resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


class Seen(NamedTuple):
    """One request the emulator received: ``method``, ``path``, ``query`` (first value of each parameter)."""

    method: str
    path: str
    query: dict[str, str]


class ApiError(Exception):
    """An answer outside 2xx, as a Kubernetes ``Status`` object."""

    REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
               409: "Conflict", 415: "UnsupportedMediaType", 422: "Invalid"}

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message

    def status(self) -> dict[str, Any]:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": self.message,
                "reason": self.REASONS.get(self.code, "InternalError"), "code": self.code}


def now() -> str:
    """The current time as the API writes timestamps (RFC 3339, seconds, UTC)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def node(name: str, cpu: str = "4", memory: str = "16Gi", gpus: int = 0, unschedulable: bool = False,
         taints: Iterable[str | dict[str, str]] = (), allocatable_cpu: str | None = None,
         allocatable_memory: str | None = None) -> dict[str, Any]:
    """A Ready Linux Node like an AKS agent node: ``cpu`` cores and ``memory`` bytes (quantities) of capacity;
    allocatable is capacity less the kubelet's reservation (140m CPU, 1Gi memory) unless given; ``gpus`` adds
    ``nvidia.com/gpu``; ``unschedulable`` cordons it (with the cordon taint); ``taints`` as dicts or
    ``key[=value]:Effect`` strings."""
    capacity = {"cpu": cpu, "memory": memory, "pods": "110", "ephemeral-storage": "129886128Ki"}
    millicores = int(parse_quantity(cpu) * 1000)
    mebibytes = int(parse_quantity(memory) / 2**20)
    allocatable = {**capacity, "cpu": allocatable_cpu or f"{max(millicores - 140, millicores // 2)}m",
                   "memory": allocatable_memory or f"{max(mebibytes - 1024, mebibytes // 2)}Mi"}
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
    if gpus:
        capacity["nvidia.com/gpu"] = allocatable["nvidia.com/gpu"] = str(gpus)
        labels["kubernetes.azure.com/accelerator"] = "nvidia"
    taint_list = [_taint(taint) for taint in taints]
    if unschedulable:
        taint_list.append({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"})
    spec: dict[str, Any] = {"taints": taint_list} if taint_list else {}
    if unschedulable:
        spec["unschedulable"] = True
    address = f"10.224.0.{int(hashlib.sha256(name.encode()).hexdigest(), 16) % 250 + 4}"
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}, "spec": spec,
            "status": {"capacity": capacity, "allocatable": allocatable,
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                       "addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}],
                       "nodeInfo": {"kubeletVersion": "v1.30.4", "operatingSystem": "linux", "architecture": "amd64",
                                    "containerRuntimeVersion": "containerd://1.7.20"}}}


def _taint(taint: str | dict[str, str]) -> dict[str, str]:
    if isinstance(taint, dict):
        return dict(taint)
    key_value, _, effect = taint.rpartition(":")
    key, _, value = key_value.partition("=")
    return {"key": key, **({"value": value} if value else {}), "effect": effect}


def ready_status(pod: dict[str, Any]) -> dict[str, Any]:
    """The status of a pod whose containers all run and are ready (what ``settle`` gives by default)."""
    started = now()
    containers = [{"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": True, "started": True,
                   "restartCount": 0, "containerID": f"containerd://{uuid.uuid4().hex}",
                   "state": {"running": {"startedAt": started}}} for c in pod["spec"].get("containers", [])]
    return {"phase": "Running", "startTime": started, "containerStatuses": containers,
            "conditions": [{"type": kind, "status": "True"}
                           for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]}


def crash_looping_status(containers: Iterable[str], exit_code: int, restarts: int = 3,
                         message: str = "") -> dict[str, Any]:
    """The status of a pod whose ``containers`` (names) keep exiting with ``exit_code`` (kubelet's CrashLoopBackOff,
    ``message`` as the container's termination message)."""
    statuses = [{"name": name, "ready": False, "started": False, "restartCount": restarts,
                 "state": {"waiting": {"reason": "CrashLoopBackOff",
                                       "message": f"back-off restarting failed container {name}"}},
                 "lastState": {"terminated": {"exitCode": exit_code, "reason": "Error", "message": message}}}
                for name in containers]
    return {"phase": "Running", "containerStatuses": statuses,
            "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Initialized", "status": "True"},
                           {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady"},
                           {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}]}


def unschedulable_status(message: str) -> dict[str, Any]:
    """The status of a Pending pod the scheduler could not place (``message`` as the scheduler words it, e.g.
    ``0/3 nodes are available: 3 Insufficient cpu.``)."""
    return {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                                "message": message}]}


def owner_reference(obj: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"],
            "uid": obj["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}


def is_ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def target_port(port: dict[str, Any], pods: list[dict[str, Any]]) -> int:
    target = port.get("targetPort", port["port"])
    if isinstance(target, int):
        return target
    for pod in pods:  # a named targetPort resolves to the container port of that name
        for container in pod["spec"].get("containers", []):
            for declared in container.get("ports", []):
                if declared.get("name") == target:
                    return declared["containerPort"]
    return port["port"]


def without_version(obj: dict[str, Any]) -> dict[str, Any]:
    return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}}


def matches_labels(labels: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in wanted.items())


def label_selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Whether ``labels`` satisfy an equality-based label selector (``k=v``, ``k==v``, ``k!=v``, comma-joined: the
    forms modelport sends); raises ApiError 400 for one it cannot parse."""
    return all((labels.get(key) == value) == (operator != "!=") for key, operator, value in _requirements(selector))


def field_selector_matches(selector: str, obj: dict[str, Any]) -> bool:
    """Whether ``obj`` satisfies a field selector (``a.b=v``, ``==``, ``!=``, comma-joined; any dotted path, where
    the API allows only some per kind)."""
    for path, operator, value in _requirements(selector):
        current: Any = obj
        for part in path.split("."):
            current = current.get(part) if isinstance(current, dict) else None
        if (("" if current is None else str(current)) == value) != (operator != "!="):
            return False
    return True


def _requirements(selector: str) -> list[tuple[str, str, str]]:
    requirements = []
    for requirement in filter(None, (r.strip() for r in selector.split(","))):
        found = _REQUIREMENT.match(requirement)
        if not found:
            raise ApiError(400, f"unable to parse requirement: {requirement!r}")
        requirements.append(found.groups())
    return requirements




def check_name(kind: str, name: str) -> None:
    """The API's object name rule: a DNS-1123 subdomain (Services: a DNS-1035 label); ApiError 422 otherwise."""
    rule, limit = (DNS_LABEL, 63) if kind == "Service" else (DNS_SUBDOMAIN, 253)
    if not rule.match(name) or len(name) > limit:
        raise ApiError(422, f'{kind} "{name}" is invalid: metadata.name: Invalid value: "{name}": a lowercase RFC '
                            f"{'1035 label' if kind == 'Service' else '1123 subdomain'} of at most {limit} characters")


def check_labels(kind: str, name: str, labels: dict[str, Any]) -> None:
    """The API's label rules: keys ``[prefix/]name`` (name at most 63), values at most 63 of ``[A-Za-z0-9_.-]``
    starting and ending alphanumeric; ApiError 422 otherwise."""
    for key, value in labels.items():
        prefix, _, label = key.rpartition("/")
        if not LABEL_NAME.match(label) or len(label) > 63 or (prefix and not DNS_SUBDOMAIN.match(prefix)):
            raise ApiError(422, f'{kind} "{name}" is invalid: metadata.labels: Invalid value: "{key}": name part '
                                "must consist of alphanumeric characters, '-', '_' or '.', at most 63")
        if not isinstance(value, str) or not LABEL_VALUE.match(value) or len(value) > 63:
            raise ApiError(422, f'{kind} "{name}" is invalid: metadata.labels: Invalid value: "{value}": a valid '
                                "label must be an empty string or at most 63 alphanumeric characters, '-', '_' or '.'")


def authorize(denied: set[tuple[str, str, str]], verb: str, route: Route) -> None:
    """ApiError 403, worded as the API words it, when ``(group, resource[/subresource], verb)`` is in ``denied``."""
    resource = f"{route.plural}/{route.subresource}" if route.subresource else route.plural
    if (route.group, resource, verb) not in denied:
        return
    named = f'{route.resource} "{route.name}"' if route.name else route.resource
    scope = f'in the namespace "{route.namespace}"' if route.namespace else "at the cluster scope"
    raise ApiError(403, f'{named} is forbidden: User "{USER}" cannot {verb} resource "{resource}" in API group '
                        f'"{route.group}" {scope}')
