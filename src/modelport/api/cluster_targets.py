"""The running part of each attached Kubernetes compute target: its backend, front end and reconciler.

``Deployments`` owns one ``ClusterTargets``: at start it brings up a reconciler thread per attached
Kubernetes target (in its own error boundary: a cluster that cannot be reached leaves its services
Unhealthy with the reason, and the others untouched); attach and detach start and stop one. Each
target's reconciler runs the endpoints whose ``compute_target`` names it, against a
``KubernetesBackend`` and a ``KubernetesFrontEnd`` in the target's namespace.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ..backends.kubernetes.backend import KubernetesBackend
from ..backends.kubernetes.builders import builder_for
from ..backends.kubernetes.frontend import KubernetesFrontEnd
from ..backends.kubernetes.frontend_manifests import tls_secret
from ..backends.kubernetes.image_builds import ImageBuilds
from ..backends.kubernetes.images import front_end_image_name
from ..backends.kubernetes.objects import FRONT_END_NAME
from ..errors import ModelportError
from ..frontend.envoy import FrontEndError
from ..frontend.routes import ServiceRoute
from ..operations.compute import ComputeOperations
from ..reconcile.autoscale import AutoscaleSettings
from ..reconcile.backend import Preparation
from ..reconcile.reconciler import FrontEndStarting, Reconciler
from ..spec.compute import KubernetesTarget
from ..store.artifacts import LocalArtifactStore
from ..store.db import Store
from .workspace_dir import WorkspaceDir

logger = logging.getLogger("modelport.deployments")
STARTING_APPLY_S = 5.0  # seconds a pass waits for a front end that has not been ready yet to take the routes


@dataclass
class ClusterTarget:
    """One attached cluster's running part."""

    target: KubernetesTarget
    backend: KubernetesBackend
    front_end: KubernetesFrontEnd
    reconciler: Reconciler
    thread: threading.Thread
    images: ImageBuilds


class FrontEndOnceBuilt:
    """The reconciler's front end port for a cluster: the front end's objects are applied once its image is built
    (until then each pass says the image is being built, and no pod waits on an image that does not exist), and
    only once a service runs there: a target with none has no front end, and nothing is built for it."""

    def __init__(self, front_end: KubernetesFrontEnd, images: ImageBuilds):
        self.front_end = front_end
        self.images = images
        self._was_ready = False  # a front end that served once and is not ready now is down, not starting

    def ensure_running(self) -> bool:
        self.images.front_end_image()  # starts its build, once
        prepared = self.images.front_end_prepared()
        if prepared.state is Preparation.FAILED:
            raise ModelportError(f"the front end image could not be built: {prepared.reason}")
        if prepared.state is Preparation.PREPARING:
            raise FrontEndStarting(f"the front end is being made: {prepared.reason}")
        return self.front_end.ensure_running()

    def apply(self, routes: list[ServiceRoute]) -> None:
        """Publish ``routes``; while the front end's pod has never been ready (its image pulled, its controller
        started), wait for it only ``STARTING_APPLY_S`` and say it is starting (FrontEndStarting), so a pass is not
        held up for the whole apply timeout."""
        if not routes and self.front_end.cluster.get("Deployment", FRONT_END_NAME) is None:
            return  # no service, no front end: nothing to tell it
        health = self.front_end.health()
        self._was_ready = self._was_ready or health == "Healthy"
        if self._was_ready:
            self.front_end.apply(routes)
            return
        timeout_s, self.front_end.apply_timeout_s = self.front_end.apply_timeout_s, STARTING_APPLY_S
        try:
            self.front_end.apply(routes)
        except FrontEndError as err:
            raise FrontEndStarting(f"the front end is starting: {health.partition(': ')[2] or err}") from None
        finally:
            self.front_end.apply_timeout_s = timeout_s

    def route_problems(self) -> dict[str, str]:
        return self.front_end.route_problems()


class ClusterTargets:
    """Reconciler threads for the attached Kubernetes targets of one workspace.

    ``compute``: the workspace's compute target operations (targets, stored credentials); ``jwks()``: the
    workspace token signer's public keys."""

    def __init__(self, store: Store, workspace: WorkspaceDir, artifacts: LocalArtifactStore,
                 compute: ComputeOperations, jwks: Callable[[], dict]):
        self.store = store
        self.workspace = workspace
        self.artifacts = artifacts
        self.compute = compute
        self.jwks = jwks
        self._running: dict[str, ClusterTarget] = {}
        self._lock = threading.Lock()

    def names(self) -> set[str]:
        """The targets with a running reconciler."""
        return set(self._running)

    def start_all(self) -> None:
        """Start every attached Kubernetes target's reconciler; one that fails is logged and skipped."""
        for record in self.store.list_compute_targets():
            try:
                self.start(record.name)
            except Exception:
                logger.exception("compute target %s could not be started; its services are not reconciled",
                                 record.name)

    def start(self, name: str) -> None:
        """Start reconciling the endpoints on target ``name`` (again, if it ran already). Raises what connecting
        to it raises."""
        self.stop(name)
        target, cluster = self.compute.kubernetes_target(name), self.compute.cluster_for(name)
        tls = self.compute.tls_pair(name)
        if tls is not None:
            cluster.apply(tls_secret(self.workspace.name, target, *tls))
        images = ImageBuilds(builder_for(target, cluster, self.workspace.name), self.artifacts, self.workspace.logs,
                             self.workspace.root / "image-contexts", target.image_registry)
        backend = KubernetesBackend(cluster, self.workspace.name, target, images)
        front_end = KubernetesFrontEnd(cluster, self.workspace.name, target,
                                       front_end_image_name(target.image_registry), self.jwks,
                                       autoscale=self._autoscale)
        reconciler = Reconciler(self.store, backend, replica_count=backend.replica_count,
                                front_end=FrontEndOnceBuilt(front_end, images), compute_target=name)
        thread = threading.Thread(target=reconciler.run_forever, name=f"reconciler-{name}", daemon=True)
        with self._lock:
            self._running[name] = ClusterTarget(target, backend, front_end, reconciler, thread, images)
        thread.start()

    def _autoscale(self, service: str, version: str) -> AutoscaleSettings | None:
        """A version's autoscale settings, None when its replica count is fixed (the controller scales it)."""
        try:
            deploy = self.store.get_service(service).endpoint.version(version).deploy
        except (ModelportError, KeyError):
            return None
        autoscaled, settings = AutoscaleSettings.of(deploy)
        return settings if autoscaled else None

    def stop(self, name: str) -> None:
        """Stop reconciling target ``name`` (what runs in the cluster keeps serving)."""
        with self._lock:
            running = self._running.pop(name, None)
        if running is not None:
            running.reconciler.stop()
            running.thread.join(10)
            running.images.close()

    def stop_all(self) -> None:
        for name in list(self._running):
            self.stop(name)

    def get(self, name: str) -> ClusterTarget | None:
        return self._running.get(name)
