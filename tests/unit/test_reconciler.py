"""The reconciler's transitions, with a fake backend and a fake front end over a real (SQLite) store.

The fake backend prepares a replica set at once (or fails it, when its environment says so),
so each test drives replicas' readiness by hand and checks the state, the reason and the
routes the reconciler gives the front end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from modelport.errors import ModelportError
from modelport.reconcile import reconciler as reconciler_module
from modelport.reconcile.backend import INIT_FAILED_EXIT_CODE, Preparation, Prepared, ReplicaSetSpec, ReplicaState
from modelport.reconcile.reconciler import FrontEndStarting, Reconciler
from modelport.spec import Endpoint, EndpointVersion, State
from modelport.store.db import Store

DEPLOY = {"scoring_timeout_ms": 60000, "auth_enabled": True, "token_auth_enabled": False,
          "replica_max_concurrent_requests": 1, "max_request_wait_time": 500, "autoscale_enabled": False,
          "num_replicas": 1, "autoscale_target_utilization": 70, "autoscale_refresh_seconds": 1}
V1, V2 = "default-1", "default-2"  # a web service's replica sets: its one version, "default", and generation


@dataclass
class FakeReplica:
    ready: bool = False
    exit_code: int | None = None
    restarts: int = 0
    port: int = 0


@dataclass
class FakeBackend:
    """Replicas as plain objects: ``apply`` adds missing ones (not ready) and drops extras."""

    replicas: dict[tuple[str, str], list[FakeReplica]] = field(default_factory=dict)
    removed: list[tuple[str, str | None]] = field(default_factory=list)
    fail_apply: set[str] = field(default_factory=set)
    next_port: int = 6000

    prepared: list[str] = field(default_factory=list)
    preparing: bool = False  # every preparation still running (as just after a control plane restart)
    diagnoses: dict[str, tuple[State, str]] = field(default_factory=dict)  # what the platform says, by replica set

    def prepare(self, spec: ReplicaSetSpec) -> Prepared:
        if spec.key not in self.prepared:
            self.prepared.append(spec.key)
        build = spec.environment.get("environmentVariables", {}).get("FAKE_BUILD", "")
        if build.startswith("fail: "):
            return Prepared(Preparation.FAILED, build.removeprefix("fail: "))
        if build == "long" or self.preparing:
            return Prepared(Preparation.PREPARING, "building the environment and laying out the app")
        return Prepared(Preparation.READY)

    def resource_notes(self, spec: ReplicaSetSpec) -> list[str]:
        return [f"{spec.cpu_limit} cores"] if spec.cpu_limit else []

    applied: list[str] = field(default_factory=list)  # the services apply() was called for, in order

    def apply(self, spec: ReplicaSetSpec) -> None:
        self.applied.append(spec.service)
        if spec.service in self.fail_apply:
            raise RuntimeError(f"backend exploded for {spec.service}")
        current = self.replicas.setdefault((spec.service, spec.replica_set), [])
        while len(current) < spec.replicas:
            self.next_port += 1
            current.append(FakeReplica(port=self.next_port))
        del current[spec.replicas:]

    def observe(self, service: str, version: str) -> list[ReplicaState]:
        return [ReplicaState(i, 100 + i, ("127.0.0.1", r.port), r.ready, r.exit_code, r.restarts, Path("/dev/null"))
                for i, r in enumerate(self.replicas.get((service, version), []))]

    def services(self) -> list[str]:
        return sorted({s for s, _ in self.replicas})

    def versions(self, service: str) -> list[str]:
        return sorted(v for s, v in self.replicas if s == service)

    def remove(self, service: str, version: str | None = None) -> None:
        self.removed.append((service, version))
        for key in [k for k in self.replicas if k[0] == service and version in (None, k[1])]:
            del self.replicas[key]

    def logs(self, service: str, version: str, num_lines: int = 5000) -> str:
        return "Traceback (most recent call last):\nRuntimeError: init exploded on purpose"

    def diagnose(self, spec: ReplicaSetSpec, replicas: list[ReplicaState]) -> tuple[State, str] | None:
        return self.diagnoses.get(spec.replica_set)

    def set(self, service: str, version: str, *states: FakeReplica | bool) -> None:
        for replica, state in zip(self.replicas[(service, version)], states, strict=True):
            if isinstance(state, bool):
                replica.ready, replica.exit_code = state, None
            else:
                replica.ready, replica.exit_code, replica.restarts = state.ready, state.exit_code, state.restarts


@dataclass
class FakeFrontEnd:
    running: bool = False
    applied: list[list[dict]] = field(default_factory=list)
    fail: bool = False
    problems: dict[str, str] = field(default_factory=dict)  # service -> why a request through its route failed
    starting: str = ""  # while set, the front end is being made (ensure_running says so)

    def ensure_running(self) -> bool:
        if self.starting:
            raise FrontEndStarting(self.starting)
        if self.running:
            return False
        self.running = True
        return True

    def apply(self, routes: list[dict]) -> None:
        if self.fail:
            raise ModelportError("envoy refused the configuration: boom")
        self.running = True
        self.applied.append(routes)

    def route_problems(self) -> dict[str, str]:
        return dict(self.problems)

    def route(self, service: str):
        return next(r for r in self.applied[-1] if r.name == service)

    def endpoints(self, service: str) -> list[tuple[str, int]]:
        """The ready replicas the front end got for the service's (one) version."""
        return self.route(service).versions[0].endpoints

    def serving(self, service: str) -> str:
        """The replica set taking the service's traffic."""
        return self.route(service).versions[0].replica_set


