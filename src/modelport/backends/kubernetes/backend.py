"""The Kubernetes backend: each replica set of an endpoint version runs as a Deployment and a Service.

The reconciler of an attached cluster (``api/deployments.py`` makes one per Kubernetes compute
target) calls it like the local backend: ``prepare`` builds the replica set's image in the
background (``image_builds``) after checking that its pods can ever be scheduled; ``apply`` renders
the Deployment and Service (``manifests``) and applies them server-side when they changed;
``observe`` reads the pods back as replica states; ``diagnose`` turns pod conditions and events into
the reasons users need (``status``). Every object carries the target's labels, so ``remove`` and
detach find exactly what this target made.

An autoscaled version's replica count belongs to the in-cluster controller (it scales through the
scale subresource, also while the control plane is offline): this backend leaves ``spec.replicas``
out of such a Deployment (server-side apply then leaves the field to the controller, which raises a
new Deployment to the version's minimum within a refresh period).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from ...environments.build import tail_lines
from ...reconcile.autoscale import AutoscaleSettings
from ...reconcile.backend import Preparation, Prepared, ReplicaSetSpec, ReplicaState
from ...spec import Endpoint, EndpointVersion, State
from ...spec.compute import KubernetesTarget
from . import objects, scheduling, status
from .cluster import Cluster, ClusterApiError
from .image_builds import LOG_FOLDER, ImageBuilds
from .manifests import SCORING_CONTAINER, ScoringWorkload, runtime_env, scoring_objects

READ_TTL_S = 0.25  # pods (and EndpointSlices) read once serve every question about them within this many seconds
SERVICE_NAME_LABEL = "kubernetes.io/service-name"  # the EndpointSlice controller's label naming the slice's Service


class KubernetesBackend:
    """Runs replica sets as Deployments in ``target.namespace`` of ``cluster``, images from ``images``.

    ``workspace``: the workspace name (a label on every object)."""

    def __init__(self, cluster: Cluster, workspace: str, target: KubernetesTarget, images: ImageBuilds):
        self.cluster = cluster
        self.workspace = workspace
        self.target = target
        self.images = images
        self._applied: dict[str, Any] = {}  # replica set key -> what was applied last
        self._never_fits: dict[str, str | None] = {}  # replica set key -> why its pods can never be scheduled
        self._reads: dict[str, tuple[float, list[dict]]] = {}  # kind -> (when read, the objects)

    # --- what the reconciler asks -------------------------------------------------------------

    def prepare(self, spec: ReplicaSetSpec) -> Prepared:
        """Refuse a replica set whose pods no node could ever hold; else build (or find) its image."""
        if spec.key not in self._never_fits:
            fit = scheduling.check_fit(scheduling.pod_request(self._pod_spec(spec)), spec.replicas,
                                       self.cluster.list_nodes(), [])
            self._never_fits[spec.key] = fit.message if fit.never_fits else None  # the request, then why never
        if self._never_fits[spec.key]:
            return Prepared(Preparation.FAILED, f"{self._never_fits[spec.key]}; nothing was created")
        return self.images.prepare(spec)

    def resource_notes(self, spec: ReplicaSetSpec) -> list[str]:
        deploy = spec.deploy
        notes = [f"each replica requests {deploy.get('cpu_cores', 0.1):g} CPU cores and "
                 f"{deploy.get('memory_gb', 0.5):g} GB memory"]
        if deploy.get("cpu_cores_limit") or deploy.get("memory_gb_limit"):
            notes.append(f"limited to {deploy.get('cpu_cores_limit') or 'no'} CPU cores and "
                         f"{deploy.get('memory_gb_limit') or deploy.get('memory_gb', 0.5)} GB memory")
        if deploy.get("gpu_cores"):
            notes.append(f"{deploy['gpu_cores']} nvidia.com/gpu per replica")
        return notes

    def apply(self, spec: ReplicaSetSpec) -> None:
        """Apply the replica set's Deployment and Service when what they should be changed."""
        workload = self._workload(spec)
        if self._applied.get(spec.key) == workload and all(
                any(found["metadata"]["name"] == workload.name for found in self._read(kind))
                for kind in ("Deployment", "Service")):
            return  # unchanged, and both still there (one deleted behind our back is applied again)
        for manifest in scoring_objects(workload):
            self.cluster.apply(manifest)
        self._applied[spec.key] = workload

    def observe(self, service: str, replica_set: str) -> list[ReplicaState]:
        """The replica set's pods as replicas; one is ready once its Service lists it as a ready endpoint (what the
        front end routes to), not merely when its pod is Ready: so a rolling update moves the traffic only once the
        new replicas can be reached through the front end."""
        routable = self._routable(service, replica_set)
        return [replace(state, ready=state.ready and state.address is not None and state.address[0] in routable)
                for state in status.replica_states(self._pods_of(service, replica_set), objects.SCORING_PORT)]

    def diagnose(self, spec: ReplicaSetSpec, replicas: list[ReplicaState]) -> tuple[State, str] | None:
        pods = self._pods_of(spec.service, spec.replica_set)
        names = {pod["metadata"]["name"] for pod in pods}
        deployment = objects.replica_set_name(spec.service, spec.replica_set)
        events = [e for e in self.cluster.events() if _involves(e, names, deployment)]
        capacity = None
        if any(_unschedulable(pod) for pod in pods):
            capacity = scheduling.check_fit(scheduling.pod_request(pods[0]["spec"]), spec.replicas,
                                            self.cluster.list_nodes(), self._all_pods()).message
        found = status.diagnose(pods, events, spec.deploy, self._log_tail, capacity_note=capacity)
        return (found.state, found.reason) if found else None

    def services(self) -> list[str]:
        return sorted({d["metadata"]["labels"][objects.ENDPOINT] for d in self._deployments()})

    def versions(self, service: str) -> list[str]:
        return sorted(d["metadata"]["labels"][objects.REPLICA_SET] for d in self._deployments(service))

    def remove(self, service: str, replica_set: str | None = None) -> None:
        """Delete the replica set's (or all the service's) Deployments and Services, and nothing else."""
        labels = {**self._labels(), objects.ENDPOINT: service}
        if replica_set is not None:
            labels[objects.REPLICA_SET] = replica_set
        for kind in ("Deployment", "Service"):
            for found in self.cluster.list(kind, labels):
                self.cluster.delete(kind, found["metadata"]["name"])
        for key in [k for k in self._applied if k.startswith(f"{service}/") and replica_set in (None, k.split("/")[1])]:
            del self._applied[key]
        self.images.forget(service, replica_set)
        self._reads.clear()

    def logs(self, service: str, replica_set: str, num_lines: int = 5000) -> str:
        """Each pod's scoring container log (the one before a restart too); a pod with no log gives its events."""
        parts = []
        for pod in self._pods_of(service, replica_set):
            name = pod["metadata"]["name"]
            text = self.cluster.pod_log(name, SCORING_CONTAINER, tail_lines=num_lines)
            if _restarted(pod):  # the run before the restart holds the crash (e.g. init()'s traceback)
                try:
                    before = self.cluster.pod_log(name, SCORING_CONTAINER, tail_lines=num_lines, previous=True)
                except ClusterApiError:  # the kubelet no longer keeps it (e.g. the node restarted)
                    before = ""
                text = f"{before}--- restarted ---\n{text}" if before.strip() else text
            if not text.strip():
                events = [e for e in self.cluster.events() if e.get("involvedObject", {}).get("name") == name]
                text = status.events_text(events)
            parts.append(f"--- pod {name} ---\n{text}")
        return "\n".join(parts)

    def preparation_log(self, service: str, replica_set: str, environment: dict, num_lines: int = 5000) -> str:
        """The replica set's image build log (``ImageBuilds.log_path``): "" before its first build."""
        return tail_lines(self.images.logs_root / LOG_FOLDER / service / f"{replica_set}.log", num_lines)

    def replica_count(self, endpoint: Endpoint, version: EndpointVersion) -> int:
        """The replicas a version should run: ``num_replicas`` when fixed; when autoscaled, the count the
        in-cluster controller set (the minimum before its Deployment exists)."""
        autoscaled, settings = AutoscaleSettings.of(version.deploy)
        if not autoscaled:
            return int(version.deploy.get("num_replicas") or 1)
        found = self.cluster.get("Deployment", objects.replica_set_name(endpoint.name, version.replica_set))
        return int(found["spec"].get("replicas", settings.min_replicas)) if found else settings.min_replicas

    # --- helpers --------------------------------------------------------------------------------

    def _workload(self, spec: ReplicaSetSpec, image: str | None = None) -> ScoringWorkload:
        autoscaled, _ = AutoscaleSettings.of(spec.deploy)
        return ScoringWorkload(workspace=self.workspace, target=self.target, endpoint=spec.service,
                               version=spec.version, replica_set=spec.replica_set,
                               image=image or self.images.image(spec), replicas=None if autoscaled else spec.replicas,
                               deploy=dict(spec.deploy), env=runtime_env(spec))

    def _pod_spec(self, spec: ReplicaSetSpec) -> dict:
        """The pod spec the replica set would run (its image not built yet), for the scheduling check."""
        deployment = scoring_objects(self._workload(spec, image=self.images.image_name(spec)))[0]
        return deployment["spec"]["template"]["spec"]

    def _labels(self) -> dict[str, str]:
        return {**objects.target_labels(self.workspace, self.target.name), objects.COMPONENT: objects.SCORING}

    def _deployments(self, service: str | None = None) -> list[dict]:
        labels = self._labels() if service is None else {**self._labels(), objects.ENDPOINT: service}
        return self.cluster.list("Deployment", labels)

    def _all_pods(self) -> list[dict]:
        return self._read("Pod")

    def _read(self, kind: str) -> list[dict]:
        """The target's scoring objects of ``kind``, read once per ``READ_TTL_S``."""
        read_at, found = self._reads.get(kind, (0.0, []))
        if time.monotonic() - read_at > READ_TTL_S:
            found = self.cluster.list(kind, self._labels())
            self._reads[kind] = (time.monotonic(), found)
        return found

    def _routable(self, service: str, replica_set: str) -> set[str]:
        """The addresses the replica set's Service lists as ready in its EndpointSlices."""
        name = objects.replica_set_name(service, replica_set)
        return {address for piece in self._read("EndpointSlice")
                if piece["metadata"].get("labels", {}).get(SERVICE_NAME_LABEL) == name
                for endpoint in piece.get("endpoints") or [] if (endpoint.get("conditions") or {}).get("ready")
                for address in endpoint.get("addresses") or []}

    def _pods_of(self, service: str, replica_set: str) -> list[dict]:
        return [pod for pod in self._all_pods() if pod["metadata"].get("labels", {}).get(objects.ENDPOINT) == service
                and pod["metadata"]["labels"].get(objects.REPLICA_SET) == replica_set]

    def _log_tail(self, pod: str, container: str, previous: bool) -> str:
        return self.cluster.pod_log(pod, container, tail_lines=30, previous=previous)


def _involves(event: dict, pods: set[str], deployment: str) -> bool:
    """An event about one of the replica set's pods, or about its Deployment's ReplicaSets (``FailedCreate``:
    a quota or an admission webhook refused the pods)."""
    involved = event.get("involvedObject", {})
    name = involved.get("name", "")
    return name in pods or (involved.get("kind") == "ReplicaSet" and name.startswith(f"{deployment}-"))


def _restarted(pod: dict) -> bool:
    """Whether the pod's scoring container ran before (its last run's log is kept until the next restart)."""
    return any(c.get("name") == SCORING_CONTAINER and c.get("lastState", {}).get("terminated")
               for c in pod.get("status", {}).get("containerStatuses", []))


def _unschedulable(pod: dict) -> bool:
    return any(c.get("type") == "PodScheduled" and c.get("status") == "False"
               for c in pod.get("status", {}).get("conditions", []))
