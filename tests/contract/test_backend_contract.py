"""The backend contract: what the reconciler relies on from any backend, run against each one.

Every backend must: prepare a replica set in the background and say when it is ready or why it
failed; run exactly the replicas asked for, each reachable at its address once ready; restart a
replica that dies; report an ``init()`` failure; scale down; give the replicas' logs; remove a
replica set or a whole service with nothing left running. Real processes and real HTTP; waits are
bounded.

Kinds: ``local`` (replica processes on this machine) and ``kubernetes-emulated``: the real
``KubernetesBackend`` with real image build contexts (``ImageBuilds``), talking through the real
client over HTTP to an EMULATED API server and controller-manager (``tests/kubernetes/emulator.py``),
whose pods an EMULATED kubelet runs as real runtime processes at loopback pod addresses from an
EMULATED image store (images as folders: ``tests/kubernetes/kubelet.py``, ``local_images.py``).

Where Kubernetes rightly differs the contract says so per kind: a replica is seen restarted by its
``restarts`` growing (a pod has no pid: ``pid`` is None, and it keeps its address); the kubelet
restarts a container whose ``init()`` failed too, with its back-off (restartPolicy Always), and the
replica keeps reporting the failure (``init_failed``, never ready) while the local backend does not
restart it; removing deletes the objects at once, and the kubelet stops the processes after
(bounded wait), while the local backend stops them before ``remove`` returns.
"""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import pytest

from modelport import backends
from modelport.backends.kubernetes.backend import KubernetesBackend
from modelport.backends.kubernetes.cluster import Cluster
from modelport.backends.kubernetes.image_builds import ImageBuilds
from modelport.packaging.snapshot import snapshot
from modelport.reconcile.backend import Backend, Preparation, ReplicaSetSpec
from modelport.sdk.deploy_config import DeploymentConfig
from modelport.spec.compute import KubernetesTarget
from modelport.store.artifacts import LocalArtifactStore
from tests.kubernetes.emulator import ApiEmulator
from tests.kubernetes.kubelet import EmulatedKubelet
from tests.kubernetes.local_images import LocalImages
from tests.traffic import wait_until

APP = Path(__file__).resolve().parents[1] / "fixtures" / "deploy_app"
ENVIRONMENT = {"name": "contract-env", "python": {"condaDependencies": {"dependencies": []}}}
BACKENDS = ["local", "kubernetes-emulated"]
KUBERNETES = "kubernetes-emulated"
RESTARTS_FAILED_INIT = {"local": False, KUBERNETES: True}  # the kubelet restarts every exit (restartPolicy Always)
STOPS_IN_REMOVE = {"local": True, KUBERNETES: False}  # Kubernetes deletes pods; the kubelet stops them after


def kill_local(platform: None, backend, service: str, replica_set: str, index: int) -> None:
    """SIGKILL a local replica (its supervisor)."""
    [replica] = [r for r in backend.observe(service, replica_set) if r.index == index]
    os.kill(replica.pid, signal.SIGKILL)


def kill_pod(platform: EmulatedKubelet, backend, service: str, replica_set: str, index: int) -> None:
    """SIGKILL the scoring container's main process of a replica's pod (found by its pod IP)."""
    [replica] = [r for r in backend.observe(service, replica_set) if r.index == index]
    platform.kill(str(platform.pod_at(replica.address[0])))


KILL = {"local": kill_local, KUBERNETES: kill_pod}


class World(NamedTuple):
    """A backend of one ``kind``, ``kill(backend, service, replica set, index)`` for its replicas, the echo app's
    snapshot sha256 and its model (a ``ReplicaSetSpec.models`` dict)."""

    backend: Any
    kill: Callable[..., None]
    app: str
    model: dict[str, Any]
    kind: str


def local_platform(root: Path, artifacts: LocalArtifactStore) -> tuple[Backend, None, Callable[[], None]]:
    """The local backend: (backend, nothing to kill through, nothing to close)."""
    return backends.for_target("local", root, artifacts, root / "envs", root / "logs"), None, lambda: None