@pytest.fixture
def world(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'ws.db'}")
    backend, front = FakeBackend(), FakeFrontEnd()
    reconciler = Reconciler(store, backend, replica_count=lambda endpoint, version: version.deploy["replicas"],
                            front_end=front)
    return store, backend, front, reconciler


def deploy(store, name: str, replicas: int = 2, generation: int = 1, update: bool = False,
           build_error: str | None = None, building: bool = False) -> None:
    """Store a web service (an endpoint with one version) whose version runs ``replicas`` replicas."""
    fake_build = f"fail: {build_error}" if build_error else "long" if building else ""
    environment = {"name": "env", "environmentVariables": {"FAKE_BUILD": fake_build} if fake_build else {}}
    version = EndpointVersion("default", (), "score.py", "0" * 64, environment, {**DEPLOY, "replicas": replicas},
                              generation=generation, is_default=True, is_control=True)
    endpoint = Endpoint(name, (version,), keys={"primary": "k" * 16, "secondary": "s" * 16})
    store.put_service(name, endpoint.to_dict(), [], create=not update)


def observed(store, name: str) -> tuple[str, dict]:
    record = store.get_service(name)
    return record.state, record.status


def test_a_new_service_is_routed_at_once_and_serves_each_replica_as_it_becomes_ready(world):
    store, backend, front, reconciler = world
    deploy(store, "svc")
    reconciler.reconcile_once()
    state, status = observed(store, "svc")
    assert (state, status["reason"]) == ("Transitioning", "0 of 2 replicas ready (init() running)")
    assert front.endpoints("svc") == []  # routed: 503 "no ready replica", never 404
    backend.set("svc", V1, True, False)
    reconciler.reconcile_once()
    assert observed(store, "svc")[0] == "Transitioning"
    assert front.endpoints("svc") == [("127.0.0.1", 6001)]
    backend.set("svc", V1, True, True)
    reconciler.reconcile_once()
    state, status = observed(store, "svc")
    assert (state, status["ready_replicas"], status["front_end"]) == ("Healthy", 2, "serving")
    assert front.endpoints("svc") == [("127.0.0.1", 6001), ("127.0.0.1", 6002)]


