"""The in-cluster front-end controller: routing state and EndpointSlices in, Envoy's files and scale requests out.

It runs in the front end's pod next to Envoy (``frontend.pod_envoy``) as
``python -m modelport.frontend.controller``, and keeps the cluster serving and autoscaling while the
control plane is offline. Each pass (every ``--interval`` seconds):

1. reads the routes ConfigMap and auth Secret the control plane writes (``frontend.routing_state``);
2. lists the compute target's EndpointSlices (the EndpointSlice controller copies each scoring Service's
   labels onto them and names the Service in ``kubernetes.io/service-name``) and fills each version's
   endpoints with its replica set's ready addresses;
3. has Envoy take the routes (``PodEnvoy.apply``: validated, written atomically, live when it returns), checks
   each service's route through Envoy's own listener (``frontend.route_health``: which layer fails, if any) and
   writes the applied ConfigMap, which the control plane's ``KubernetesFrontEnd.apply`` waits for and
   ``route_problems`` reads; a revision Envoy refuses is reported there and the last good one keeps being served;
4. autoscales each autoscaled version as azureml-fe does: its load in Envoy (requests in flight and queued,
   ``FrontEnd.load``), the ``reconcile.autoscale.Autoscaler`` decision on the Deployment's desired replicas,
   and a request to the Deployment's scale subresource.

It logs one line per change (a revision applied or refused, ready endpoints, a route's health, a scale) and never
a key.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from ..backends.kubernetes.cluster import Cluster
from ..backends.kubernetes.objects import (
    AUTH_SECRET,
    COMPUTE_TARGET,
    FRONT_END_PORT,
    FRONT_END_TLS_PORT,
    MANAGED_BY,
    MANAGER,
    ROUTES_CONFIGMAP,
    label_value,
)
from ..errors import InvalidInput, ModelportError
from ..reconcile.autoscale import Autoscaler
from ..reconcile.autoscaling import SCALE_DOWN_DELAY_S
from .envoy import FrontEndError
from .pod_envoy import ALL_ADDRESSES, PodEnvoy
from .route_health import RouteChecker, RouteHealth
from .routing_state import (
    RoutingState,
    RoutingStateError,
    Weights,
    applied_configmap,
    read_state,
    revision_of,
    weights,
)

logger = logging.getLogger("modelport.frontend.controller")
SERVICE_NAME_LABEL = "kubernetes.io/service-name"  # set on every EndpointSlice by the EndpointSlice controller
IP_ADDRESS_TYPES = ("IPv4", "IPv6")
PASS_INTERVAL_S = 1.0

Ready = dict[str, list[tuple[str, int]]]  # Service name -> ready (IP, port)s


class Controller:
    """One front end's controller. ``cluster``: a ``Cluster`` in the front end's namespace; ``compute_target``:
    the attachment's name (its EndpointSlices carry it as a label); ``envoy``: the pod's Envoy;
    ``scale_down_delay_s``: seconds every decision must stay below the current count before scaling down
    (azureml-fe: about a minute); ``checker``: checks the routes through ``envoy``'s listeners (default: its HTTP
    listener, and its HTTPS one when it serves TLS). ``run_once()`` is one pass; ``run_forever(stop)`` passes
    until ``stop`` is set."""

    def __init__(self, cluster: Cluster, compute_target: str, envoy: PodEnvoy,
                 scale_down_delay_s: float = SCALE_DOWN_DELAY_S, checker: RouteChecker | None = None):
        self.cluster = cluster
        self.compute_target = compute_target
        self.envoy = envoy
        self.scale_down_delay_s = scale_down_delay_s
        self.checker = checker or RouteChecker(_local(envoy.listen_address), envoy.port,
                                               envoy.tls_port if envoy.tls_dir is not None else None)
        self._health: dict[str, RouteHealth] = {}  # service -> its route's health, as last checked
        self._deployments: dict[str, dict[str, Any]] | None = None  # this pass's Deployments, once listed
        self._attached = False
        self._served: RoutingState | None = None  # the last revision Envoy took
        self._refused: tuple[int, str] | None = None  # the revision Envoy or the checks refused, and why
        self._reported: tuple[Any, ...] | None = None  # what the applied ConfigMap holds, as this process wrote it
        self._ready: Ready = {}
        self._scalers: dict[str, Autoscaler] = {}  # Deployment name -> its autoscaler
        self._last_error = ""

    # --- the loop ----------------------------------------------------------------------------------

    def run_forever(self, stop: threading.Event, interval_s: float = PASS_INTERVAL_S) -> None:
        """Pass every ``interval_s`` seconds until ``stop`` is set; a failed pass is logged (once while it keeps
        failing the same way) and the next one tries again."""
        while not stop.is_set():
            try:
                self.run_once()
                self._last_error = ""
            except ModelportError as err:
                if str(err) != self._last_error:
                    logger.warning("pass failed, retrying every %.0f s: %s", interval_s, err)
                self._last_error = str(err)
            except Exception:  # the controller must outlive any one pass
                logger.exception("pass failed, retrying")
            stop.wait(interval_s)

    def run_once(self) -> None:
        """Route the newest routing state with the ready endpoints, report it, and autoscale. Raises
        ModelportError (ClusterUnreachable, ClusterForbidden..., FrontEndError) when the API or Envoy fails."""
        self._deployments = None
        self._route()
        self._autoscale()

    # --- routing -----------------------------------------------------------------------------------

    def _route(self) -> None:
        configmap = self.cluster.get("ConfigMap", ROUTES_CONFIGMAP)
        if configmap is None:
            return  # nothing published yet: Envoy keeps what it serves
        state = self._newest(configmap)
        if state is None or (self._refused and self._refused[0] == state.revision):
            state = self._served  # keep serving the last good revision, with fresh endpoints
        if state is None:
            self._report(configmap)
            return
        ready = self._ready_endpoints(state)
        if not self._attached:  # after the API answered: its errors come first, not a wait for Envoy
            self.envoy.attach()
            self._attached = True
        self.envoy.published.value = state.jwks
        try:
            self.envoy.apply(state.routes(ready))
        except (FrontEndError, InvalidInput) as err:
            if self._served is not None and state.revision == self._served.revision:
                raise  # the revision Envoy took no longer applies: Envoy is in trouble, retry
            self._refuse(state.revision, str(err))
        else:
            if state != self._served:
                logger.info("revision %d applied: %s", state.revision, _describe(weights(state.services)))
                self._refused = None
            self._served = state
        self._check_routes(ready)
        self._report(configmap)

    def _check_routes(self, ready: Ready) -> None:
        """Check the served services' routes (``frontend.route_health``); log each service whose health changed."""
        try:
            health = self.checker.check(self._served, ready, self._listed_deployments) if self._served else {}
        except ModelportError:
            raise  # the API failed listing Deployments: the pass fails and is retried
        except Exception:  # a check must never keep a revision from being reported
            logger.exception("route check failed; reporting the routes' last known health")
            return
        for service, now in sorted(health.items()):
            if self._health.get(service) != now:
                if now.layer is None:
                    logger.info("%s: route answers: %s", service, now.reason)
                else:
                    logger.warning("%s: route check failed at the %s layer: %s", service, now.layer, now.reason)
        self._health = health

    def _newest(self, configmap: dict[str, Any]) -> RoutingState | None:
        """The routing state of the routes ConfigMap; None while the auth Secret does not carry its revision
        (the control plane writes it first), or when it cannot be read (refused: reported)."""
        try:
            return read_state(configmap, self.cluster.get("Secret", AUTH_SECRET))
        except RoutingStateError as err:
            self._refuse(_revision_or_zero(configmap), str(err))
            return None

    def _refuse(self, revision: int, reason: str) -> None:
        """Remember a revision that cannot be applied (logged once)."""
        if self._refused != (revision, reason):
            logger.warning("revision %d refused, still serving revision %d: %s", revision,
                           self._served.revision if self._served else 0, reason)
        self._refused = (revision, reason)

    def _report(self, routes_configmap: dict[str, Any]) -> None:
        """Write the applied ConfigMap when what it says changed (labels: the routes ConfigMap's)."""
        if self._served is None and self._refused is None:
            return
        revision = self._served.revision if self._served else 0
        applied: Weights = weights(self._served.services) if self._served else {}
        failed = {"revision": self._refused[0], "reason": self._refused[1]} if self._refused else None
        health = {service: h.as_dict() for service, h in self._health.items()}
        content = (revision, applied, failed, health)
        if content == self._reported:
            return
        at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        labels = routes_configmap.get("metadata", {}).get("labels") or {}
        self.cluster.apply(applied_configmap(revision, applied, at, failed, self.cluster.namespace, labels, health))
        self._reported = content

    def _ready_endpoints(self, state: RoutingState) -> Ready:
        """The ready (IP, port)s of each Service of the compute target, from its EndpointSlices (a Service may
        have several); logs each routed Service whose ready endpoints changed."""
        slices = self.cluster.list("EndpointSlice", labels={
            MANAGED_BY: MANAGER, COMPUTE_TARGET: label_value(self.compute_target)})
        ready: dict[str, set[tuple[str, int]]] = defaultdict(set)
        for endpoint_slice in slices:
            service = (endpoint_slice.get("metadata", {}).get("labels") or {}).get(SERVICE_NAME_LABEL)
            ports = [p["port"] for p in endpoint_slice.get("ports") or [] if p.get("port")]
            if not service or not ports or endpoint_slice.get("addressType") not in IP_ADDRESS_TYPES:
                continue
            for endpoint in endpoint_slice.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready") is False:  # unset means ready (the API's rule)
                    continue
                ready[service].update((address, ports[0]) for address in endpoint.get("addresses") or [])
        result = {service: sorted(addresses) for service, addresses in ready.items()}
        for deployment in sorted({v.deployment for v in state.versions()}):
            now, before = result.get(deployment, []), self._ready.get(deployment, [])
            if now != before:
                logger.info("%s: %d ready endpoint(s), was %d", deployment, len(now), len(before))
        self._ready = result
        return result

    # --- autoscaling -------------------------------------------------------------------------------

    def _autoscale(self) -> None:
        """Each autoscaled version: its load now, the autoscaler's decision, and a scale request when it changes
        the Deployment's desired replicas."""
        versions = [v for v in self._served.versions() if v.autoscale is not None] if self._served else []
        for gone in set(self._scalers) - {v.deployment for v in versions}:
            del self._scalers[gone]
        if not versions:
            return
        desired = {name: int(d.get("spec", {}).get("replicas", 1)) for name, d in self._listed_deployments().items()}
        now = time.monotonic()
        for version in versions:
            current = desired.get(version.deployment)
            if current is None or version.autoscale is None:
                continue  # not created yet
            scaler = self._scalers.setdefault(version.deployment,
                                              Autoscaler(version.autoscale, self.scale_down_delay_s))
            scaler.settings = version.autoscale
            in_flight, queued = self.envoy.load(version.service, version.version)
            decision = scaler.observe(now, current, in_flight, queued)
            if decision is not None and decision != current:
                self.cluster.scale(version.deployment, decision)
                logger.info("%s/%s: scaled Deployment %s from %d to %d replicas (%d in flight, %d queued)",
                            version.service, version.version, version.deployment, current, decision, in_flight,
                            queued)

    def _listed_deployments(self) -> dict[str, dict[str, Any]]:
        """The compute target's Deployments by name, listed once per pass."""
        if self._deployments is None:
            self._deployments = {d["metadata"]["name"]: d for d in self.cluster.list(
                "Deployment", labels={MANAGED_BY: MANAGER, COMPUTE_TARGET: label_value(self.compute_target)})}
        return self._deployments


