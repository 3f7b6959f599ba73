"""The Kubernetes backend's answers to issue 10's failure modes, on the API emulator.

Emulated: the API server (``ApiEmulator``) and what the cluster reports — pods are made by the emulator's
controller-manager with the statuses and events a kubelet and scheduler would write (unschedulable, image pull
errors, OOM kills). Real: the backend, the official client, the rendered objects, the image builds (into the
emulated image store ``LocalImages`` from the real build contexts).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from modelport.backends.kubernetes import objects
from modelport.backends.kubernetes.backend import KubernetesBackend
from modelport.backends.kubernetes.cluster import Cluster
from modelport.backends.kubernetes.image_builds import ImageBuilds
from modelport.packaging.snapshot import snapshot
from modelport.reconcile.backend import Preparation, ReplicaSetSpec
from modelport.sdk.deploy_config import DeploymentConfig
from modelport.spec import State
from modelport.spec.compute import KubernetesTarget
from modelport.store.artifacts import LocalArtifactStore
from tests.kubernetes.emulated_objects import crash_looping_status, unschedulable_status
from tests.kubernetes.emulator import ApiEmulator
from tests.kubernetes.local_images import LocalImages
from tests.traffic import wait_until

APP = Path(__file__).resolve().parents[1] / "fixtures" / "deploy_app"
ENVIRONMENT = {"name": "failures-env", "python": {"condaDependencies": {"dependencies": []}}}
SERVICE = "fragile"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(emulator, backend, app snapshot, model) with nothing of the service applied yet."""
    root = tmp_path_factory.mktemp("failures")
    artifacts = LocalArtifactStore(root / "artifacts")
    weights = root / "weights.txt"
    weights.write_text("w-1")
    model = {"name": "echo-model", "version": 1, "artifact_sha256": artifacts.put_file(weights),
             "artifact_kind": "file", "artifact_name": "weights.txt"}
    with ApiEmulator() as api:
        cluster = Cluster.connect(api.kubeconfig(), context=None, namespace="default")
        builds = ImageBuilds(LocalImages(root / "images"), artifacts, root / "logs", root / "contexts")
        target = KubernetesTarget(name="failing-k8s", server=api.url)
        yield api, KubernetesBackend(cluster, "failuresws", target, builds), snapshot(APP, artifacts).sha256, model
        builds.close()
        cluster.close()


@pytest.fixture(autouse=True)
def clean(world):
    yield
    api, backend, _, _ = world
    backend.remove(SERVICE)
    for kind in ("Pod", "Event"):
        for found in api.list_objects(kind):
            api.remove(kind, found["metadata"]["name"])


def spec(world, replica_set: str = "v1-1", **settings: Any) -> ReplicaSetSpec:
    _, _, app, model = world
    deploy = DeploymentConfig(**{"num_replicas": 1, **settings}).to_settings()
    return ReplicaSetSpec(service=SERVICE, replica_set=replica_set, environment=ENVIRONMENT, snapshot=app,
                          models=(model,), entry_script="score.py", replicas=deploy.get("num_replicas") or 1,
                          version=replica_set.rsplit("-", 1)[0], deploy=deploy)


def applied(world, wanted: ReplicaSetSpec, pod_status=None) -> list[dict]:
    """Prepare (wait for the image) and apply ``wanted``; settle its pods with ``pod_status``; the pods."""
    api, backend, _, _ = world
    assert wait_until(lambda: backend.prepare(wanted).state is Preparation.READY, timeout=300), \
        backend.prepare(wanted)
    backend.apply(wanted)
    api.settle(pod_status)
    name = objects.replica_set_name(SERVICE, wanted.replica_set)
    return [p for p in api.list_objects("Pod") if p["metadata"]["name"].startswith(f"{name}-")]


def event(api: ApiEmulator, pod: dict, reason: str, message: str, count: int = 1, kind: str = "Warning") -> None:
    name = pod["metadata"]["name"]
    api.put({"apiVersion": "v1", "kind": "Event",
             "metadata": {"name": f"{name}.{reason.lower()}", "namespace": "default"},
             "involvedObject": {"kind": "Pod", "name": name, "namespace": "default"},
             "reason": reason, "message": message, "type": kind, "count": count,
             "firstTimestamp": "2026-11-30T10:00:00Z", "lastTimestamp": "2026-11-30T10:05:00Z"})


def test_emulated_a_gpu_request_where_no_node_has_gpus_is_refused_before_anything_is_made(world):
    api, backend, _, _ = world
    prepared = backend.prepare(spec(world, "gpu-1", gpu_cores=1))
    assert prepared.state is Preparation.FAILED
    assert "nvidia.com/gpu" in prepared.reason and "device plugin" in prepared.reason
    assert prepared.reason.endswith("; nothing was created")
    assert api.list_objects("Deployment") == [] and backend.images.builder.names() == []  # nothing built either


def test_emulated_a_request_bigger_than_every_node_is_refused_naming_the_largest(world):
    prepared = world[1].prepare(spec(world, "big-1", cpu_cores=64))
    assert prepared.state is Preparation.FAILED and "64" in prepared.reason, prepared.reason  # the request
    assert "3.86 cores" in prepared.reason  # the most a node allocates (4-core nodes, as the emulator's)