def test_a_lost_replica_leaves_the_ready_one_routed_and_the_service_healthy(world):
    store, backend, front, reconciler = world
    deploy(store, "svc")
    reconciler.reconcile_once()
    backend.set("svc", V1, True, True)
    reconciler.reconcile_once()
    backend.set("svc", V1, True, FakeReplica(ready=False, exit_code=-9, restarts=1))
    reconciler.reconcile_once()
    state, status = observed(store, "svc")
    assert (state, status["reason"]) == ("Healthy", "1 of 2 replicas ready; 1 restarting")
    assert front.endpoints("svc") == [("127.0.0.1", 6001)]
    backend.set("svc", V1, FakeReplica(ready=False, exit_code=-9, restarts=1),
                FakeReplica(ready=False, exit_code=-9, restarts=1))
    reconciler.reconcile_once()
    state, status = observed(store, "svc")
    assert state == "Unhealthy" and "2 replica(s) exited and are being restarted" in status["reason"]
    assert front.endpoints("svc") == []  # still routed: 503 with a message


def test_init_failure_fails_the_service_with_the_log_tail(world):
    store, backend, front, reconciler = world
    deploy(store, "svc", replicas=1)
    reconciler.reconcile_once()
    backend.set("svc", V1, FakeReplica(ready=False, exit_code=INIT_FAILED_EXIT_CODE))
    reconciler.reconcile_once()
    state, status = observed(store, "svc")
    assert state == "Failed"
    assert "not restarted until the service is updated" in status["reason"]
    assert status["reason"].endswith("RuntimeError: init exploded on purpose")


def test_a_failed_build_fails_the_service_with_its_reason(world):
    store, backend, front, reconciler = world
    deploy(store, "svc", build_error="pip could not find modelport-no-such-package")
    reconciler.reconcile_once()
    reconciler.reconcile_once()
    state, status = observed(store, "svc")
    assert (state, status["reason"]) == ("Failed", "pip could not find modelport-no-such-package")
    assert backend.prepared == [f"svc/{V1}"]
    assert front.endpoints("svc") == []


def test_a_rolling_update_keeps_the_old_version_until_the_new_one_is_ready(world, monkeypatch):
    store, backend, front, reconciler = world
    deploy(store, "svc")
    reconciler.reconcile_once()
    backend.set("svc", V1, True, True)
    reconciler.reconcile_once()
    deploy(store, "svc", generation=2, update=True)
    reconciler.reconcile_once()
    assert (front.serving("svc"), observed(store, "svc")[0]) == (V1, "Transitioning")
    backend.set("svc", V2, True, False)  # half ready: the old version keeps all the traffic
    reconciler.reconcile_once()
    assert front.serving("svc") == V1
    backend.set("svc", V2, True, True)
    reconciler.reconcile_once()
    assert (front.serving("svc"), observed(store, "svc")[0]) == (V2, "Healthy")
    assert ("svc", V1) not in backend.removed  # stopped only after the retire grace
    monkeypatch.setattr(reconciler_module, "RETIRE_GRACE_S", 0.0)
    reconciler._retiring.clear()
    reconciler.reconcile_once()
    assert ("svc", V1) in backend.removed


def test_a_front_end_that_refuses_the_routes_makes_healthy_services_unhealthy_until_it_takes_them(world):
    store, backend, front, reconciler = world
    deploy(store, "svc", replicas=1)
    reconciler.reconcile_once()
    backend.set("svc", V1, True)
    front.fail = True
    reconciler.reconcile_once()
    state, status = observed(store, "svc")
    assert state == "Unhealthy" and "envoy refused the configuration: boom" in status["reason"]
    assert status["front_end"].startswith("the front end cannot route the services")
    front.fail = False
    reconciler.reconcile_once()
    assert observed(store, "svc")[0] == "Healthy"


