"""Writes of the Kubernetes API emulator (``emulator.py`` says what it is): server-side apply, JSON merge patch and
the Deployment scale subresource, with the few defaults, immutable fields and generation counting the API has.

Called by ``emulator_http.py`` with the emulator's lock held; each returns the stored object (or the Scale).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import uuid
from typing import TYPE_CHECKING, Any

from .emulated_objects import ApiError, Route, authorize, check_labels, check_name, now

if TYPE_CHECKING:
    from .emulator import ApiEmulator

_GENERATION_KINDS = {"Deployment", "ReplicaSet", "Job"}  # kinds whose metadata.generation counts spec changes
_SYSTEM_METADATA = ("uid", "creationTimestamp", "generation", "resourceVersion", "managedFields")  # the API's to set


def scale_of(deployment: dict[str, Any]) -> dict[str, Any]:
    meta = deployment["metadata"]
    selector = ",".join(f"{k}={v}" for k, v in sorted(deployment["spec"]["selector"].get("matchLabels", {}).items()))
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {key: meta[key] for key in ("name", "namespace", "uid", "resourceVersion",
                                                    "creationTimestamp")},
            "spec": {"replicas": deployment["spec"].get("replicas", 1)},
            "status": {"replicas": deployment.get("status", {}).get("replicas", 0), "selector": selector}}


def patch_scale(emulator: ApiEmulator, route: Route, patch: dict[str, Any]) -> dict[str, Any]:
    existing = _existing(emulator, route)
    _check_version(route, existing, patch)
    replicas = _merged(scale_of(existing), patch).get("spec", {}).get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        raise ApiError(422, f'Scale.autoscaling "{route.name}" is invalid: spec.replicas: Invalid value: {replicas!r}: '
                            "must be greater than or equal to 0")
    updated = copy.deepcopy(existing)
    updated["spec"]["replicas"] = replicas
    return scale_of(_save(emulator, existing, updated))


def apply(emulator: ApiEmulator, route: Route, query: dict[str, str], obj: dict[str, Any]) -> dict[str, Any]:
    if not query.get("fieldManager"):
        raise ApiError(422, 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for '
                            "apply patch")
    if obj.get("apiVersion") != route.api_version or obj.get("kind") != route.kind:
        raise ApiError(400, f"the object's apiVersion/kind ({obj.get('apiVersion')}/{obj.get('kind')}) does not "
                            f"match the request path ({route.api_version}/{route.kind})")
    meta = obj.get("metadata") or {}
    if meta.get("name") != route.name:
        raise ApiError(400, f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                            f"({route.name})")
    if meta.get("namespace") not in (None, route.namespace):
        raise ApiError(400, "the namespace of the provided object does not match the namespace sent on the request")
    if route.namespace not in emulator.namespaces:
        raise ApiError(404, f'namespaces "{route.namespace}" not found')
    check_name(route.kind, route.name)
    check_labels(route.kind, route.name, meta.get("labels") or {})
    existing = emulator._objects.get((route.kind, route.namespace, route.name))
    if existing is None:
        authorize(emulator._denied, "create", route)
    else:
        _check_version(route, existing, obj)
    new = {k: v for k, v in copy.deepcopy(obj).items() if k != "status"}  # status is not applied with the object
    new["metadata"] = {**{k: v for k, v in meta.items() if k not in _SYSTEM_METADATA}, "namespace": route.namespace}
    _default(route.kind, new, existing)
    if existing is None:
        new["metadata"].update(uid=str(uuid.uuid4()), creationTimestamp=now(), managedFields=[
            {"manager": query["fieldManager"], "operation": "Apply", "apiVersion": route.api_version, "time": now()}])
        return emulator._store(new)
    kept = {k: v for k, v in (existing["metadata"].get("annotations") or {}).items()
            if k.startswith("deployment.kubernetes.io/")}  # written by the Deployment controller, not by the applier
    if kept:
        new["metadata"]["annotations"] = {**kept, **(new["metadata"].get("annotations") or {})}
    if "status" in existing:
        new["status"] = existing["status"]
    return _save(emulator, existing, new)


def merge_patch(emulator: ApiEmulator, route: Route, patch: dict[str, Any]) -> dict[str, Any]:
    existing = _existing(emulator, route)
    _check_version(route, existing, patch)
    new = _merged(existing, patch)
    check_labels(route.kind, route.name, new["metadata"].get("labels") or {})
    return _save(emulator, existing, new)


def _save(emulator: ApiEmulator, existing: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Store ``new`` over ``existing``: system metadata kept, immutable fields checked, generation counted."""
    for key in ("uid", "creationTimestamp", "generation", "ownerReferences", "managedFields"):
        if key in existing["metadata"]:
            new["metadata"].setdefault(key, existing["metadata"][key])
    new["metadata"]["namespace"] = existing["metadata"]["namespace"]
    kind = existing["kind"]
    if kind == "Deployment" and new["spec"].get("selector") != existing["spec"].get("selector"):
        raise ApiError(422, f'Deployment.apps "{existing["metadata"]["name"]}" is invalid: spec.selector: Invalid '
                            "value: field is immutable")
    if kind in _GENERATION_KINDS and new.get("spec") != existing.get("spec"):
        new["metadata"]["generation"] = existing["metadata"].get("generation", 1) + 1
    return emulator._store(new)