def emulated_kubernetes(root: Path, artifacts: LocalArtifactStore) -> tuple[Backend, EmulatedKubelet,
                                                                             Callable[[], None]]:
    """The Kubernetes backend on an emulated API server whose pods an emulated kubelet runs from an emulated image
    store; images built by ``ImageBuilds`` from the real build contexts. (backend, kubelet, close)."""
    emulator = ApiEmulator().start()
    store = LocalImages(root / "images")
    kubelet = EmulatedKubelet(emulator, store, root / "kubelet").start()
    cluster = Cluster.connect(emulator.kubeconfig(), context=None, namespace="default")
    builds = ImageBuilds(store, artifacts, root / "logs", root / "image-contexts")
    target = KubernetesTarget(name="contract-aks", server=emulator.url, namespace="default")

    def close() -> None:
        builds.close()
        kubelet.stop()
        cluster.close()
        emulator.stop()
        assert not kubelet.errors

    return KubernetesBackend(cluster, "contract", target, builds), kubelet, close


PLATFORMS = {"local": local_platform, KUBERNETES: emulated_kubernetes}


@pytest.fixture(scope="module", params=BACKENDS)
def world(request, tmp_path_factory):
    """A backend of each kind, with an artifact store holding the echo app and its model."""
    root = tmp_path_factory.mktemp(f"backend-{request.param}")
    artifacts = LocalArtifactStore(root / "artifacts")
    weights = root / "weights.txt"
    weights.write_text("w-contract")
    model = {"name": "echo-model", "version": 1, "artifact_sha256": artifacts.put_file(weights),
             "artifact_kind": "file", "artifact_name": "weights.txt"}
    app = snapshot(APP, artifacts).sha256
    backend, platform, close = PLATFORMS[request.param](root, artifacts)
    yield World(backend, functools.partial(KILL[request.param], platform), app, model, request.param)
    for service in backend.services():
        backend.remove(service)
    close()


def spec(world: World, replica_set: str, replicas: int, service: str = "contract", **env: str) -> ReplicaSetSpec:
    """A replica set of the echo app, probed every second, with the version settings a reconciler passes."""
    return ReplicaSetSpec(service=service, replica_set=replica_set, environment=ENVIRONMENT, snapshot=world.app,
                          models=(world.model,), entry_script="score.py", replicas=replicas, env=dict(env),
                          probe_period_s=1, version=replica_set.rsplit("-", 1)[0],
                          deploy=DeploymentConfig(num_replicas=replicas, period_seconds=1).to_settings())


def wait_for(predicate, timeout: float = 120.0):
    """``predicate``'s first true value, asked every 0.1 s for ``timeout`` seconds at most; else its last one."""
    return wait_until(predicate, timeout, interval=0.1)


def converge(backend: Backend, wanted: ReplicaSetSpec, ready: int, timeout: float = 120.0):
    """Prepare and apply ``wanted`` pass after pass, as the reconciler does, until ``ready`` replicas are ready."""
    def passed():
        if backend.prepare(wanted).state is Preparation.READY:
            backend.apply(wanted)
            replicas = backend.observe(wanted.service, wanted.replica_set)
            return replicas if sum(r.ready for r in replicas) == ready and len(replicas) == wanted.replicas else None
        return None
    replicas = wait_for(passed, timeout)
    assert replicas, backend.observe(wanted.service, wanted.replica_set)
    return replicas


def test_preparation_is_background_work_that_becomes_ready(world):
    backend = world[0]
    wanted = spec(world, "blue-1", 2)
    first = backend.prepare(wanted)
    assert first.state in (Preparation.PREPARING, Preparation.READY)
    assert wait_for(lambda: backend.prepare(wanted).state is Preparation.READY)