def test_a_dead_front_end_is_started_again_and_given_the_same_routes(world):
    store, backend, front, reconciler = world
    deploy(store, "svc", replicas=1)
    reconciler.reconcile_once()
    backend.set("svc", V1, True)
    reconciler.reconcile_once()
    routes = front.applied[-1]
    calls = len(front.applied)
    reconciler.reconcile_once()
    assert len(front.applied) == calls  # nothing changed: nothing applied
    front.running = False  # Envoy died
    reconciler.reconcile_once()
    assert front.running and front.applied[-1] == routes and len(front.applied) == calls + 1


def test_one_service_failing_to_reconcile_does_not_stop_the_others(world):
    store, backend, front, reconciler = world
    deploy(store, "bad", replicas=1)
    deploy(store, "good", replicas=1)
    backend.fail_apply.add("bad")
    reconciler.reconcile_once()
    backend.set("good", V1, True)
    reconciler.reconcile_once()
    assert observed(store, "good")[0] == "Healthy"
    state, status = observed(store, "bad")
    assert state == "Unhealthy" and "backend exploded for bad" in status["reason"]
    assert [r.name for r in front.applied[-1]] == ["good"]


def test_scaling_and_deletion_reach_the_backend(world):
    store, backend, front, reconciler = world
    deploy(store, "svc", replicas=1)
    reconciler.reconcile_once()
    deploy(store, "svc", replicas=3, update=True)
    reconciler.reconcile_once()
    assert len(backend.replicas[("svc", V1)]) == 3
    backend.set("svc", V1, True, True, True)
    reconciler.reconcile_once()
    store.delete_service("svc")
    reconciler.reconcile_once()
    assert ("svc", None) in backend.removed and front.applied[-1] == []
    deploy(store, "svc", replicas=2)  # the same name again: a new service, not the deleted one's state
    reconciler.reconcile_once()
    backend.set("svc", V1, True, False)
    reconciler.reconcile_once()
    assert observed(store, "svc")[0] == "Transitioning"


def endpoint_of(name: str, *versions: tuple[str, float, bool, float], generation: int = 1) -> Endpoint:
    """An endpoint whose versions are ``(name, traffic_percentile, is_default, mirror_percentile)``, 1 replica each."""
    made = tuple(EndpointVersion(v, (), "score.py", "0" * 64, {"name": "env"}, {**DEPLOY, "replicas": 1},
                                 generation=generation, traffic_percentile=share, is_default=default,
                                 is_control=default, mirror_percentile=mirror)
                 for v, share, default, mirror in versions)
    return Endpoint(name, made, kind="endpoint", keys={"primary": "k" * 16, "secondary": "s" * 16})


def shares(front, name: str) -> dict[str, tuple[float, float, int]]:
    """``{version: (weight, mirror share, ready replicas)}`` as the front end was last told."""
    return {v.name: (v.weight, v.mirror_percent, len(v.endpoints)) for v in front.route(name).versions}


def test_versions_get_their_shares_once_ready_and_lend_them_to_the_default_before(world):
    store, backend, front, reconciler = world
    store.put_service("ep", endpoint_of("ep", ("blue", 0, True, 0), ("green", 30, False, 0),
                                        ("shadow", 0, False, 25)).to_dict(), [], create=True)
    reconciler.reconcile_once()
    backend.set("ep", "blue-1", True)
    reconciler.reconcile_once()
    assert shares(front, "ep") == {"blue": (100, 0, 1), "green": (0, 0, 0), "shadow": (0, 25, 0)}
    backend.set("ep", "green-1", True)
    backend.set("ep", "shadow-1", True)
    reconciler.reconcile_once()
    assert shares(front, "ep") == {"blue": (70, 0, 1), "green": (30, 0, 1), "shadow": (0, 25, 1)}
    state, status = observed(store, "ep")
    assert state == "Healthy" and set(status["versions"]) == {"blue", "green", "shadow"}


