"""The emulated kubelet (``kubelet.py``) against the API emulator: a replica set's Deployment becomes real processes.

What is emulated: the Kubernetes API server and controller-manager (``emulator.py``), the kubelet (processes instead
of containers, loopback addresses as pod IPs) and the image store (``local_images.py``: images as folders). What is
real: the Deployment and Service modelport renders (``manifests.scoring_objects``), applied through ``Cluster`` over
HTTP; the images' build contexts (``images``, built by ``ImageBuilds``); the scoring runtime processes answering over
HTTP at their pod addresses; the probes on ``/-/ready`` and ``/-/live``; the runtime's exit codes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelport import processes
from modelport.backends.kubernetes.cluster import Cluster
from modelport.backends.kubernetes.image_builds import ImageBuilds
from modelport.backends.kubernetes.manifests import ScoringWorkload, scoring_objects
from modelport.packaging.snapshot import snapshot
from modelport.reconcile.backend import INIT_FAILED_EXIT_CODE, Preparation, ReplicaSetSpec
from modelport.sdk.deploy_config import DeploymentConfig
from modelport.spec.compute import KubernetesTarget
from modelport.store.artifacts import LocalArtifactStore
from tests.traffic import wait_until

from .emulator import ApiEmulator
from .kubelet import EmulatedKubelet
from .local_images import LocalImages

APP = Path(__file__).resolve().parents[1] / "fixtures" / "deploy_app"
ENVIRONMENT = {"name": "kubelet-env", "python": {"condaDependencies": {"dependencies": []}}}
TARGET = KubernetesTarget(name="emulated-aks", server="http://127.0.0.1", namespace="default")


@pytest.fixture(scope="module")
def app_image(tmp_path_factory) -> Iterator[tuple[LocalImages, str]]:
    """The echo app's image, built by ``ImageBuilds`` into an emulated image store: (store, image name)."""
    root = tmp_path_factory.mktemp("kubelet-images")
    artifacts = LocalArtifactStore(root / "artifacts")
    weights = root / "weights.txt"
    weights.write_text("w-kubelet")
    model = {"name": "echo-model", "version": 1, "artifact_sha256": artifacts.put_file(weights),
             "artifact_kind": "file", "artifact_name": "weights.txt"}
    spec = ReplicaSetSpec(service="echo", replica_set="blue-1", environment=ENVIRONMENT,
                          snapshot=snapshot(APP, artifacts).sha256, models=(model,), entry_script="score.py",
                          replicas=1)
    store = LocalImages(root / "images")
    builds = ImageBuilds(store, artifacts, root / "logs", root / "work")
    prepared = wait_until(lambda: builds.prepare(spec).state is not Preparation.PREPARING and builds.prepare(spec),
                          timeout=300, interval=0.2)
    assert prepared and prepared.state is Preparation.READY, prepared
    yield store, builds.image(spec)
    builds.close()


@pytest.fixture
def kubelet(api_emulator: ApiEmulator, app_image, tmp_path) -> Iterator[EmulatedKubelet]:
    """An emulated kubelet running ``api_emulator``'s pods from the app image's store."""
    with EmulatedKubelet(api_emulator, app_image[0], tmp_path / "kubelet") as running:
        yield running
    assert not running.errors


def deploy(cluster: Cluster, image: str, replicas: int, replica_set: str = "blue-1", **env: str) -> str:
    """Apply a replica set's Deployment and Service as the backend renders them (probes every second); its name."""
    workload = ScoringWorkload(workspace="ws", target=TARGET, endpoint="echo", version="blue", replica_set=replica_set,
                               image=image, replicas=replicas, deploy=DeploymentConfig(period_seconds=1).to_settings(),
                               env=dict(env))
    for manifest in scoring_objects(workload):
        cluster.apply(manifest)
    return workload.name


def pods(cluster: Cluster, deployment: str) -> list[dict[str, Any]]:
    return sorted((p for p in cluster.list("Pod") if p["metadata"]["name"].startswith(f"{deployment}-")),
                  key=lambda p: p["metadata"]["name"])