def test_emulated_pods_the_scheduler_cannot_place_say_why_with_the_free_capacity(world):
    api, backend, _, _ = world
    wanted = spec(world, "pending-1", memory_gb=12)
    message = "0/3 nodes are available: 3 Insufficient memory"  # the scheduler ends it with a period
    applied(world, wanted, lambda deployment, index: unschedulable_status(f"{message}."))
    state, reason = backend.diagnose(wanted, backend.observe(SERVICE, wanted.replica_set))
    assert state is State.TRANSITIONING and message in reason
    assert all(node["metadata"]["name"] in reason for node in api.nodes)  # the free capacity of each node


def test_emulated_an_image_that_cannot_be_pulled_fails_naming_it_and_the_kind_of_error(world):
    api, backend, _, _ = world
    wanted = spec(world, "pull-1")

    def pulling(deployment: str, index: int) -> dict:
        return {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}],
                "containerStatuses": [{"name": "scoring", "ready": False, "restartCount": 0,
                                       "image": backend.images.image(wanted),
                                       "state": {"waiting": {"reason": "ImagePullBackOff",
                                                             "message": "Back-off pulling image"}}}]}

    [pod] = applied(world, wanted, pulling)
    image = backend.images.image(wanted)
    event(api, pod, "Failed", f'Failed to pull image "{image}": rpc error: code = Unknown desc = failed to '
                              "authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized",
          count=3)
    state, reason = backend.diagnose(wanted, backend.observe(SERVICE, wanted.replica_set))
    assert state is State.FAILED and image in reason and "refused the nodes' credentials" in reason
    logs = backend.logs(SERVICE, wanted.replica_set)  # no container log yet: the pod's events
    assert "Failed to pull image" in logs and f"pod/{pod['metadata']['name']}" in logs


def test_emulated_a_replica_killed_for_memory_names_memory_gb_limit(world):
    api, backend, _, _ = world
    wanted = spec(world, "oom-1", memory_gb=0.5, memory_gb_limit=1.0)

    def oom(deployment: str, index: int) -> dict:
        status = crash_looping_status(["scoring"], 137, restarts=2)
        status["containerStatuses"][0]["lastState"]["terminated"]["reason"] = "OOMKilled"
        return status

    applied(world, wanted, oom)
    state, reason = backend.diagnose(wanted, backend.observe(SERVICE, wanted.replica_set))
    assert state in (State.FAILED, State.UNHEALTHY) and "memory_gb_limit" in reason


def test_emulated_an_autoscaled_count_belongs_to_the_controller_and_a_fixed_one_to_the_spec(world):
    api, backend, _, _ = world
    autoscaled = spec(world, "auto-1", num_replicas=None, autoscale_enabled=True, autoscale_min_replicas=2)
    applied(world, autoscaled)
    name = objects.replica_set_name(SERVICE, "auto-1")
    backend.cluster.scale(name, 3)  # the in-cluster controller scaled it
    backend.apply(replace(autoscaled, env={"CHANGED": "1"}))  # a changed Deployment is applied again
    assert api.get_object("Deployment", name)["spec"]["replicas"] == 3  # the apply left the count alone
    assert api.get_object("Deployment", name)["spec"]["template"]["spec"]["containers"][0]["env"][0] == {
        "name": "CHANGED", "value": "1"} or any(e["name"] == "CHANGED" for e in
                                                api.get_object("Deployment", name)["spec"]["template"]["spec"][
                                                    "containers"][0]["env"])
    fixed = spec(world, "fixed-1", num_replicas=2)
    applied(world, fixed)
    assert api.get_object("Deployment", objects.replica_set_name(SERVICE, "fixed-1"))["spec"]["replicas"] == 2


def test_emulated_removing_a_replica_set_deletes_its_objects_and_nothing_else(world):
    api, backend, _, _ = world
    applied(world, spec(world, "old-1"))
    applied(world, spec(world, "new-2"))
    unrelated = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "someone-elses", "namespace": "default"},
                 "spec": {"ports": [{"port": 80}]}}
    api.put(unrelated)
    backend.remove(SERVICE, "old-1")
    names = {d["metadata"]["name"] for d in api.list_objects("Deployment")}
    services = {s["metadata"]["name"] for s in api.list_objects("Service")}
    assert objects.replica_set_name(SERVICE, "old-1") not in names | services
    assert objects.replica_set_name(SERVICE, "new-2") in names and {"someone-elses"} <= services
    assert backend.versions(SERVICE) == ["new-2"]
    api.remove("Service", "someone-elses")


def test_emulated_objects_deleted_behind_its_back_are_applied_again(world):
    api, backend, _, _ = world
    wanted = spec(world, "gone-1")
    applied(world, wanted)
    name = objects.replica_set_name(SERVICE, "gone-1")
    api.remove("Deployment", name)
    api.remove("Service", name)
    assert wait_until(lambda: backend.apply(wanted) or api.get_object("Deployment", name) is not None, timeout=10)
    assert api.get_object("Service", name) is not None