def test_an_updated_version_keeps_its_old_replica_set_routed_until_the_new_one_is_ready(world):
    store, backend, front, reconciler = world
    store.put_service("ep", endpoint_of("ep", ("blue", 50, True, 0), ("green", 50, False, 0)).to_dict(), [],
                      create=True)
    reconciler.reconcile_once()
    backend.set("ep", "blue-1", True)
    backend.set("ep", "green-1", True)
    reconciler.reconcile_once()
    updated = endpoint_of("ep", ("blue", 50, True, 0), ("green", 50, False, 0))
    updated = updated.with_versions([updated.versions[0], EndpointVersion(**{**vars(updated.versions[1]),
                                                                            "generation": 2})])
    store.put_service("ep", updated.to_dict(), [], create=False)
    reconciler.reconcile_once()
    green = next(v for v in front.route("ep").versions if v.name == "green")
    assert (green.replica_set, green.weight) == ("green-1", 50)
    backend.set("ep", "green-2", True)
    reconciler.reconcile_once()
    green = next(v for v in front.route("ep").versions if v.name == "green")
    assert green.replica_set == "green-2"


def test_replica_sets_of_an_earlier_modelport_serve_until_the_default_version_is_ready(world, monkeypatch):
    store, backend, front, reconciler = world
    backend.replicas[("old", "v3")] = [FakeReplica(ready=True, port=7001)]  # left by the web-service schema
    deploy(store, "old", replicas=1, generation=3)
    reconciler.reconcile_once()
    assert (front.serving("old"), front.endpoints("old")) == ("v3", [("127.0.0.1", 7001)])
    monkeypatch.setattr(reconciler_module, "RETIRE_GRACE_S", 0.0)
    backend.set("old", "default-3", True)
    reconciler.reconcile_once()
    reconciler.reconcile_once()
    assert front.serving("old") == "default-3" and ("old", "v3") in backend.removed


def test_a_long_build_holds_up_nothing_and_the_old_replica_set_serves_meanwhile(world):
    store, backend, front, reconciler = world
    deploy(store, "svc", replicas=1)
    reconciler.reconcile_once()
    backend.set("svc", V1, True)
    reconciler.reconcile_once()
    deploy(store, "svc", replicas=1, generation=2, update=True, building=True)  # an update whose build is long
    deploy(store, "other", replicas=1)
    reconciler.reconcile_once()
    backend.set("other", V1, True)
    reconciler.reconcile_once()
    state, status = observed(store, "svc")
    assert (state, status["reason"]) == ("Transitioning", "building the environment and laying out the app")
    assert (front.serving("svc"), front.endpoints("svc")) == (V1, [("127.0.0.1", 6001)])
    assert observed(store, "other")[0] == "Healthy"  # deployed while the other one builds


def test_a_restarted_control_plane_serves_the_replicas_it_finds_while_it_prepares_again(world):
    store, backend, front, reconciler = world
    deploy(store, "svc", replicas=1)
    reconciler.reconcile_once()
    backend.set("svc", V1, True)
    reconciler.reconcile_once()
    backend.preparing = True
    restarted = Reconciler(store, backend, replica_count=lambda endpoint, version: version.deploy["replicas"],
                           front_end=front)
    restarted.reconcile_once()
    assert observed(store, "svc")[0] == "Healthy"
    assert (front.serving("svc"), front.endpoints("svc")) == (V1, [("127.0.0.1", 6001)])


