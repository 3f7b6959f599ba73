"""The routing state of a cluster's front end, as the Kubernetes objects that carry it, in one place.

The control plane (``backends.kubernetes.frontend.KubernetesFrontEnd``) writes what to route; the
in-cluster controller (``frontend.controller``) reads it, gives Envoy the routes with each replica
set's ready endpoints filled in, and writes back what Envoy took:

* ConfigMap ``ROUTES_CONFIGMAP``, ``routes.json``: ``{"revision": n, "services": [{"name", "auth",
  "scoring_timeout_ms", "cors_origins", "versions": [{"name", "weight", "mirror_percent", "replica_set",
  "deployment", "autoscale": {AutoscaleSettings fields} | null}]}]}`` (``ServiceRoute`` without keys or
  endpoints; ``deployment`` names the Deployment and Service of the routed replica set);
* Secret ``AUTH_SECRET``, ``keys.json``: ``{"revision": n, "services": {name: [keys]}}`` and ``jwks.json``:
  the token public key set (or null); the controller uses a revision only once both objects carry it;
* ConfigMap ``APPLIED_CONFIGMAP``, ``applied.json``: ``{"revision": n, "services": {name: {version: weight}},
  "at": ISO time, "failed": {"revision": m, "reason": "..."} | null, "route_health": {name: {"layer":
  "replicas" | "service" | "route" | "tls" | null, "reason": "..."}}}``, written after Envoy took revision n
  (``failed``: a later revision Envoy or the route checks refused, and why; ``route_health``: each served
  service's route as ``frontend.route_health`` last checked it, layer null when a request through it succeeded;
  absent when written by a controller from before issue 10).
"""

from __future__ import annotations

import base64
import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from ..backends.kubernetes.objects import (
    APPLIED_CONFIGMAP,
    AUTH_SECRET,
    COMPONENT,
    FRONT_END,
    ROUTES_CONFIGMAP,
)
from ..errors import ModelportError
from ..reconcile.autoscale import AutoscaleSettings
from .routes import ServiceRoute, VersionRoute

ROUTES_FILE = "routes.json"
KEYS_FILE = "keys.json"
JWKS_FILE = "jwks.json"
APPLIED_FILE = "applied.json"

Weights = dict[str, dict[str, float]]  # service -> version -> traffic percent


class RoutingStateError(ModelportError):
    """A routing ConfigMap or Secret that does not hold what this module writes (edited by hand, or
    written by another modelport release)."""

    status = 500
    code = "RoutingStateError"


@dataclass(frozen=True)
class RoutedVersion:
    """A routed version as the controller scales it: the Deployment running its routed replica set and
    its autoscale settings (None: a fixed replica count, left alone)."""

    service: str
    version: str
    deployment: str
    autoscale: AutoscaleSettings | None


@dataclass(frozen=True)
class RoutingState:
    """One revision of what to route: ``services`` with their keys but no endpoints, and the token key set."""

    revision: int
    services: list[ServiceRoute]
    deployments: dict[tuple[str, str], str]  # (service, version) -> the Deployment/Service of its replica set
    autoscale: dict[tuple[str, str], AutoscaleSettings | None]
    jwks: dict[str, Any] | None = None

    def routes(self, ready: dict[str, list[tuple[str, int]]]) -> list[ServiceRoute]:
        """The services with each version's endpoints: ``ready`` maps a Service name to its ready (IP, port)s."""
        return [dataclasses.replace(service, versions=[
            dataclasses.replace(v, endpoints=sorted(ready.get(self.deployments[(service.name, v.name)], [])))
            for v in service.versions]) for service in self.services]

    def versions(self) -> list[RoutedVersion]:
        """Every routed version with its Deployment and autoscale settings."""
        return [RoutedVersion(service.name, v.name, self.deployments[(service.name, v.name)],
                              self.autoscale[(service.name, v.name)])
                for service in self.services for v in service.versions]


def weights(services: list[ServiceRoute]) -> Weights:
    """Each service's versions' traffic percentages (what the applied ConfigMap reports)."""
    return {s.name: {v.name: v.weight for v in s.versions} for s in services}


# --- written by the control plane --------------------------------------------------------------

def routes_configmap(revision: int, services: list[ServiceRoute], deployments: dict[tuple[str, str], str],
                     autoscale: dict[tuple[str, str], AutoscaleSettings | None], namespace: str,
                     labels: dict[str, str]) -> dict[str, Any]:
    """The routes ConfigMap of ``revision``: ``deployments`` and ``autoscale`` are keyed by (service, version)
    for every version of ``services``; ``labels`` are the attachment's (``objects.target_labels``)."""
    document = {"revision": revision, "services": [{
        "name": s.name, "auth": s.auth, "scoring_timeout_ms": s.scoring_timeout_ms,
        "cors_origins": list(s.cors_origins),
        "versions": [{"name": v.name, "weight": v.weight, "mirror_percent": v.mirror_percent,
                      "replica_set": v.replica_set, "deployment": deployments[(s.name, v.name)],
                      "autoscale": _settings_dict(autoscale.get((s.name, v.name)))} for v in s.versions],
    } for s in services]}
    return _object("ConfigMap", ROUTES_CONFIGMAP, namespace, labels, {ROUTES_FILE: json.dumps(document)})


