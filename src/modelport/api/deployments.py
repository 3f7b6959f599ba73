"""The running part of the control plane for services: local backend, reconciler thread, front end.

Replicas and the front end run in their own sessions: they outlive a control plane restart,
and the next control plane re-adopts them (state files), so no service is lost.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import defaultdict
from contextlib import contextmanager

from .. import backends
from ..errors import ClusterError, Conflict, ModelportError
from ..frontend.envoy import FrontEnd
from ..frontend.routes import ClientLimits, ServiceRoute
from ..operations.compute import ComputeOperations
from ..reconcile.autoscaling import ReplicaAutoscaler
from ..reconcile.backend import Backend
from ..reconcile.reconciler import Reconciler
from ..spec import LOCAL_TARGET
from ..store.artifacts import LocalArtifactStore
from ..store.db import Store
from .cluster_targets import ClusterTargets
from .workspace_dir import WorkspaceDir

logger = logging.getLogger("modelport.deployments")
TOKEN_TTL_S = 3600


def _front_end_port() -> int | None:
    """``MODELPORT_FRONTEND_PORT`` pins the front end's port (default: a free one, kept across restarts)."""
    value = os.environ.get("MODELPORT_FRONTEND_PORT")
    return int(value) if value else None


def _client_limits() -> ClientLimits:
    """``MODELPORT_FRONTEND_HEADERS_TIMEOUT_S`` / ``_BODY_TIMEOUT_S`` / ``_MAX_BODY_BYTES`` override the defaults."""
    defaults = ClientLimits()
    env = os.environ.get
    return ClientLimits(
        headers_timeout_s=float(env("MODELPORT_FRONTEND_HEADERS_TIMEOUT_S", defaults.headers_timeout_s)),
        body_timeout_s=float(env("MODELPORT_FRONTEND_BODY_TIMEOUT_S", defaults.body_timeout_s)),
        max_body_bytes=int(env("MODELPORT_FRONTEND_MAX_BODY_BYTES", defaults.max_body_bytes)))


