"""The service reconciler: desired service records → built environments, app roots, replicas, routes.

Each pass, for every service (each in its own error boundary): build (or reuse) its
environment, lay out the app root of its desired version, make the backend run the wanted
number of replicas, route traffic, and record the observed state with a reason:
``Transitioning``, ``Healthy``, ``Unhealthy`` (replicas crashed after having served, or the
front end is down) or ``Failed`` (the environment build or ``init()`` failed; the reason
holds the log tail).

Routing: every service that exists has a route, so a request never meets a 404 for it; with
no ready replica the front end answers 503. A version is *promoted* once all its replicas
were ready at the same time; until then an older version with a ready replica keeps the
traffic (a rolling update), and once promoted it keeps the traffic with whatever replicas
are ready while others restart. Older versions stop ``RETIRE_GRACE_S`` after the promotion.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ..backends.local import limits
from ..environments.build import build_local
from ..environments.spec import EnvironmentSpec
from ..errors import ModelportError
from ..store.artifacts import LocalArtifactStore
from ..store.db import Store
from ..store.records import ServiceRecord
from . import app_root
from .backend import Backend, ReplicaState, VersionSpec

logger = logging.getLogger("modelport.reconciler")

HEALTHY, TRANSITIONING, UNHEALTHY, FAILED = "Healthy", "Transitioning", "Unhealthy", "Failed"
LOG_TAIL_LINES = 30
RETIRE_GRACE_S = 2.0


class FrontEndPort(Protocol):
    """What the reconciler needs of a front end: keep it running and give it the routes."""

    def ensure_running(self) -> bool:
        """Start the front end if it is not running; True when it was (re)started now. Raises ModelportError."""

    def apply(self, routes: list[dict]) -> None:
        """Route exactly ``routes``; returns once they are served. Raises ModelportError."""


class Reconciler:
    """Converges services to their desired state; ``run_forever`` in a thread, or ``reconcile_once``."""

    def __init__(self, store: Store, artifacts: LocalArtifactStore, backend: Backend, services_root: Path,
                 envs_root: Path, logs_root: Path, replica_count: Callable[[ServiceRecord], int],
                 front_end: FrontEndPort | None = None):
        self.store = store
        self.artifacts = artifacts
        self.backend = backend
        self.services_root = services_root
        self.envs_root = envs_root
        self.logs_root = logs_root
        self.front_end = front_end
        self.replica_count = replica_count
        self.routes: list[dict] | None = None  # what the front end serves; None: unknown, apply again
        self._failed: dict[tuple[str, int], str] = {}  # (service, generation) whose build failed: not retried
        self._promoted: dict[str, str] = {}  # service -> the version that takes its traffic
        self._retiring: dict[tuple[str, str], float] = {}  # old versions: stopped once no longer routed
        self._stop = threading.Event()
        self._wake = threading.Event()

    def run_forever(self, interval_s: float = 0.5) -> None:
        while not self._stop.is_set():
            try:
                self.reconcile_once()
            except Exception:
                logger.exception("reconcile pass failed; retrying")
            self._wake.wait(interval_s)
            self._wake.clear()

    def wake(self) -> None:
        """Run the next pass now (after a deploy, update or delete)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def reconcile_once(self) -> None:
        records = self.store.list_services()
        routes, observed = [], []
        for record in records:
            try:
                route, state, status = self._reconcile(record)
            except Exception as err:  # one service's fault stays with that service
                logger.exception("reconciling service %s failed", record.name)
                route, state, status = None, UNHEALTHY, {"reason": f"the control plane could not reconcile it: {err}"}
            observed.append((record.name, state, status))
            if route is not None:
                routes.append(route)
        front_end_error = self._route(routes)
        for name, state, status in observed:
            if front_end_error and state in (HEALTHY, TRANSITIONING):
                state, status = UNHEALTHY, {**status, "reason": front_end_error}
            status["front_end"] = front_end_error or "serving"
            self.store.set_service_status(name, state, status)
        names = {r.name for r in records}
        for stale in set(self.backend.services()) - names:
            self.backend.remove(stale)
        for gone in set(self._promoted) - names:  # a new service of the same name starts afresh
            del self._promoted[gone]

    def _route(self, routes: list[dict]) -> str | None:
        """Keep the front end running with ``routes``; the reason it cannot serve them, or None."""
        if self.front_end is None:
            return None
        try:
            if routes and self.front_end.ensure_running():
                logger.warning("the front end was not running: started it again with the same routes")
                self.routes = None
            if routes != self.routes:
                self.front_end.apply(routes)  # before any state says Healthy: a Healthy service is routed
                self.routes = routes
        except ModelportError as err:
            self.routes = None
            return f"the front end cannot route the services (restarting it): {err}"
        return None

    def _reconcile(self, record: ServiceRecord) -> tuple[dict | None, str, dict]:
        config = record.config
        version = f"v{config['generation']}"
        attempt = (record.name, config["generation"])
        try:
            if attempt in self._failed:
                raise ModelportError(self._failed[attempt])
            spec = self._version_spec(record, version)
        except ModelportError as err:
            self._failed[attempt] = str(err)
            serving, serving_replicas = self._older_serving_version(record, exclude=version)
            status = {"reason": str(err), "desired_version": version, "serving_version": serving}
            return _route(record, serving or version, serving_replicas), FAILED, status
        self.backend.apply(spec)
        replicas = self.backend.observe(record.name, version)
        ready = [r for r in replicas if r.ready]
        if len(ready) >= spec.replicas:
            self._promoted[record.name] = version
        if self._promoted.get(record.name) == version:
            self._retire_older(record.name, version)
            serving, serving_replicas = version, replicas
            state, reason = self._promoted_state(record, version, spec, replicas)
        else:
            serving, serving_replicas = self._older_serving_version(record, exclude=version)
            if serving is None:  # a first deploy: serve the replicas that are ready already
                serving, serving_replicas = version, replicas
            state, reason = self._progress(record, version, spec, replicas)
        status = {"reason": reason, "desired_version": version, "serving_version": serving,
                  "replicas": spec.replicas, "ready_replicas": len(ready),
                  "restarts": sum(r.restarts for r in replicas),
                  "resources": limits.describe(spec.cpu_limit, spec.memory_limit_gb)}
        return _route(record, serving, serving_replicas), state, status

    def _retire_older(self, service: str, current: str) -> None:
        """Stop older versions ``RETIRE_GRACE_S`` after traffic moved off them, so nothing in flight is cut."""
        now = time.monotonic()
        for old in self.backend.versions(service):
            if old == current:
                continue
            deadline = self._retiring.setdefault((service, old), now + RETIRE_GRACE_S)
            if now >= deadline:
                self.backend.remove(service, old)
                del self._retiring[(service, old)]

    def _promoted_state(self, record: ServiceRecord, version: str, spec: VersionSpec,
                        replicas: list[ReplicaState]) -> tuple[str, str]:
        """The state of a version that takes the traffic: Healthy while one replica is ready."""
        ready = sum(r.ready for r in replicas)
        if ready >= spec.replicas:
            return HEALTHY, ""
        if ready == 0:
            return self._progress(record, version, spec, replicas)
        missing = spec.replicas - ready
        failed = sum(r.init_failed for r in replicas)
        why = (f"{failed} stopped after init() failed (see get_logs(); update the service to retry)" if failed
               else "restarting")
        return HEALTHY, f"{ready} of {spec.replicas} replicas ready; {missing} {why}"

    def _progress(self, record: ServiceRecord, version: str, spec: VersionSpec,
                  replicas: list[ReplicaState]) -> tuple[str, str]:
        failed = [r for r in replicas if r.init_failed]
        if failed:
            tail = "\n".join(self.backend.logs(record.name, version, LOG_TAIL_LINES).splitlines()[-LOG_TAIL_LINES:])
            return FAILED, (f"init() of the entry script failed in {len(failed)} replica(s); not restarted until "
                            f"the service is updated; replica log tail:\n{tail}")
        crashed = [r for r in replicas if r.exit_code is not None or r.restarts > 0]
        if crashed:
            return UNHEALTHY, f"{len(crashed)} replica(s) exited and are being restarted; see get_logs()"
        ready = sum(r.ready for r in replicas)
        return TRANSITIONING, f"{ready} of {spec.replicas} replicas ready (init() running)"

    def _version_spec(self, record: ServiceRecord, version: str) -> VersionSpec:
        config = record.config
        if not record.status:  # a new deploy or update: say what the first (maybe long) step is
            self.store.set_service_status(record.name, TRANSITIONING, {"reason": "building the environment"})
        environment = EnvironmentSpec.from_dict(config["environment"])
        built = build_local(environment, self.envs_root, self.logs_root, show_output=False)
        source = config.get("source_directory")  # Azure's layout: the source folder inside the app root
        root = app_root.prepare(self.services_root / record.name / version / "app", self.artifacts,
                                config["snapshot"], config["models"], source)
        deploy = config["deploy"]
        env = {**environment.environment_variables, "SERVICE_NAME": record.name,
               "SCORING_TIMEOUT_MS": str(deploy["scoring_timeout_ms"]),
               "MODELPORT_MAX_CONCURRENT_REQUESTS": str(deploy["replica_max_concurrent_requests"]),
               "MODELPORT_MAX_QUEUE_WAIT_MS": str(deploy["max_request_wait_time"])}
        if source:
            env["AZUREML_SOURCE_DIRECTORY"] = source
        entry_script = f"{source}/{config['entry_script']}" if source else config["entry_script"]
        return VersionSpec(service=record.name, version=version, python=built.python, pythonpath=built.pythonpath,
                           app_root=root, entry_script=entry_script, replicas=self.replica_count(record),
                           env=env, cpu_limit=deploy.get("cpu_cores_limit"),
                           memory_limit_gb=deploy.get("memory_gb_limit"), gpus=tuple(config.get("gpus", ())))

    def _older_serving_version(self, record: ServiceRecord,
                               exclude: str) -> tuple[str | None, list[ReplicaState]]:
        """The newest other version with a ready replica (it keeps serving during an update), and its replicas."""
        for version in sorted(self.backend.versions(record.name), key=_number, reverse=True):
            if version == exclude:
                continue
            replicas = self.backend.observe(record.name, version)
            if any(r.ready for r in replicas):
                return version, replicas
        return None, []