def auth_secret(revision: int, services: list[ServiceRoute], jwks: dict[str, Any] | None, namespace: str,
                labels: dict[str, str]) -> dict[str, Any]:
    """The auth Secret of ``revision``: each key-auth service's keys and the token public key set."""
    keys = {"revision": revision, "services": {s.name: list(s.keys) for s in services if s.keys}}
    secret = _object("Secret", AUTH_SECRET, namespace, labels, {
        name: base64.b64encode(json.dumps(content).encode()).decode()
        for name, content in ((KEYS_FILE, keys), (JWKS_FILE, jwks))})
    secret["type"] = "Opaque"
    return secret


def read_applied(configmap: dict[str, Any] | None) -> dict[str, Any]:
    """``applied.json`` of the applied ConfigMap (``{"revision": 0, "services": {}, ...}`` when none yet;
    ``route_health`` is ``{}`` when the controller wrote none)."""
    empty = {"revision": 0, "services": {}, "at": None, "failed": None, "route_health": {}}
    if configmap is None:
        return empty
    return {**empty, **_json(configmap, APPLIED_FILE)}


def revision_of(configmap: dict[str, Any] | None) -> int:
    """The revision a routes ConfigMap holds (0 when there is none)."""
    return int(_json(configmap, ROUTES_FILE)["revision"]) if configmap is not None else 0


# --- read by the controller ----------------------------------------------------------------------

def read_state(configmap: dict[str, Any], secret: dict[str, Any] | None) -> RoutingState | None:
    """The routing state in the routes ConfigMap and the auth Secret; None while the Secret does not carry
    the ConfigMap's revision yet (the control plane writes the Secret first, so this passes). Raises
    RoutingStateError when either holds something else than ``routes_configmap``/``auth_secret`` write."""
    document = _json(configmap, ROUTES_FILE)
    revision = int(document["revision"])
    keys, jwks = _read_secret(secret)
    if keys.get("revision") != revision:
        return None
    services, deployments, autoscale = [], {}, {}
    try:
        for s in document["services"]:
            versions = []
            for v in s["versions"]:
                versions.append(VersionRoute(v["name"], v["weight"], [], v["mirror_percent"], v["replica_set"]))
                deployments[(s["name"], v["name"])] = v["deployment"]
                autoscale[(s["name"], v["name"])] = AutoscaleSettings(**v["autoscale"]) if v["autoscale"] else None
            services.append(ServiceRoute(s["name"], versions, auth=s["auth"], keys=list(keys["services"].get(
                s["name"], [])), scoring_timeout_ms=s["scoring_timeout_ms"], cors_origins=tuple(s["cors_origins"])))
    except (KeyError, TypeError, ValueError) as err:
        raise RoutingStateError(f"ConfigMap {ROUTES_CONFIGMAP} revision {revision} is not in modelport's format "
                                f"({err!r}): let the control plane write it again (redeploy a service)") from None
    return RoutingState(revision, services, deployments, autoscale, jwks)


def applied_configmap(revision: int, applied: Weights, at: str, failed: dict[str, Any] | None, namespace: str,
                      labels: dict[str, str], route_health: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The applied ConfigMap: Envoy serves ``revision`` with ``applied`` weights since ``at`` (ISO 8601);
    ``failed``: ``{"revision", "reason"}`` of a later revision that could not be applied, or None;
    ``route_health``: service -> ``{"layer", "reason"}`` (``route_health.RouteHealth.as_dict``)."""
    document = {"revision": revision, "services": applied, "at": at, "failed": failed,
                "route_health": route_health or {}}
    return _object("ConfigMap", APPLIED_CONFIGMAP, namespace, labels, {APPLIED_FILE: json.dumps(document)})


def front_end_labels(labels: dict[str, str]) -> dict[str, str]:
    """``labels`` (an attachment's) with the front end's component label."""
    return {**labels, COMPONENT: FRONT_END}


def _read_secret(secret: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    if secret is None:
        return {}, None
    data = secret.get("data") or {}
    try:
        keys = json.loads(base64.b64decode(data.get(KEYS_FILE, "")) or b"{}")
        jwks = json.loads(base64.b64decode(data.get(JWKS_FILE, "")) or b"null")
    except ValueError as err:
        raise RoutingStateError(f"Secret {AUTH_SECRET} does not hold modelport's keys ({err}): let the control "
                                "plane write it again (redeploy a service)") from None
    return keys, jwks


def _json(configmap: dict[str, Any], file: str) -> dict[str, Any]:
    name = configmap.get("metadata", {}).get("name")
    try:
        document = json.loads((configmap.get("data") or {})[file])
        if not isinstance(document, dict) or not isinstance(document.get("revision"), int):
            raise ValueError("no integer revision")
    except (KeyError, ValueError) as err:
        raise RoutingStateError(f"ConfigMap {name} has no valid {file} ({err!r}): let the control plane and the "
                                "front end's controller write it again (redeploy a service)") from None
    return document


def _settings_dict(settings: AutoscaleSettings | None) -> dict[str, Any] | None:
    return dataclasses.asdict(settings) if settings is not None else None


def _object(kind: str, name: str, namespace: str, labels: dict[str, str], data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind,
            "metadata": {"name": name, "namespace": namespace, "labels": front_end_labels(labels)},
            "data": data}
