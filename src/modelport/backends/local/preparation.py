"""What a local replica set needs before it can run: a built environment and a laid-out app root.

Made as background work on a small thread pool, one job per replica set, so a long environment
build never holds up the reconciler (other services, autoscaling and failover go on). A failed
job stays failed: the replica set's spec does not change, so trying again would fail again (an
update makes a new replica set). A control plane that restarts finds both already made (the
build cache and the app root's marker) and is ready again at once.
"""

from __future__ import annotations

import shutil
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ...environments.build import build_local, build_log_path, tail_lines
from ...environments.spec import EnvironmentSpec
from ...errors import ModelportError
from ...reconcile import app_root
from ...reconcile.backend import Preparation, Prepared, ReplicaSetSpec
from ...store.artifacts import LocalArtifactStore

BUILD_WORKERS = 2  # environment builds at once (each runs uv; more would only compete for the CPUs)


@dataclass(frozen=True)
class LocalArtefacts:
    """How to run a replica set here: its interpreter, the PYTHONPATH holding modelport, its app root."""

    python: Path
    pythonpath: Path
    app_root: Path


class Preparations:
    """Background preparation of replica sets (``apps_root/<service>/<replica set>/app``)."""

    def __init__(self, artifacts: LocalArtifactStore, envs_root: Path, logs_root: Path, apps_root: Path):
        self.artifacts = artifacts
        self.envs_root = envs_root
        self.logs_root = logs_root
        self.apps_root = apps_root
        self._pool = ThreadPoolExecutor(BUILD_WORKERS, thread_name_prefix="prepare")
        self._jobs: dict[str, Future[LocalArtefacts]] = {}
        self._lock = threading.Lock()

    def prepare(self, spec: ReplicaSetSpec) -> Prepared:
        """Start the job for ``spec`` if none exists; where it stands now."""
        with self._lock:
            job = self._jobs.get(spec.key)
            if job is None:
                job = self._jobs[spec.key] = self._pool.submit(self._make, spec)
        if not job.done():
            return Prepared(Preparation.PREPARING, "building the environment and laying out the app")
        error = job.exception()
        if error is None:
            return Prepared(Preparation.READY)
        reason = str(error) if isinstance(error, ModelportError) else f"{type(error).__name__}: {error}"
        return Prepared(Preparation.FAILED, reason)

    def build_log(self, environment: dict, num_lines: int = 5000) -> str:
        """The last ``num_lines`` lines of ``environment``'s local build log ("" before its first build)."""
        return tail_lines(build_log_path(EnvironmentSpec.from_dict(environment), self.logs_root), num_lines)

    def artefacts(self, spec: ReplicaSetSpec) -> LocalArtefacts:
        """The made artefacts of a prepared replica set (call after ``prepare`` said READY)."""
        return self._jobs[spec.key].result(timeout=0)

    def remove(self, service: str, replica_set: str | None = None) -> None:
        """Forget a removed replica set (all of the service's when None) and delete its app root."""
        with self._lock:
            for key in [k for k in self._jobs
                        if (k == f"{service}/{replica_set}" if replica_set else k.startswith(f"{service}/"))]:
                del self._jobs[key]
        shutil.rmtree(self.apps_root / service / replica_set if replica_set else self.apps_root / service,
                      ignore_errors=True)

    def _make(self, spec: ReplicaSetSpec) -> LocalArtefacts:
        environment = EnvironmentSpec.from_dict(spec.environment)
        built = build_local(environment, self.envs_root, self.logs_root, show_output=False)
        root = app_root.prepare(self.apps_root / spec.service / spec.replica_set / "app", self.artifacts,
                                spec.snapshot, list(spec.models), spec.source_directory)
        return LocalArtefacts(python=built.python, pythonpath=built.pythonpath, app_root=root)
