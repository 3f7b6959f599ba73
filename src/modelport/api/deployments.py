"""The running part of the control plane for services: local backend, reconciler thread, front end.

Replicas and the front end run in their own sessions: they outlive a control plane restart,
and the next control plane re-adopts them (state files), so no service is lost.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict
from contextlib import contextmanager

from ..backends.local import LocalBackend
from ..errors import Conflict
from ..frontend.config import ClientLimits, ServiceRoute, VersionRoute
from ..frontend.envoy import FrontEnd, FrontEndError
from ..reconcile.autoscaling import ReplicaAutoscaler
from ..reconcile.reconciler import Reconciler
from ..store.artifacts import LocalArtifactStore
from ..store.db import Store
from .workspace_dir import WorkspaceDir

logger = logging.getLogger("modelport.deployments")
TOKEN_TTL_S = 3600
ROUTE_WAIT_S = 120.0  # how long a key change waits for the front end (a pass may be building an environment)


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
    """Owns the reconciler loop and the per-service operation locks of one workspace."""

    def __init__(self, workspace: WorkspaceDir, store: Store, artifacts: LocalArtifactStore):
        self.workspace = workspace
        self.store = store
        self.backend = LocalBackend(workspace.root / "replicas")
        self.frontend = FrontEnd(workspace.root / "frontend", port=_front_end_port(), limits=_client_limits())
        self.autoscaler = ReplicaAutoscaler(self.backend)
        self.reconciler = Reconciler(store, artifacts, self.backend, workspace.root / "services", workspace.envs,
                                     workspace.logs, front_end=self, replica_count=self.autoscaler.replicas)
        self._services: list[ServiceRoute] = []  # what the front end serves (apply() returned)
        self._routed = threading.Condition()  # notified each time the front end took new routes
        self._locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._frontend_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.store.list_services():
            self.frontend.start()  # re-adopts the Envoy of an earlier control plane when it still runs
        elif self.frontend.stop_left_running():
            logger.info("stopped the front end an earlier control plane left running with no service")
        self._thread = threading.Thread(target=self.reconciler.run_forever, name="reconciler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop reconciling. Services keep serving (replicas and Envoy outlive the control plane);
        with no service left, the front end is stopped too."""
        self.reconciler.stop()
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
        try:
            yield
        finally:
            lock.release()
        self.reconciler.wake()

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

    def apply(self, routes: list[dict]) -> None:
        """Called by the reconciler when what to route changed: reconfigure Envoy (starting it if needed)."""
        with self._frontend_lock:
            if not routes and not self.frontend.pid:
                return
            services = [
                ServiceRoute(r["name"], [VersionRoute(r["version"], 100, [tuple(e) for e in r["endpoints"]])],
                             auth=r["auth"], keys=r["keys"], scoring_timeout_ms=r["scoring_timeout_ms"],
                             cors_origins=tuple(r["cors_origins"]))
                for r in routes]
            if not self.frontend.pid:
                self.frontend.start(services)
            self.frontend.apply(services)
        with self._routed:
            self._services = services
            self._routed.notify_all()

    def wait_routed(self, service: str, policy: dict, timeout_s: float = ROUTE_WAIT_S) -> None:
        """Return once the front end treats ``service``'s clients by ``policy`` (``reconciler.client_policy``:
        auth mode, keys, CORS origins), so that e.g. a regenerated key works, and the old one is refused,
        when the operation returns.

        Raises FrontEndError when that does not happen within ``timeout_s`` seconds."""
        self.reconciler.wake()
        deadline = time.monotonic() + timeout_s
        wanted = (policy["auth"], list(policy["keys"]), tuple(policy["cors_origins"]))
        with self._routed:
            while not any(s.name == service and (s.auth, s.keys, s.cors_origins) == wanted for s in self._services):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise FrontEndError(f"the new auth or CORS settings of service '{service}' are saved, but the "
                                        f"front end did not apply them within {timeout_s:.0f} s; see "
                                        f"{self.frontend.log_path}")
                self._routed.wait(remaining)

    def remove(self, service: str) -> None:
        """Stop a deleted service's replicas now, not at the next reconcile pass."""
        self.backend.remove(service)
        self.autoscaler.forget(service)

    def scoring_base(self, service: str) -> str | None:
        """``<front end>/api/v1/service/<name>``: stable for the life of the service (routed or not)."""
        return f"{self.frontend.url}/api/v1/service/{service}" if self.frontend.pid else None

    def token(self, service: str) -> tuple[str, int]:
        """A JWT for a token-auth service and the epoch second to refresh it by."""
        return self.frontend.signer.issue(service, TOKEN_TTL_S)