def scoring(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["status"]["containerStatuses"][0]


def ready_pods(cluster: Cluster, deployment: str, count: int, timeout: float = 120) -> list[dict[str, Any]]:
    """The deployment's pods once exactly ``count`` are Ready (bounded wait)."""
    def all_ready():
        found = pods(cluster, deployment)
        return found if len(found) == count and all(scoring(p)["ready"] for p in found) else None
    found = wait_until(all_ready, timeout, interval=0.2)
    assert found, pods(cluster, deployment)
    return found


def score(pod: dict[str, Any], echo: int) -> dict[str, Any]:
    return httpx.post(f"http://{pod['status']['podIP']}:5001/score", json={"echo": echo}, timeout=30).json()


def test_emulated_deployment_pods_run_as_processes_answering_at_their_pod_addresses(emulated_cluster, kubelet,
                                                                                     app_image):
    """Two replicas: two processes, each at its own pod IP on port 5001, Ready only once they answer."""
    name = deploy(emulated_cluster, app_image[1], replicas=2)
    found = ready_pods(emulated_cluster, name, 2)
    addresses = [p["status"]["podIP"] for p in found]
    assert len(set(addresses)) == 2 and all(a.startswith("127.") and a != "127.0.0.1" for a in addresses)
    answers = [score(pod, index) for index, pod in enumerate(found)]
    assert [(a["weights"], a["echo"]) for a in answers] == [("w-kubelet", 0), ("w-kubelet", 1)]
    assert all(kubelet.pid(p["metadata"]["name"]) for p in found) and found[0]["status"]["phase"] == "Running"
    [endpoints] = [s for s in emulated_cluster.list("EndpointSlice")
                   if s["metadata"]["labels"]["kubernetes.io/service-name"] == name]
    assert wait_until(lambda: sorted(e["addresses"][0] for s in emulated_cluster.list("EndpointSlice")
                                     if s["metadata"]["name"] == endpoints["metadata"]["name"]
                                     for e in s["endpoints"] if e["conditions"]["ready"]) == sorted(addresses), 10)
    assert "Calling init()" in emulated_cluster.pod_log(found[0]["metadata"]["name"], "scoring")


def test_emulated_container_killed_is_restarted_in_place(emulated_cluster, kubelet, app_image):
    """A SIGKILLed container: restartCount 1, lastState exit code 137, a new process at the same pod IP, and the
    previous run's log kept apart from the new one's."""
    name = deploy(emulated_cluster, app_image[1], replicas=1)
    [pod] = ready_pods(emulated_cluster, name, 1)
    pod_name = pod["metadata"]["name"]
    killed = kubelet.kill(pod_name)

    def restarted():
        [now] = pods(emulated_cluster, name)
        return now if scoring(now)["restartCount"] == 1 and scoring(now)["ready"] else None

    again = wait_until(restarted, 120, interval=0.2)
    assert again, pods(emulated_cluster, name)
    assert scoring(again)["lastState"]["terminated"]["exitCode"] == 137
    assert again["status"]["podIP"] == pod["status"]["podIP"] and kubelet.pid(pod_name) not in (None, killed)
    assert score(again, 7)["echo"] == 7
    previous = emulated_cluster.pod_log(pod_name, "scoring", previous=True)
    assert "Calling init()" in previous and previous != emulated_cluster.pod_log(pod_name, "scoring")


def test_emulated_init_failure_crash_loops_with_the_kubelets_back_off(emulated_cluster, kubelet, app_image):
    """init() raising: the runtime exits with INIT_FAILED_EXIT_CODE, the kubelet restarts it at once, then holds the
    second restart back 10 s (CrashLoopBackOff); the log served is the failed run's."""
    name = deploy(emulated_cluster, app_image[1], replicas=1, replica_set="red-1", FAIL_INIT="1")

    def backing_off():
        found = pods(emulated_cluster, name)
        waiting = (scoring(found[0]).get("state") or {}).get("waiting") if found and found[0].get("status") \
            and found[0]["status"].get("containerStatuses") else None
        return found[0] if waiting and waiting.get("reason") == "CrashLoopBackOff" else None

    pod = wait_until(backing_off, 120, interval=0.2)
    assert pod, pods(emulated_cluster, name)
    container = scoring(pod)
    assert container["restartCount"] == 1 and not container["ready"]
    assert container["lastState"]["terminated"]["exitCode"] == INIT_FAILED_EXIT_CODE
    assert container["state"]["waiting"]["message"].startswith("back-off 10s restarting failed container=scoring")
    assert "init exploded on purpose" in emulated_cluster.pod_log(pod["metadata"]["name"], "scoring")
    assert kubelet.pid(pod["metadata"]["name"]) is None


def test_emulated_deleting_the_deployment_stops_its_processes(emulated_cluster, kubelet, app_image):
    """Deleting the Deployment deletes its pods (the emulated garbage collector); the kubelet stops their processes
    and nothing answers at their addresses any more."""
    name = deploy(emulated_cluster, app_image[1], replicas=2)
    found = ready_pods(emulated_cluster, name, 2)
    pids = [kubelet.pid(p["metadata"]["name"]) for p in found]
    assert all(pids)
    emulated_cluster.delete("Deployment", name)
    assert wait_until(lambda: not any(processes.running(pid) for pid in pids), 60, interval=0.1)
    for pod in found:
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://{pod['status']['podIP']}:5001/-/live", timeout=2)


def test_emulated_image_missing_from_the_store_waits_in_image_pull_errors(emulated_cluster, kubelet):
    """An image the store does not have: no process, the container waits in ErrImagePull with a not-found message
    and the kubelet's Failed event, as a pull of an image that was never pushed."""
    name = deploy(emulated_cluster, "localhost/modelport-app:never-built", replicas=1)

    def pulling():
        found = pods(emulated_cluster, name)
        statuses = found[0].get("status", {}).get("containerStatuses") if found else None
        return found[0] if statuses and statuses[0]["state"].get("waiting", {}).get("reason") == "ErrImagePull" \
            else None

    pod = wait_until(pulling, 30, interval=0.1)
    assert pod, pods(emulated_cluster, name)
    assert "not found" in scoring(pod)["state"]["waiting"]["message"] and pod["status"]["phase"] == "Pending"
    assert kubelet.pid(pod["metadata"]["name"]) is None
    events = emulated_cluster.events(f"involvedObject.name={pod['metadata']['name']}")
    assert any(e["reason"] == "Failed" and "Failed to pull image" in e["message"] for e in events)
