"""The running part of the control plane for services: local backend, reconciler thread, front end.

Replicas and the front end run in their own sessions: they outlive a control plane restart,
and the next control plane re-adopts them (state files), so no service is lost.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from contextlib import contextmanager

from ..backends.local import LocalBackend
from ..errors import Conflict
from ..reconcile.autoscaling import ReplicaAutoscaler
from ..reconcile.reconciler import Reconciler
from ..store.artifacts import LocalArtifactStore
from ..store.db import Store
from .workspace_dir import WorkspaceDir

logger = logging.getLogger("modelport.deployments")


class Deployments:
    """Owns the reconciler loop and the per-service operation locks of one workspace."""

    def __init__(self, workspace: WorkspaceDir, store: Store, artifacts: LocalArtifactStore):
        self.workspace = workspace
        self.backend = LocalBackend(workspace.root / "replicas")
        self.autoscaler = ReplicaAutoscaler(self.backend)
        self.routes: list[dict] = []
        self.reconciler = Reconciler(store, artifacts, self.backend, workspace.root / "services", workspace.envs,
                                     workspace.logs, on_routes=self._apply_routes,
                                     replica_count=self.autoscaler.replicas)
        self._locks: dict[str, threading.Lock] = defaultdict(threading.Lock)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.reconciler.run_forever, name="reconciler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.reconciler.stop()
        if self._thread is not None:
            self._thread.join(10)

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

    def _apply_routes(self, routes: list[dict]) -> None:
        self.routes = routes

    def scoring_base(self, service: str) -> str | None:
        """``<front end>/api/v1/service/<name>``; until the front end runs: a ready replica's URL."""
        for route in self.routes:
            if route["name"] == service and route["endpoints"]:
                host, port = route["endpoints"][0]
                return f"http://{host}:{port}"
        return None