def _route(record: ServiceRecord, version: str, replicas: list[ReplicaState]) -> dict:
    """What the front end needs for one service: the version taking its traffic, that version's ready
    replicas (none: the front end answers 503), and how requests are checked (``client_policy``)."""
    endpoints = [("127.0.0.1", r.port) for r in replicas if r.ready]
    return {"name": record.name, "version": version, "endpoints": endpoints,
            "scoring_timeout_ms": record.config["deploy"]["scoring_timeout_ms"], **client_policy(record.config)}


def client_policy(config: dict) -> dict:
    """How the front end treats a service's clients: ``auth`` mode, the ``keys`` it accepts and the
    ``cors_origins`` it allows. An operation that changes these returns once the front end applies them."""
    keys = config.get("keys", {})
    return {"auth": auth_mode(config["deploy"]), "keys": [k for k in (keys.get("primary"), keys.get("secondary")) if k],
            "cors_origins": list(config["deploy"].get("cors_origins") or [])}


def auth_mode(deploy: dict) -> str:
    """``token``, ``key`` or ``none``, from a service's deployment settings."""
    if deploy.get("token_auth_enabled"):
        return "token"
    return "key" if deploy.get("auth_enabled") else "none"


def _number(version: str) -> int:
    return int(version[1:]) if version[1:].isdigit() else -1