def test_each_compute_target_has_its_reconciler_and_an_unattached_target_fails_with_the_fix(world):
    store, backend, front, local = world
    for name, target in (("remote", "myk8s"), ("stray", "detached")):
        endpoint = endpoint_of(name, ("blue", 0, True, 0))
        store.put_service(name, {**endpoint.to_dict(), "compute_target": target}, [], create=True)
    deploy(store, "here")
    cluster_backend, cluster_front = FakeBackend(), FakeFrontEnd()
    on_cluster = Reconciler(store, cluster_backend, replica_count=lambda endpoint, version: 1,
                            front_end=cluster_front, compute_target="myk8s")
    local.adopts = lambda target: target not in ("local", "myk8s")  # the attached targets
    local.reconcile_once()
    on_cluster.reconcile_once()
    assert [r.name for r in front.applied[-1]] == ["here"] and [r.name for r in cluster_front.applied[-1]] == ["remote"]
    assert backend.versions("remote") == [] and cluster_backend.versions("remote") == ["blue-1"]
    state, status = observed(store, "stray")
    assert (state, status["reason"]) == ("Failed", "compute target 'detached' is not attached to this workspace; "
                                                   "attach it again, or delete the service and redeploy it")
    assert observed(store, "remote")[0] == "Transitioning"


def test_what_the_platform_says_is_wrong_is_the_state_and_reason_until_the_replicas_are_ready(world):
    store, backend, front, reconciler = world
    deploy(store, "svc")
    backend.diagnoses[V1] = (State.TRANSITIONING, "0/3 nodes are available: 3 Insufficient cpu")
    reconciler.reconcile_once()
    assert observed(store, "svc")[0] == "Transitioning"
    assert observed(store, "svc")[1]["reason"] == "0/3 nodes are available: 3 Insufficient cpu"
    backend.set("svc", V1, True, False)
    reconciler.reconcile_once()
    assert observed(store, "svc")[1]["reason"] == "0/3 nodes are available: 3 Insufficient cpu"
    backend.set("svc", V1, True, True)
    reconciler.reconcile_once()
    backend.set("svc", V1, True, False)
    backend.diagnoses[V1] = (State.UNHEALTHY, "replica killed for memory: raise memory_gb_limit (0.5)")
    reconciler.reconcile_once()
    state, status = observed(store, "svc")
    assert state == "Healthy" and status["reason"] == ("1 of 2 replicas ready; replica killed for memory: raise "
                                                   "memory_gb_limit (0.5)")


def test_the_backend_factory_knows_local_and_refuses_other_kinds(tmp_path):
    from modelport import backends
    from modelport.backends.local import LocalBackend
    from modelport.errors import InvalidInput

    made = backends.for_target("local", tmp_path, None, tmp_path / "envs", tmp_path / "logs")
    assert isinstance(made, LocalBackend) and made.root == tmp_path / "replicas"
    with pytest.raises(InvalidInput, match="compute target kind 'kubernetes' has no backend in this modelport yet"):
        backends.for_target("kubernetes", tmp_path, None, tmp_path / "envs", tmp_path / "logs")


def test_passes_come_fast_while_things_change_and_slowly_once_all_is_steady(world):
    store, backend, front, reconciler = world
    deploy(store, "svc", replicas=1)
    assert reconciler.reconcile_once() == reconciler_module.BUSY_INTERVAL_S  # starting
    backend.set("svc", V1, True)
    assert reconciler.reconcile_once() == reconciler_module.STEADY_INTERVAL_S
    backend.set("svc", V1, FakeReplica(ready=False, exit_code=-9, restarts=1))
    assert reconciler.reconcile_once() == reconciler_module.BUSY_INTERVAL_S  # restarting


def test_each_endpoint_is_reconciled_on_its_own_schedule_or_when_woken(world):
    store, backend, front, reconciler = world
    deploy(store, "steady", replicas=1)
    deploy(store, "busy", replicas=1)
    reconciler.reconcile_once()
    backend.set("steady", V1, True)
    reconciler.reconcile_once()  # steady: next pass in STEADY_INTERVAL_S; busy (not ready): BUSY_INTERVAL_S
    backend.applied.clear()
    later = time.monotonic() + reconciler_module.BUSY_INTERVAL_S  # the busy one is due, the steady one is not
    reconciler.reconcile_due(set(), now=later)
    assert backend.applied == ["busy"]
    assert front.endpoints("steady") == [("127.0.0.1", 6002)]  # still routed from its last pass
    backend.applied.clear()
    reconciler.reconcile_due({"steady"}, now=later)  # an operation changed it
    assert "steady" in backend.applied


