"""The backend contract: what the reconciler relies on from any backend, run against each one.

Every backend (``local`` now; the Kubernetes backend joins ``BACKENDS``) must: prepare a replica
set in the background and say when it is ready or why it failed; run exactly the replicas asked
for, each reachable at its address once ready; restart a replica that dies; report an ``init()``
failure and not restart it; scale down; give the replicas' logs; remove a replica set or a whole
service with nothing left running. Real processes and real HTTP; waits are bounded.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from modelport import backends
from modelport.packaging.snapshot import snapshot
from modelport.reconcile.backend import Backend, Preparation, ReplicaSetSpec
from modelport.store.artifacts import LocalArtifactStore
from tests.traffic import wait_until

APP = Path(__file__).resolve().parents[1] / "fixtures" / "deploy_app"
ENVIRONMENT = {"name": "contract-env", "python": {"condaDependencies": {"dependencies": []}}}
BACKENDS = ["local"]


def kill_local(backend, service: str, replica_set: str, index: int) -> None:
    """SIGKILL a local replica (its supervisor)."""
    [replica] = [r for r in backend.observe(service, replica_set) if r.index == index]
    os.kill(replica.pid, signal.SIGKILL)


KILL = {"local": kill_local}


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
    backend = backends.for_target(request.param, root, artifacts, root / "envs", root / "logs")
    yield backend, KILL[request.param], app, model
    for service in backend.services():
        backend.remove(service)


def spec(world, replica_set: str, replicas: int, service: str = "contract", **env: str) -> ReplicaSetSpec:
    _, _, app, model = world
    return ReplicaSetSpec(service=service, replica_set=replica_set, environment=ENVIRONMENT, snapshot=app,
                          models=(model,), entry_script="score.py", replicas=replicas, env=dict(env),
                          probe_period_s=1)


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


def test_a_replica_that_dies_is_restarted(world):
    backend, kill = world[0], world[1]
    wanted = spec(world, "blue-1", 2)
    before = {r.index: r.pid for r in converge(backend, wanted, ready=2)}
    kill(backend, "contract", "blue-1", 0)

    def replaced():  # passes go on until replica 0 is a new, ready process (the old one may linger briefly)
        backend.apply(wanted)
        return next((r for r in backend.observe("contract", "blue-1")
                     if r.index == 0 and r.ready and r.pid not in (None, before[0])), None)

    restarted = wait_for(replaced)
    assert restarted and restarted.restarts == 1, backend.observe("contract", "blue-1")
    assert next(r for r in backend.observe("contract", "blue-1") if r.index == 1).pid == before[1]


def test_scaling_down_stops_the_extra_replicas(world):
    backend = world[0]
    replicas = converge(backend, spec(world, "blue-1", 1), ready=1)
    assert [r.index for r in replicas] == [0]


def test_an_init_failure_is_reported_and_not_restarted(world):
    backend = world[0]
    failing = spec(world, "red-1", 1, FAIL_INIT="1")
    assert wait_for(lambda: backend.prepare(failing).state is Preparation.READY)

    def failed():
        backend.apply(failing)
        return [r for r in backend.observe("contract", "red-1") if r.init_failed]

    [replica] = wait_for(failed, timeout=60)
    assert replica.restarts == 0 and not replica.ready
    backend.apply(failing)
    assert [r.restarts for r in backend.observe("contract", "red-1")] == [0]
    assert "init exploded on purpose" in backend.logs("contract", "red-1")


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
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://{host}:{port}/-/live", timeout=2)
