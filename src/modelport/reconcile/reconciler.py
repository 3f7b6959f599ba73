"""The reconciler: desired endpoints (``spec.Endpoint``) → replica sets, routes and observed states.

Each pass, for every endpoint (each in its own error boundary), for every version: have the
backend prepare its replica set (``<version>-<generation>``: environment, app; background work
the pass never waits for), make it run the wanted number of replicas once prepared, and record
its state with a reason:
``Transitioning``, ``Healthy``, ``Unhealthy`` (replicas crashed after having served, or the
front end cannot route it) or ``Failed`` (the environment build or ``init()`` failed; the
reason holds the log tail). An endpoint's state is its versions' worst (a web service's is its
one version's).

Routing: every endpoint that exists is routed, so a request never meets a 404 for it (with no
ready replica the front end answers 503). A replica set is *promoted* once all its replicas were
ready at the same time; until then the version's previous replica set keeps its traffic (a
rolling update), and once promoted it keeps the traffic with whatever replicas are ready while
others restart. A version with no ready replica yet lends its share to the default version.
Replica sets no version uses any more stop ``RETIRE_GRACE_S`` after their version's successor
(or, for those of no version, the default version) was promoted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..environments.spec import EnvironmentSpec
from ..errors import ModelportError
from ..frontend.routes import ServiceRoute
from ..spec import LOCAL_TARGET, Endpoint, EndpointVersion, State
from ..spec.endpoint import replica_set_owner
from ..store.db import Store
from .autoscale import AutoscaleSettings
from .backend import Backend, Preparation, ReplicaSetSpec, ReplicaState
from .front_end_port import FrontEndPort, FrontEndStarting
from .service_route import VersionObserved, endpoint_state, service_route

logger = logging.getLogger("modelport.reconciler")

LOG_TAIL_LINES = 30
RETIRE_GRACE_S = 2.0
BUSY_INTERVAL_S = 0.5  # between passes while something changes
BATCH_S = 0.25  # an endpoint due this soon is reconciled with the ones due now
STEADY_INTERVAL_S = 2.0  # between passes when every endpoint is steady
REPEAT_WARNING_S = 300.0  # the same warning is logged again after this long at the earliest
WAIT_ROUTED_S = 120.0  # how long an operation waits for the front end (a pass may be building an environment)


class Reconciler:
    """Converges endpoints to their desired state; ``run_forever`` in a thread, or ``reconcile_once``.

    ``replica_count(endpoint, version)`` gives the replicas a version should run (fixed, or the
    autoscaler's decision); ``front_end`` (optional) is given the routes. It reconciles the endpoints on
    ``compute_target``, and marks Failed those on a target that ``adopts(target)`` says no reconciler runs
    (one that is not attached any more)."""

    def __init__(self, store: Store, backend: Backend, replica_count: Callable[[Endpoint, EndpointVersion], int],
                 front_end: FrontEndPort | None = None, compute_target: str = LOCAL_TARGET,
                 adopts: Callable[[str], bool] = lambda target: False):
        self.store = store
        self.compute_target = compute_target
        self.adopts = adopts
        self.backend = backend
        self.front_end = front_end
        self.replica_count = replica_count
        self.routes: list[ServiceRoute] | None = None  # what the front end serves; None: unknown, apply again
        self._promoted: dict[tuple[str, str], str] = {}  # (endpoint, version) -> replica set taking its traffic
        self._retiring: dict[tuple[str, str], float] = {}  # (endpoint, replica set) -> when to stop it
        self._routed: dict[str, int] = {}  # endpoint -> the revision the front end serves
        self._routed_changed = threading.Condition()
        self._last: dict[str, tuple[ServiceRoute | None, State, dict]] = {}  # endpoint -> its last pass's result
        self._due: dict[str, float] = {}  # endpoint -> monotonic time of its next pass
        self._revision: dict[str, int] = {}  # endpoint -> the revision its last pass saw
        self._written: dict[str, tuple[str, dict]] = {}  # endpoint -> the state and status last written
        self._variables: dict[str, dict[str, str]] = {}  # replica set key -> its environment's variables
        self._front_end_error: str | None = None
        self._front_end_starting = False  # the error is FrontEndStarting: services wait, they are not unhealthy
        self._warned: dict[str, float] = {}  # warning -> when it was last logged
        self._woken: set[str] = set()  # endpoints an operation changed: reconciled at the next iteration
        self._woken_all = False
        self._woken_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()

    def run_forever(self) -> None:
        """Reconcile until ``stop()``. Each endpoint has its own schedule: a pass every ``BUSY_INTERVAL_S``
        while it changes (starting, restarting, building, unroutable), every ``STEADY_INTERVAL_S`` (or its
        autoscaled versions' refresh period) once steady, and at once when ``wake(name)`` says an operation
        changed it. So idle endpoints cost little and a deploy's passes do not walk all the others. A dead
        replica leaves rotation at its first refused connection (the front end); its endpoint's next pass
        restarts it."""
        while not self._stop.is_set():
            wait_s = BUSY_INTERVAL_S
            try:
                with self._woken_lock:
                    woken, everything = self._woken, self._woken_all
                    self._woken, self._woken_all = set(), False
                wait_s = self.reconcile_due(woken, everything)
            except ModelportError as err:  # a platform that cannot be reached: said once, not every pass
                self._warn(f"reconcile pass on {self.compute_target} failed (retrying): {err}")
            except Exception:
                logger.exception("reconcile pass failed; retrying")
            self._wake.wait(wait_s)
            self._wake.clear()

    def wake(self, name: str | None = None) -> None:
        """Reconcile ``name`` (every endpoint when None) now, after an operation changed it."""
        with self._woken_lock:
            if name is None:
                self._woken_all = True
            else:
                self._woken.add(name)
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def wait_routed(self, name: str, revision: int, timeout_s: float = WAIT_ROUTED_S) -> None:
        """Return once the front end serves revision ``revision`` (or later) of endpoint ``name``.

        Raises ModelportError when that does not happen within ``timeout_s`` seconds."""
        self.wake(name)
        deadline = time.monotonic() + timeout_s
        with self._routed_changed:
            while self._routed.get(name, 0) < revision:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ModelportError(f"the change to '{name}' is saved, but the front end did not apply it "
                                         f"within {timeout_s:.0f} s; see the control plane's log")
                self._routed_changed.wait(remaining)

    def reconcile_once(self) -> float:
        """One pass over every endpoint; the seconds until one is due again (see ``reconcile_due``)."""
        return self.reconcile_due(set(), everything=True)

    def reconcile_due(self, woken: set[str], everything: bool = False, now: float | None = None) -> float:
        """Reconcile the endpoints that are due at ``now`` (monotonic seconds; default: the clock's), woken (or
        all, with ``everything``), route all of them (the others with their last routes), record what was
        observed; the seconds until the next is due."""
        now = time.monotonic() if now is None else now
        endpoints = [endpoint for endpoint in (record.endpoint for record in self.store.list_services())
                     if endpoint.compute_target == self.compute_target or self.adopts(endpoint.compute_target)]
        names = {e.name for e in endpoints}
        passed = set()
        for endpoint in endpoints:
            # endpoints due within BATCH_S go along, so steady ones fall into step and share one pass
            if everything or endpoint.name in woken or self._due.get(endpoint.name, 0.0) <= now + BATCH_S:
                self._last[endpoint.name] = self._reconcile_bounded(endpoint)
                self._due[endpoint.name] = now + self._interval(endpoint, *self._last[endpoint.name][1:])
                if self._revision.get(endpoint.name) != endpoint.revision:  # an operation saved it (and reset
                    self._written.pop(endpoint.name, None)                   # its state): write what is seen
                self._revision[endpoint.name] = endpoint.revision
                passed.add(endpoint.name)
        for gone in set(self._last) - names:  # a new endpoint of that name starts afresh
            for table in (self._last, self._due, self._revision, self._written):
                table.pop(gone, None)
            for key in [k for k in self._variables if k.startswith(f"{gone}/")]:
                del self._variables[key]
        front_end_error = self._route([route for e in endpoints if (route := self._last[e.name][0]) is not None])
        if front_end_error != self._front_end_error:  # every endpoint's status says it
            passed, self._front_end_error = names, front_end_error
        problems = self._route_problems() if front_end_error is None else {}
        for name in passed:
            route, state, status = self._last[name]
            if front_end_error and state in (State.HEALTHY, State.TRANSITIONING):
                waiting = State.TRANSITIONING if self._front_end_starting else State.UNHEALTHY
                state, status = waiting, {**status, "reason": front_end_error}
                self._due[name] = now + BUSY_INTERVAL_S
            elif name in problems and state is State.HEALTHY:  # Healthy means a request got through the route
                state, status = State.UNHEALTHY, {**status, "reason": problems[name]}
                self._due[name] = now + BUSY_INTERVAL_S
            observed = (state.value, {**status, "front_end": front_end_error or "serving"})
            if self._written.get(name) != observed:  # the store is written (and read) only when it changed
                self.store.set_service_status(name, *observed)
                self._written[name] = observed
        if front_end_error is None:
            self._mark_routed({name: self._revision[name] for name in names})
        try:
            for stale in set(self.backend.services()) - names:
                self.backend.remove(stale)
        except ModelportError as err:  # e.g. the cluster cannot be reached: the endpoints' states say so
            self._warn(f"could not remove the replicas of deleted services on {self.compute_target}: {err}")
        for key in [k for k in self._promoted if k[0] not in names]:
            del self._promoted[key]
        if self._retiring:
            return BUSY_INTERVAL_S
        return max(0.05, min([STEADY_INTERVAL_S] + [due - now for due in self._due.values()]))

    def _reconcile_bounded(self, endpoint: Endpoint) -> tuple[ServiceRoute | None, State, dict]:
        try:
            return self._reconcile(endpoint)
        except ModelportError as err:  # one endpoint's fault stays with that endpoint (and is logged once)
            self._warn(f"reconciling {endpoint.name} failed: {err}")
            return None, State.UNHEALTHY, {"reason": f"the control plane could not reconcile it: {err}"}
        except Exception as err:
            logger.exception("reconciling %s failed", endpoint.name)
            return None, State.UNHEALTHY, {"reason": f"the control plane could not reconcile it: {err}"}

    @staticmethod
    def _interval(endpoint: Endpoint, state: State, status: dict) -> float:
        """Seconds to this endpoint's next pass: soon while it changes, slowly once steady (at least as often
        as its autoscaled versions' refresh period)."""
        if state is not State.HEALTHY or status.get("reason"):
            return BUSY_INTERVAL_S
        refreshes = [AutoscaleSettings.of(v.deploy) for v in endpoint.versions]
        return min([STEADY_INTERVAL_S] + [settings.refresh_seconds for enabled, settings in refreshes if enabled])

    def _mark_routed(self, revisions: dict[str, int]) -> None:
        with self._routed_changed:
            self._routed = revisions
            self._routed_changed.notify_all()

    def _route(self, routes: list[ServiceRoute]) -> str | None:
        """Keep the front end running with ``routes``; the reason it cannot serve them, or None."""
        if self.front_end is None:
            return None
        self._front_end_starting = False
        try:
            if routes and self.front_end.ensure_running():
                logger.warning("the front end was not running: started it again with the same routes")
                self.routes = None
            if routes != self.routes:
                self.front_end.apply(routes)  # before any state says Healthy: a Healthy service is routed
                self.routes = routes
        except FrontEndStarting as err:
            self.routes, self._front_end_starting = None, True
            return str(err)
        except ModelportError as err:
            self.routes = None
            return f"the front end cannot route the services (restarting it): {err}"
        return None

    def _warn(self, message: str) -> None:
        """Log ``message`` as a warning at most once per ``REPEAT_WARNING_S``: a platform that stays unreachable is
        said once in a while, not every pass."""
        now = time.monotonic()
        self._warned = {text: at for text, at in self._warned.items() if now - at < REPEAT_WARNING_S}
        if message not in self._warned:
            self._warned[message] = now
            logger.warning(message)

    def _route_problems(self) -> dict[str, str]:
        if self.front_end is None:
            return {}
        try:
            return self.front_end.route_problems()
        except ModelportError as err:
            self._warn(f"could not read the route checks of the front end of {self.compute_target}: {err}")
            return {}

    # --- one endpoint --------------------------------------------------------------------------

    def _reconcile(self, endpoint: Endpoint) -> tuple[ServiceRoute | None, State, dict]:
        if endpoint.compute_target != self.compute_target:
            return None, State.FAILED, {"reason": f"compute target '{endpoint.compute_target}' is not attached to this "
                                                  "workspace; attach it again, or delete the service and redeploy it"}
        seen = {version.name: self._reconcile_version(endpoint, version) for version in endpoint.versions}
        self._retire_unused(endpoint)
        default = seen[endpoint.default_version.name]
        state, reason = endpoint_state(endpoint, seen)
        route = service_route(endpoint, seen)
        shares = {v.name: v.weight for v in route.versions}
        status = {**default.status, "reason": reason, "desired_version": endpoint.default_version.replica_set,
                  "serving_version": default.serving,
                  "versions": {name: {"state": v.state.value, "reason": v.reason, "serving_replica_set": v.serving,
                                      "effective_percentile": shares[name], **v.status} for name, v in seen.items()}}
        return route, state, status

    def _reconcile_version(self, endpoint: Endpoint, version: EndpointVersion) -> VersionObserved:
        replica_set = version.replica_set
        spec = self._replica_set_spec(endpoint, version)
        prepared = self.backend.prepare(spec)
        replicas = self.backend.observe(endpoint.name, replica_set)
        if prepared.state is Preparation.READY:
            self.backend.apply(spec)
            replicas = self.backend.observe(endpoint.name, replica_set)
        elif prepared.state is Preparation.FAILED or not replicas:  # (replicas found running are re-adopted)
            serving, serving_replicas = self._fallback(endpoint, version)
            state = State.FAILED if prepared.state is Preparation.FAILED else State.TRANSITIONING
            return VersionObserved(state, prepared.reason, serving or replica_set, serving_replicas)
        ready = sum(r.ready for r in replicas)
        key = (endpoint.name, version.name)
        if ready >= spec.replicas:
            self._promoted[key] = replica_set
        if self._promoted.get(key) == replica_set:
            serving, serving_replicas = replica_set, replicas
            state, reason = self._promoted_state(endpoint, replica_set, spec, replicas)
        else:
            serving, serving_replicas = self._fallback(endpoint, version)
            if serving is None:  # a first deploy: serve the replicas that are ready already
                serving, serving_replicas = replica_set, replicas
            state, reason = self._progress(endpoint, replica_set, spec, replicas)
        status = {"replicas": spec.replicas, "ready_replicas": ready, "restarts": sum(r.restarts for r in replicas),
                  "resources": self.backend.resource_notes(spec)}
        return VersionObserved(state, reason, serving, serving_replicas, status)

    def _fallback(self, endpoint: Endpoint, version: EndpointVersion) -> tuple[str | None, list[ReplicaState]]:
        """The newest earlier replica set of ``version`` with a ready replica (it keeps serving during an
        update); for the default version also one that no version owns (made by an earlier modelport)."""
        owners = {v.name for v in endpoint.versions}
        candidates = []
        for replica_set in self.backend.versions(endpoint.name):
            owner, generation = replica_set_owner(replica_set)
            if replica_set != version.replica_set and (owner == version.name or (
                    version.is_default and owner not in owners)):
                candidates.append((generation, replica_set))
        for _, replica_set in sorted(candidates, reverse=True):
            replicas = self.backend.observe(endpoint.name, replica_set)
            if any(r.ready for r in replicas):
                return replica_set, replicas
        return None, []

    def _retire_unused(self, endpoint: Endpoint) -> None:
        """Stop replica sets no version serves, ``RETIRE_GRACE_S`` after their successor took the traffic."""
        now = time.monotonic()
        wanted = {v.replica_set for v in endpoint.versions}
        promoted = {name: rs for (ep, name), rs in self._promoted.items() if ep == endpoint.name}
        owners = {v.name for v in endpoint.versions}
        default = endpoint.default_version.name
        for replica_set in self.backend.versions(endpoint.name):
            owner, _ = replica_set_owner(replica_set)
            successor = promoted.get(owner if owner in owners else default)
            if replica_set in wanted or successor is None or successor == replica_set:
                continue
            deadline = self._retiring.setdefault((endpoint.name, replica_set), now + RETIRE_GRACE_S)
            if now >= deadline:
                self.backend.remove(endpoint.name, replica_set)
                del self._retiring[(endpoint.name, replica_set)]

    def _promoted_state(self, endpoint: Endpoint, replica_set: str, spec: ReplicaSetSpec,
                        replicas: list[ReplicaState]) -> tuple[State, str]:
        """The state of a replica set that takes the traffic: Healthy while one replica is ready."""
        ready = sum(r.ready for r in replicas)
        if ready >= spec.replicas:
            return State.HEALTHY, ""
        if ready == 0:
            return self._progress(endpoint, replica_set, spec, replicas)
        missing = spec.replicas - ready
        diagnosis = self.backend.diagnose(spec, replicas)
        if diagnosis is not None:
            return State.HEALTHY, f"{ready} of {spec.replicas} replicas ready; {diagnosis[1]}"
        failed = sum(r.init_failed for r in replicas)
        why = (f"{failed} stopped after init() failed (see get_logs(); update the service to retry)" if failed
               else "restarting")
        return State.HEALTHY, f"{ready} of {spec.replicas} replicas ready; {missing} {why}"

    def _progress(self, endpoint: Endpoint, replica_set: str, spec: ReplicaSetSpec,
                  replicas: list[ReplicaState]) -> tuple[State, str]:
        diagnosis = self.backend.diagnose(spec, replicas)
        if diagnosis is not None:
            return diagnosis
        failed = [r for r in replicas if r.init_failed]
        if failed:
            log = self.backend.logs(endpoint.name, replica_set, LOG_TAIL_LINES)
            tail = "\n".join(log.splitlines()[-LOG_TAIL_LINES:])
            return State.FAILED, (f"init() of the entry script failed in {len(failed)} replica(s); not restarted "
                                  f"until the service is updated; replica log tail:\n{tail}")
        crashed = [r for r in replicas if r.exit_code is not None or r.restarts > 0]
        if crashed:
            return State.UNHEALTHY, f"{len(crashed)} replica(s) exited and are being restarted; see get_logs()"
        if not replicas:  # e.g. a cluster that has not made the pods yet
            return State.TRANSITIONING, f"0 of {spec.replicas} replicas ready (none started yet)"
        ready = sum(r.ready for r in replicas)
        return State.TRANSITIONING, f"{ready} of {spec.replicas} replicas ready (init() running)"

    def _replica_set_spec(self, endpoint: Endpoint, version: EndpointVersion) -> ReplicaSetSpec:
        """What the backend should run for ``version``: its environment, app, entry script and settings."""
        deploy = version.deploy
        key = f"{endpoint.name}/{version.replica_set}"  # a replica set's environment never changes
        if key not in self._variables:
            self._variables[key] = EnvironmentSpec.from_dict(version.environment).environment_variables
        environment_variables = self._variables[key]
        env = {**environment_variables, "SERVICE_NAME": endpoint.name, "SERVICE_VERSION": version.name,
               "SCORING_TIMEOUT_MS": str(deploy["scoring_timeout_ms"]),
               "MODELPORT_MAX_CONCURRENT_REQUESTS": str(deploy["replica_max_concurrent_requests"]),
               "MODELPORT_MAX_QUEUE_WAIT_MS": str(deploy["max_request_wait_time"])}
        return ReplicaSetSpec(service=endpoint.name, replica_set=version.replica_set, environment=version.environment,
                              snapshot=version.snapshot, models=tuple(vars(m) for m in version.models),
                              entry_script=version.entry_script, source_directory=version.source_directory,
                              replicas=self.replica_count(endpoint, version), env=env,
                              cpu_limit=deploy.get("cpu_cores_limit"), memory_limit_gb=deploy.get("memory_gb_limit"),
                              gpus=tuple(version.gpus), probe_period_s=deploy.get("period_seconds", 10),
                              version=version.name, deploy=dict(deploy))