def test_an_unchanged_observation_is_not_written_again_but_a_saved_change_is_answered(world):
    store, backend, front, reconciler = world
    deploy(store, "svc", replicas=1)
    reconciler.reconcile_once()
    backend.set("svc", V1, True)
    reconciler.reconcile_once()
    first = store.get_service("svc").updated_at
    reconciler.reconcile_once()
    assert store.get_service("svc").updated_at == first  # nothing changed: nothing written
    endpoint = store.get_service("svc").endpoint  # an operation saves it (the store says Transitioning)
    store.put_service("svc", {**endpoint.to_dict(), "revision": endpoint.revision + 1}, [], create=False)
    assert store.get_service("svc").state == "Transitioning"
    reconciler.reconcile_once()
    assert store.get_service("svc").state == "Healthy"


def test_a_default_version_with_no_ready_replica_lends_its_share_to_the_versions_that_can_answer(world):
    store, backend, front, reconciler = world
    store.put_service("ep", endpoint_of("ep", ("blue", 20, False, 0), ("slow", 0, True, 0)).to_dict(), [],
                      create=True)
    reconciler.reconcile_once()
    backend.set("ep", "blue-1", True)  # the new default ("slow") is still starting, or failed
    reconciler.reconcile_once()
    assert shares(front, "ep") == {"blue": (100, 0, 1), "slow": (0, 0, 0)}


def test_a_healthy_service_whose_route_fails_a_request_is_unhealthy_naming_the_layer_until_it_answers(world):
    store, backend, front, reconciler = world
    deploy(store, "svc", replicas=1)
    reconciler.reconcile_once()
    backend.set("svc", V1, True)
    front.problems["svc"] = "route: the front end answered 503 to a request through /api/v1/service/svc"
    reconciler.reconcile_once()
    state, status = observed(store, "svc")
    assert (state, status["reason"]) == ("Unhealthy", front.problems["svc"])
    front.problems.clear()
    reconciler.reconcile_once()
    assert observed(store, "svc") == ("Healthy", {**observed(store, "svc")[1], "reason": ""})


def test_services_wait_in_transitioning_while_their_front_end_is_being_made(world):
    store, backend, front, reconciler = world
    deploy(store, "svc", replicas=1)
    front.starting = "the front end is being made: building image localhost/modelport-frontend:abc"
    reconciler.reconcile_once()
    backend.set("svc", V1, True)
    reconciler.reconcile_once()
    state, status = observed(store, "svc")
    assert (state, status["reason"]) == ("Transitioning", front.starting)
    front.starting = ""
    reconciler.reconcile_once()
    assert observed(store, "svc")[0] == "Healthy" and front.endpoints("svc") == [("127.0.0.1", 6001)]


def test_a_platform_that_cannot_be_reached_is_logged_once_and_each_service_says_why(world, caplog):
    store, backend, front, reconciler = world
    deploy(store, "svc")

    def unreachable(*args, **kwargs):
        raise ModelportError("cannot reach the Kubernetes API at https://10.0.0.1:6443: timeout")

    backend.prepare = backend.services = unreachable
    with caplog.at_level("WARNING", logger="modelport.reconciler"):
        for _ in range(5):
            reconciler.reconcile_once()
    state, status = observed(store, "svc")
    assert (state, status["reason"]) == ("Unhealthy", "the control plane could not reconcile it: cannot reach the "
                                                      "Kubernetes API at https://10.0.0.1:6443: timeout")
    assert len(caplog.records) == 2  # one line each for the service and the clean-up, not one every pass
    assert all(record.exc_info is None for record in caplog.records)  # a known failure needs no traceback