def test_exactly_the_replicas_asked_for_run_and_answer_at_their_address(world):
    backend = world[0]
    replicas = converge(backend, spec(world, "blue-1", 2), ready=2)
    answers = []
    for replica in replicas:
        host, port = replica.address
        answers.append(httpx.post(f"http://{host}:{port}/score", json={"echo": replica.index}, timeout=30).json())
    assert [(a["weights"], a["echo"]) for a in answers] == [("w-contract", 0), ("w-contract", 1)]
    assert "blue-1" in backend.versions("contract") and "contract" in backend.services()
    assert "Calling init()" in backend.logs("contract", "blue-1")
    assert all(isinstance(note, str) for note in backend.resource_notes(spec(world, "blue-1", 2)))
    # get_logs(init=True): what ran before the replicas started, the environment's packages being installed
    assert "pip install" in backend.preparation_log("contract", "blue-1", ENVIRONMENT)
    assert backend.preparation_log("contract", "never-made-1", {"name": "other-env"}) == ""


def test_a_replica_that_dies_is_restarted(world):
    backend, kill = world[0], world[1]
    wanted = spec(world, "blue-1", 2)
    before = {r.index: r for r in converge(backend, wanted, ready=2)}
    kill(backend, "contract", "blue-1", 0)

    def replaced():  # passes go on until replica 0 is a new, ready process (the old one may linger briefly)
        backend.apply(wanted)  # a new process: a new pid (local), a grown restart count (a pod has no pid)
        return next((r for r in backend.observe("contract", "blue-1")
                     if r.index == 0 and r.ready and r.restarts > before[0].restarts
                     and (r.pid is None or r.pid != before[0].pid)), None)

    restarted = wait_for(replaced)
    assert restarted and restarted.restarts == 1, backend.observe("contract", "blue-1")
    if world.kind == KUBERNETES:
        assert restarted.pid is None and restarted.address == before[0].address  # restarted in place, in its pod
    other = next(r for r in backend.observe("contract", "blue-1") if r.index == 1)
    assert (other.pid, other.restarts) == (before[1].pid, before[1].restarts)


def test_scaling_down_stops_the_extra_replicas(world):
    backend = world[0]
    replicas = converge(backend, spec(world, "blue-1", 1), ready=1)
    assert [r.index for r in replicas] == [0]


def test_an_init_failure_is_reported_and_never_ready(world):
    backend = world[0]
    failing = spec(world, "red-1", 1, FAIL_INIT="1")
    assert wait_for(lambda: backend.prepare(failing).state is Preparation.READY)

    def failed():
        backend.apply(failing)
        return [r for r in backend.observe("contract", "red-1") if r.init_failed]

    [replica] = wait_for(failed, timeout=60)
    assert not replica.ready
    assert "init exploded on purpose" in backend.logs("contract", "red-1")
    if not RESTARTS_FAILED_INIT[world.kind]:
        assert replica.restarts == 0
        backend.apply(failing)
        assert [r.restarts for r in backend.observe("contract", "red-1")] == [0]
        return

    def restarted_and_failed_again():  # the kubelet restarts it; each run fails and says so
        backend.apply(failing)
        return [r for r in backend.observe("contract", "red-1") if r.restarts >= 1 and r.init_failed]

    [again] = wait_for(restarted_and_failed_again, timeout=60)
    assert not again.ready


def test_an_environment_that_cannot_be_built_fails_its_preparation_with_the_reason(world):
    backend = world[0]
    broken = ReplicaSetSpec(**{**vars(spec(world, "broken-1", 1)), "environment": {
        "name": "broken-env", "python": {"condaDependencies": {"dependencies": [
            {"pip": ["modelport-no-such-package==0.0.1"]}]}}}})
    prepared = wait_for(lambda: backend.prepare(broken).state is not Preparation.PREPARING and backend.prepare(broken))
    assert prepared.state is Preparation.FAILED and "modelport-no-such-package" in prepared.reason


def test_removing_leaves_nothing_running(world):
    backend = world[0]
    replicas = converge(backend, spec(world, "green-1", 1, service="other"), ready=1)
    backend.remove("contract", "blue-1")
    assert "blue-1" not in backend.versions("contract") and backend.observe("contract", "blue-1") == []
    backend.remove("other")
    assert "other" not in backend.services()
    host, port = replicas[0].address

    def refused() -> bool:
        try:
            httpx.get(f"http://{host}:{port}/-/live", timeout=2)
        except httpx.TransportError:
            return True
        return False

    assert refused() if STOPS_IN_REMOVE[world.kind] else wait_for(refused, timeout=60)