def _default(kind: str, new: dict[str, Any], existing: dict[str, Any] | None) -> None:
    """The few defaults the API fills that modelport reads back."""
    spec = new.get("spec") or {}
    old_spec = (existing or {}).get("spec") or {}
    if kind in _GENERATION_KINDS and existing is None:
        new["metadata"]["generation"] = 1
    if kind == "Deployment":
        spec.setdefault("replicas", old_spec.get("replicas", 1))  # kept when another manager owns it
        template_labels = spec.get("template", {}).get("metadata", {}).get("labels") or {}
        wanted = (spec.get("selector") or {}).get("matchLabels") or {}
        if not wanted or any(template_labels.get(k) != v for k, v in wanted.items()):
            raise ApiError(422, f'Deployment.apps "{new["metadata"]["name"]}" is invalid: spec.template.metadata.'
                                "labels: Invalid value: `selector` does not match template `labels`")
        if existing is None:
            new["status"] = {}
    elif kind == "Service":
        spec.setdefault("type", "ClusterIP")
        number = int(hashlib.sha256(f"{new['metadata']['namespace']}/{new['metadata']['name']}".encode()).hexdigest(),
                     16)
        spec.setdefault("clusterIP", old_spec.get("clusterIP") or f"10.0.{number % 250}.{number // 250 % 250 + 2}")
        old_ports = {p.get("port"): p for p in old_spec.get("ports", [])}
        for index, port in enumerate(spec.get("ports", [])):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
            if spec["type"] in ("NodePort", "LoadBalancer"):
                port.setdefault("nodePort", old_ports.get(port.get("port"), {}).get("nodePort")
                                or 30000 + (number + index) % 2768)
    elif kind == "Secret":
        new.setdefault("type", "Opaque")
        for key, value in (new.pop("stringData", None) or {}).items():
            new.setdefault("data", {})[key] = base64.b64encode(str(value).encode()).decode()


def _existing(emulator: ApiEmulator, route: Route) -> dict[str, Any]:
    found = emulator._objects.get((route.kind, route.namespace, route.name))
    if found is None:
        raise ApiError(404, f'{route.resource} "{route.name}" not found')
    return found


def _check_version(route: Route, existing: dict[str, Any], patch: dict[str, Any]) -> None:
    given = (patch.get("metadata") or {}).get("resourceVersion")
    if given and given != existing["metadata"]["resourceVersion"]:
        raise ApiError(409, f'Operation cannot be fulfilled on {route.resource} "{route.name}": the object has been '
                            "modified; please apply your changes to the latest version and try again")


def _merged(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (what ``application/merge-patch+json`` means)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merged(result.get(key), value)
    return result