def _local(listen_address: str) -> str:
    """Where this pod reaches Envoy's listener on ``listen_address`` (all addresses: the loopback)."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(listen_address, listen_address)


def _revision_or_zero(configmap: dict[str, Any]) -> int:
    """The routes ConfigMap's revision, or 0 when it holds none that can be read."""
    try:
        return revision_of(configmap)
    except RoutingStateError:
        return 0


def _describe(applied: Weights) -> str:
    """``svc (v1 90%, v2 10%); ...`` (never keys)."""
    return "; ".join(f"{service} ({', '.join(f'{v} {w:g}%' for v, w in versions.items())})"
                     for service, versions in sorted(applied.items())) or "no service"


def connect(namespace: str, kubeconfig: Path | None, context: str | None) -> Cluster:
    """The API server: from a kubeconfig file (outside a cluster), else the pod's ServiceAccount."""
    if kubeconfig is not None:
        return Cluster.connect(kubeconfig.read_text(), context, namespace)
    return Cluster.in_cluster(namespace)


@click.command()
@click.option("--namespace", envvar="MODELPORT_NAMESPACE", required=True, help="The front end's namespace.")
@click.option("--compute-target", required=True, help="The compute target (attachment) name.")
@click.option("--xds-dir", type=click.Path(path_type=Path), required=True, help="Envoy's watched files.")
@click.option("--admin-socket", type=click.Path(path_type=Path), required=True, help="Envoy's admin unix socket.")
@click.option("--port", type=int, default=FRONT_END_PORT, show_default=True, help="Envoy's HTTP listener port.")
@click.option("--listen-address", default=ALL_ADDRESSES, show_default=True, help="Envoy's listener address.")
@click.option("--tls-dir", type=click.Path(path_type=Path, file_okay=False),
              help="A folder with tls.crt and tls.key: serve HTTPS on --tls-port too.")