class Deployments:
    """Owns the reconciler loops and the per-service operation locks of one workspace: the local target's
    (this machine: local backend, local Envoy, this object as its front end port) and, through ``clusters``, one
    per attached Kubernetes target (``compute``: the workspace's compute target operations)."""

    def __init__(self, workspace: WorkspaceDir, store: Store, artifacts: LocalArtifactStore,
                 compute: ComputeOperations):
        self.workspace = workspace
        self.store = store
        self.backend = backends.for_target(backends.LOCAL, workspace.root, artifacts, workspace.envs, workspace.logs)
        self.frontend = FrontEnd(workspace.root / "frontend", port=_front_end_port(), limits=_client_limits())
        self.autoscaler = ReplicaAutoscaler(self.frontend.load)
        self.clusters = ClusterTargets(store, workspace, artifacts, compute, self.frontend.signer.jwks)
        compute.on_attached, compute.on_detaching = self.clusters.start, self.clusters.stop
        self.reconciler = Reconciler(store, self.backend, front_end=self, replica_count=self.autoscaler.replicas,
                                     adopts=self._unattached)
        self._services: list[ServiceRoute] = []  # what the front end serves (apply() returned)
        self._locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._frontend_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.store.list_services():
            self.frontend.start()  # re-adopts the Envoy of an earlier control plane when it still runs
        elif self.frontend.stop_left_running():
            logger.info("stopped the front end an earlier control plane left running with no service")
        self.clusters.start_all()  # first: the local reconciler must not take their services for unattached ones
        self._thread = threading.Thread(target=self.reconciler.run_forever, name="reconciler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop reconciling. Services keep serving (replicas and Envoy outlive the control plane);
        with no service left, the front end is stopped too."""
        self.reconciler.stop()
        self.clusters.stop_all()
        if self._thread is not None:
            self._thread.join(10)
        if not self.store.list_services():
            with self._frontend_lock:
                self.frontend.stop()

    @contextmanager
    def operation(self, service: str):
        """Hold the service for one operation; a second one at the same time is a 409."""
        lock = self._locks[service]
        if not lock.acquire(blocking=False):
            raise Conflict(f"another operation on service '{service}' is in progress; wait for it and retry")
        before = self.reconciler_for(service)  # a delete's target is known only before it
        try:
            yield
        finally:
            lock.release()
        after = self.reconciler_for(service)  # a deploy's only after it
        for reconciler in {id(before): before, id(after): after}.values():
            reconciler.wake(service)

    def ensure_running(self) -> bool:
        """Start the front end again (same port, same routes) when its process is gone; True if restarted."""
        with self._frontend_lock:
            if not self.frontend.pid or self.frontend.running():
                return False
            logger.warning("the front end (envoy pid %d) is gone; starting it again on port %d",
                           self.frontend.pid, self.frontend.port)
            self.frontend.pid = 0
            self.frontend.start(self._services)
            return True

    def apply(self, routes: list[ServiceRoute]) -> None:
        """Called by the reconciler when what to route changed: reconfigure Envoy (starting it if needed)."""
        with self._frontend_lock:
            if not routes and not self.frontend.pid:
                return
            if not self.frontend.pid:
                self.frontend.start(routes)
            self.frontend.apply(routes)
            self._services = routes

    def route_problems(self) -> dict[str, str]:
        """The local front end routes on this machine; a route that fails shows as its replicas' states."""
        return {}

    def wait_routed(self, service: str, revision: int) -> None:
        """Return once the front end serves ``revision`` of ``service`` (an operation's change holds when it
        returns: a new key works and the old one is refused; new traffic shares apply). Raises ModelportError
        when that takes longer than the reconciler's ``WAIT_ROUTED_S``."""
        self.reconciler_for(service).wait_routed(service, revision)

    def _unattached(self, target: str) -> bool:
        """A compute target that is not attached (detached since the service was deployed); an attached one whose
        reconciler could not start keeps its services' last states (the control plane's log says why)."""
        return (target != LOCAL_TARGET and target not in self.clusters.names()
                and target not in {record.name for record in self.store.list_compute_targets()})

    def reconciler_for(self, service: str) -> Reconciler:
        """The reconciler of the compute target ``service`` runs on (the local one for a service not stored yet, or
        on a target that is not attached: it marks those Failed)."""
        running = self.clusters.get(self._target_of(service))
        return running.reconciler if running else self.reconciler

    def backend_for(self, service: str) -> Backend:
        """The backend that runs ``service``'s replicas (for its logs)."""
        running = self.clusters.get(self._target_of(service))
        return running.backend if running else self.backend

    def remove(self, service: str, compute_target: str = LOCAL_TARGET) -> None:
        """Stop a deleted service's replicas now, not at the next reconcile pass, and delete its files."""
        running = self.clusters.get(compute_target)
        try:
            (running.backend if running else self.backend).remove(service)
        except ClusterError as err:  # its objects stay labelled: the target's next pass that reaches it removes them
            logger.warning("the objects of deleted service %s stay on %s until it can be reached: %s", service,
                           compute_target, err)
        self.autoscaler.forget(service)

    def scoring_base(self, service: str) -> str | None:
        """``<front end>/api/v1/service/<name>``: stable for the life of the service (routed or not); None while
        its front end has no address."""
        target = self._target_of(service)
        if target != LOCAL_TARGET:
            running = self.clusters.get(target)
            try:
                url = running.front_end.url() if running else None
            except ModelportError:  # the cluster cannot be reached now: the service's state says so
                url = None
            return f"{url}/api/v1/service/{service}" if url else None
        return f"{self.frontend.url}/api/v1/service/{service}" if self.frontend.pid else None

    def _target_of(self, service: str) -> str:
        try:
            return self.store.get_service(service).endpoint.compute_target
        except ModelportError:
            return LOCAL_TARGET

    def token(self, service: str) -> tuple[str, int]:
        """A JWT for a token-auth service and the epoch second to refresh it by."""
        return self.frontend.signer.issue(service, TOKEN_TTL_S)
