"""The control plane's side of a cluster's front end: ``KubernetesFrontEnd``, the reconciler's ``FrontEndPort``.

The control plane never talks to the cluster's Envoy. It keeps the front end's objects applied
(``frontend_manifests``), publishes what to route as the routes ConfigMap and auth Secret
(``frontend.routing_state``), and waits until the in-cluster controller (``frontend.controller``)
reports in the applied ConfigMap that Envoy took that revision, with the weights it was given. So the
cluster keeps serving and autoscaling while the control plane is offline. ``url()`` and ``health()``
read the front end's Service and Deployment for a service's scoring URI and status; ``route_problems()``
the controller's check of each route through Envoy (``frontend.route_health``, issue 10 failure mode 9).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ...frontend.changes import routing
from ...frontend.envoy import FrontEndError
from ...frontend.routes import ServiceRoute
from ...frontend.routing_state import (
    auth_secret,
    read_applied,
    revision_of,
    routes_configmap,
    weights,
)
from ...reconcile.autoscale import AutoscaleSettings
from ...spec.compute import KubernetesTarget
from .cluster import Cluster
from .frontend_manifests import BOOTSTRAP_HASH, TLS_SECRET, FrontEndSpec, front_end_objects
from .objects import APPLIED_CONFIGMAP, FRONT_END_NAME, ROUTES_CONFIGMAP, replica_set_name, target_labels
from .status import deployment_progress, rollout_stuck

APPLY_TIMEOUT_S = 60.0  # the controller passes every second; a new front end pod may still be starting
POLL_S = 0.25
DEFAULT_PORTS = {"http": 80, "https": 443}

AutoscaleOf = Callable[[str, str], AutoscaleSettings | None]  # (service, version) -> settings, None when fixed


class KubernetesFrontEnd:
    """An attachment's front end. ``cluster``: connected in the target's namespace; ``workspace``: its name (for
    labels); ``target``: the attachment; ``image``: the modelport image the front end pod runs;
    ``signer_jwks()``: the workspace token signer's public key set (asked only when a service uses token auth);
    ``autoscale(service, version)``: a version's ``AutoscaleSettings`` when it autoscales, None for a fixed
    replica count (default: none autoscales); ``apply_timeout_s``: seconds ``apply`` waits for the controller."""

    def __init__(self, cluster: Cluster, workspace: str, target: KubernetesTarget, image: str,
                 signer_jwks: Callable[[], dict[str, Any]], autoscale: AutoscaleOf | None = None,
                 apply_timeout_s: float = APPLY_TIMEOUT_S):
        self.cluster = cluster
        self.workspace = workspace
        self.target = target
        self.image = image
        self.signer_jwks = signer_jwks
        self.autoscale = autoscale or (lambda service, version: None)
        self.apply_timeout_s = apply_timeout_s
        self._revision: int | None = None  # the last revision written (None: read it from the cluster)
        self._routed: tuple[Any, ...] | None = None  # what the last revision the controller applied said
        self._endpoints: dict[str, list[str]] = {}  # service -> the ready "ip:port"s of the last routes given

    @property
    def spec(self) -> FrontEndSpec:
        return FrontEndSpec(self.workspace, self.target, self.image, TLS_SECRET if self.target.has_tls else None)

    def ensure_running(self) -> bool:
        """Apply the front end's objects when its Deployment is missing (True: created now) or runs another image
        or bootstrap (a rolling update, False). The routes ConfigMap is applied only when missing: it holds what
        the control plane last published. Raises the ``Cluster`` errors."""
        wanted = front_end_objects(self.spec)
        deployment = next(o for o in wanted if o["kind"] == "Deployment")
        current = self.cluster.get("Deployment", FRONT_END_NAME)
        if current is not None and _template_of(current) == _template_of(deployment):
            return False
        routes_exist = self.cluster.get("ConfigMap", ROUTES_CONFIGMAP) is not None
        for obj in wanted:
            if not (obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == ROUTES_CONFIGMAP and routes_exist):
                self.cluster.apply(obj)
        if not routes_exist:
            self._routed = None  # the routes ConfigMap was created empty: publish again
        return current is None

    def apply(self, routes: list[ServiceRoute]) -> None:
        """Publish ``routes`` as the next revision (auth Secret first, then the routes ConfigMap) and return once
        the controller reports Envoy took it (at most ``apply_timeout_s`` seconds). Raises FrontEndError when the
        controller refused it, did not report it in time, or applied other weights than published (naming both),
        and the ``Cluster`` errors. Routes that differ from the last applied ones only in their replicas' addresses
        are not published again: the controller takes addresses from EndpointSlices, not from the control plane."""
        deployments = {(s.name, v.name): replica_set_name(s.name, v.replica_set or v.name)
                       for s in routes for v in s.versions}
        autoscale = {(s.name, v.name): self.autoscale(s.name, v.name) for s in routes for v in s.versions}
        jwks = self.signer_jwks() if any(s.auth == "token" for s in routes) else None
        routed = ([routing(s) for s in routes], deployments, autoscale, jwks)
        self._endpoints = {s.name: _ready_endpoints(s) for s in routes}
        if routed == self._routed:
            return
        revision = self._next_revision()
        labels = target_labels(self.workspace, self.target.name)
        namespace = self.target.namespace
        self._routed = None  # until the controller reports this revision
        self.cluster.apply(auth_secret(revision, routes, jwks, namespace, labels))
        self.cluster.apply(routes_configmap(revision, routes, deployments, autoscale, namespace, labels))
        self._revision = revision
        applied = self._wait_applied(revision)
        expected = weights(routes)
        if applied["services"] != expected:
            raise FrontEndError(f"the front end in namespace {namespace} applied other traffic weights than published "
                                f"for revision {revision}: expected {_shares(expected)}, applied "
                                f"{_shares(applied['services'])}; check that the front end runs this modelport's "
                                "image (modelport computetarget show), then redeploy")
        self._routed = routed

    def url(self) -> str | None:
        """The scoring base URL (``http[s]://host[:port]``; a service scores at ``<url>/api/v1/service/<name>/score``)
        from the front end's Service: a LoadBalancer's ingress IP or host name, a node's address and the NodePort,
        or the ClusterIP (reachable inside the cluster only). With TLS the HTTPS port and ``ssl_cname`` as host.
        None while the Service is missing or its load balancer has no address yet."""
        service = self.cluster.get("Service", FRONT_END_NAME)
        if service is None:
            return None
        spec = service.get("spec") or {}
        scheme = "https" if self.target.has_tls else "http"
        ports = spec.get("ports") or []
        port = next((p for p in ports if p.get("name") == scheme), ports[0] if ports else None)
        if port is None:
            return None
        kind = spec.get("type", "ClusterIP")
        if kind == "LoadBalancer":
            ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            host = (ingress[0].get("ip") or ingress[0].get("hostname")) if ingress else None
            number = port.get("port")
        elif kind == "NodePort":
            host, number = self._node_address(), port.get("nodePort")
        else:
            host, number = spec.get("clusterIP"), port.get("port")
        if not host or not number:
            return None
        if self.target.has_tls and self.target.ssl_cname:
            host = self.target.ssl_cname
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}" + ("" if number == DEFAULT_PORTS[scheme] else f":{number}")

    def health(self) -> str:
        """The front end's state for status: ``Healthy``, or a State name and why (``Transitioning: ...``,
        ``Unhealthy: ...``) from its Deployment's readiness. Raises the ``Cluster`` errors."""
        deployment = self.cluster.get("Deployment", FRONT_END_NAME)
        namespace = self.target.namespace
        if deployment is None:
            return (f"Unhealthy: the front end's Deployment {FRONT_END_NAME} does not exist in namespace {namespace}; "
                    "deploy a service to create it")
        stuck = rollout_stuck(deployment)
        if stuck:
            return f"Unhealthy: {stuck}"
        wanted, _, ready = deployment_progress(deployment)
        if wanted and ready >= wanted:
            return "Healthy"
        return (f"Transitioning: {ready} of {wanted} front-end pod(s) ready; see `kubectl -n {namespace} describe "
                f"deployment {FRONT_END_NAME}` if this lasts")

    def route_problems(self) -> dict[str, str]:
        """Service name -> one line naming the layer that fails (``replicas``, ``service``, ``route``, ``tls``) and
        why, for each service whose route the controller last found failing (the applied ConfigMap's
        ``route_health``); empty when every route answered, or before a controller reported any. Raises the
        ``Cluster`` errors."""
        health = read_applied(self.cluster.get("ConfigMap", APPLIED_CONFIGMAP)).get("route_health") or {}
        return {service: f"{entry['layer']} layer: {entry.get('reason', 'no reason given')}"
                for service, entry in sorted(health.items())
                if isinstance(entry, dict) and entry.get("layer") is not None and not self._stale(service, entry)}

    def _stale(self, service: str, entry: dict[str, Any]) -> bool:
        """A check made with other ready replicas than the routes last given here (the replicas changed since:
        the controller checks again within a pass) says nothing about the route now."""
        now = self._endpoints.get(service)
        return now is not None and sorted(entry.get("endpoints") or []) != now

    def _next_revision(self) -> int:
        """One more than the last revision published (read back from the cluster once, so a restarted control
        plane goes on counting)."""
        if self._revision is None:
            published = revision_of(self.cluster.get("ConfigMap", ROUTES_CONFIGMAP))
            self._revision = max(published, read_applied(self.cluster.get("ConfigMap", APPLIED_CONFIGMAP))["revision"])
        return self._revision + 1

    def _wait_applied(self, revision: int) -> dict[str, Any]:
        """The applied ConfigMap's ``applied.json`` once it reports ``revision``; FrontEndError when the controller
        refused it or did not report it within ``apply_timeout_s``."""
        deadline = time.monotonic() + self.apply_timeout_s
        namespace = self.target.namespace
        while True:
            applied = read_applied(self.cluster.get("ConfigMap", APPLIED_CONFIGMAP))
            failed = applied.get("failed") or {}
            if applied["revision"] == revision:
                return applied
            if failed.get("revision") == revision:
                raise FrontEndError(f"the front end in namespace {namespace} refused routing revision {revision}: "
                                    f"{failed.get('reason')}")
            if applied["revision"] > revision:
                raise FrontEndError(f"the front end in namespace {namespace} applied routing revision "
                                    f"{applied['revision']}, newer than {revision}: another control plane publishes "
                                    "routes to this compute target; detach it there")
            if time.monotonic() > deadline:
                raise FrontEndError(
                    f"the front end in namespace {namespace} did not apply routing revision {revision} within "
                    f"{self.apply_timeout_s:.0f} s (it serves revision {applied['revision']}; {self.health()}); see "
                    f"`kubectl -n {namespace} logs deployment/{FRONT_END_NAME} -c controller`")
            time.sleep(POLL_S)

    def _node_address(self) -> str | None:
        """A Ready node's ExternalIP, else its InternalIP (where a NodePort answers)."""
        for kind in ("ExternalIP", "InternalIP"):
            for node in self.cluster.list_nodes():
                ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                            for c in (node.get("status") or {}).get("conditions") or [])
                address = next((a["address"] for a in (node.get("status") or {}).get("addresses") or []
                                if a.get("type") == kind), None)
                if ready and address:
                    return address
        return None


def _template_of(deployment: dict[str, Any]) -> tuple[Any, ...]:
    """What decides whether the front end's pod is current: its containers' images and its bootstrap's hash."""
    template = (deployment.get("spec") or {}).get("template") or {}
    containers = (template.get("spec") or {}).get("containers") or []
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    return tuple(sorted((c.get("name"), c.get("image")) for c in containers)), annotations.get(BOOTSTRAP_HASH)


def _shares(applied: dict[str, dict[str, float]]) -> str:
    """``svc: v1 90%, v2 10%; ...``."""
    return "; ".join(f"{service}: {', '.join(f'{v} {w:g}%' for v, w in versions.items())}"
                     for service, versions in sorted(applied.items())) or "no service"


def _ready_endpoints(service: ServiceRoute) -> list[str]:
    """The ready replicas of the versions taking traffic, as the controller records the ones it checked."""
    return sorted(f"{host}:{port}" for version in service.versions if version.weight > 0
                  for host, port in version.endpoints)