@click.option("--tls-port", type=int, default=FRONT_END_TLS_PORT, show_default=True, help="Envoy's HTTPS port.")
@click.option("--kubeconfig", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="A kubeconfig file, to run outside a cluster (default: the pod's ServiceAccount).")
@click.option("--context", help="The kubeconfig context (default: its current context).")
@click.option("--interval", type=float, default=PASS_INTERVAL_S, show_default=True, help="Seconds between passes.")
@click.option("--scale-down-delay", type=float, default=SCALE_DOWN_DELAY_S, show_default=True,
              help="Seconds the load must stay low before scaling down.")
@click.option("--once", is_flag=True, help="One pass, then exit (1 if it failed).")
def main(namespace: str, compute_target: str, xds_dir: Path, admin_socket: Path, port: int, listen_address: str,
         tls_dir: Path | None, tls_port: int, kubeconfig: Path | None, context: str | None, interval: float,
         scale_down_delay: float, once: bool) -> None:
    """Keep the pod's Envoy routing the control plane's routing state, and autoscale the routed versions."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per admin request otherwise
    envoy = PodEnvoy(xds_dir, admin_socket, port, listen_address, tls_dir, tls_port)
    envoy.write_initial()  # first: Envoy starts once these exist, even while the API server cannot be reached
    try:
        controller = Controller(connect(namespace, kubeconfig, context), compute_target, envoy, scale_down_delay)
        if once:
            controller.run_once()
            return
    except ModelportError as err:
        raise click.ClickException(str(err)) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    logger.info("controller for compute target %s in namespace %s started", compute_target, namespace)
    controller.run_forever(stop, interval)


if __name__ == "__main__":
    main()
