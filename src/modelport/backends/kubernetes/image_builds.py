"""Background image builds for the Kubernetes backend: the reconciler starts them and observes them, never waits.

The Kubernetes backend's ``prepare`` calls ``ImageBuilds.prepare`` on every pass, as the local backend calls
``backends/local/preparation.Preparations``: the first call starts one job per replica set on a small thread pool;
later calls say PREPARING (with the step: "building image X"), READY, or FAILED with the reason and the log's last
lines. A failed job is not retried: the replica set's spec does not change, so it would fail again (an update makes
a new replica set). ``image(spec)`` is then the app image its pods run.

A job builds the environment image only when the builder does not have it (Azure ML's image cache: the local store,
or the registry), under a lock per image so two replica sets of one environment build it once; then the app image
likewise; each is pushed when the target has a registry. Everything a job does is written to its replica set's
build log (``log_path``), which ``wait_for_deployment(show_output=True)`` streams. A control plane that restarts
finds the images already there, and is ready again after one lookup each.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from ...errors import ModelportError
from ...reconcile.backend import Preparation, Prepared, ReplicaSetSpec
from ...store.artifacts import ArtifactStore
from . import images
from .builders import Builder

BUILD_WORKERS = 2  # image builds at once (each one's install and layer compression use a core)
LOG_FOLDER = "images"
FRONT_END = "front-end"  # the front end image's job key (replica set keys are "<service>/<replica set>")


class ImageBuilds:
    """Builds the images of replica sets in the background.

    ``builder``: where images are built and looked up (``builders.builder_for``); ``artifacts``: the workspace's
    artifact store (source snapshots and models); ``logs_root``: the workspace's logs folder (build logs go to
    ``logs_root/images/<service>/<replica set>.log``); ``work_root``: where build contexts are made (each deleted
    after its build; an environment context holds its installed packages, so leave room for them); ``registry``:
    the compute target's ``image_registry`` (None: images stay in the builder's local store, unpushed).
    """

    def __init__(self, builder: Builder, artifacts: ArtifactStore, logs_root: Path, work_root: Path,
                 registry: str | None = None):
        self.builder = builder
        self.artifacts = artifacts
        self.logs_root = Path(logs_root)
        self.work_root = Path(work_root)
        self.registry = registry
        self._pool = ThreadPoolExecutor(BUILD_WORKERS, thread_name_prefix="image-build")
        self._jobs: dict[str, Future[str]] = {}
        self._steps: dict[str, str] = {}
        self._lock = threading.Lock()
        self._image_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)

    def prepare(self, spec: ReplicaSetSpec) -> Prepared:
        """Start the job for ``spec`` if none exists; where it stands now. Never blocks on the build."""
        with self._lock:
            if spec.key not in self._jobs:
                self._steps[spec.key] = f"waiting to build image {self.image_name(spec)}"
                self._jobs[spec.key] = self._pool.submit(self._make, spec)
        return self._state(spec.key, self.log_path(spec))

    def _state(self, key: str, log_path: Path) -> Prepared:
        job = self._jobs[key]
        if not job.done():
            return Prepared(Preparation.PREPARING, self._steps.get(key, ""))
        error = job.exception()
        if error is None:
            return Prepared(Preparation.READY)
        reason = str(error) if isinstance(error, ModelportError) else f"{type(error).__name__}: {error}"
        return Prepared(Preparation.FAILED, f"{reason}\n(build log: {log_path})")

    def front_end_image(self) -> str:
        """The front end's image (``images.front_end_image_name`` under the registry); its build starts in the
        background the first time it is asked for (unless the builder has it). Until it is there the front end pod
        waits on its image pull, which Kubernetes retries; ``front_end_prepared`` says where the build stands."""
        with self._lock:
            if FRONT_END not in self._jobs:
                self._steps[FRONT_END] = "waiting to build the front end image"
                self._jobs[FRONT_END] = self._pool.submit(self._make_front_end)
        return images.front_end_image_name(self.registry)

    def front_end_prepared(self) -> Prepared:
        """Where the front end image's build stands (call ``front_end_image`` first)."""
        return self._state(FRONT_END, self.logs_root / LOG_FOLDER / "front-end.log")

    def image(self, spec: ReplicaSetSpec) -> str:
        """The app image of a prepared replica set (call after ``prepare`` said READY)."""
        return self._jobs[spec.key].result(timeout=0)

    def image_name(self, spec: ReplicaSetSpec) -> str:
        """The app image ``spec`` runs, whether built yet or not (``images.app_image_for`` under the registry)."""
        return images.app_image_for(spec, self.registry)

    def log_path(self, spec: ReplicaSetSpec) -> Path:
        """The build log of a replica set: ``logs_root/images/<service>/<replica set>.log``."""
        return self.logs_root / LOG_FOLDER / spec.service / f"{spec.replica_set}.log"

    def forget(self, service: str, replica_set: str | None = None) -> None:
        """Forget a removed replica set's job (all of the service's when None), so a new spec under the same key
        builds again; its images stay (other replica sets may share them)."""
        with self._lock:
            for key in [k for k in self._jobs
                        if (k == f"{service}/{replica_set}" if replica_set else k.startswith(f"{service}/"))]:
                del self._jobs[key]
                self._steps.pop(key, None)

    def close(self) -> None:
        """Stop taking jobs; builds already running finish in their threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _make(self, spec: ReplicaSetSpec) -> str:
        log_path = self.log_path(spec)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a", encoding="utf-8") as log:
            now = datetime.now(timezone.utc).isoformat(timespec="seconds")
            log.write(f"\n===== {now} images of {spec.key} =====\n")
            environment_image = images.environment_image_name(spec.environment, self.registry)
            if images.brings_own_image(spec.environment):
                log.write(f"the environment brings its own image {environment_image}: only the app layer is built\n")
            else:
                self._ensure(spec.key, environment_image, log,
                             lambda folder: images.environment_context(spec.environment, folder, log,
                                                                       self.builder.installs_on_host))
            app_image = self.image_name(spec)
            self._ensure(spec.key, app_image, log,
                         lambda folder: images.app_context(spec, environment_image, self.artifacts, folder))
            log.write(f"ready: {app_image}\n")
        return app_image

    def _make_front_end(self) -> str:
        log_path = self.logs_root / LOG_FOLDER / "front-end.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        image = images.front_end_image_name(self.registry)
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"\n===== {datetime.now(timezone.utc).isoformat(timespec='seconds')} front end image =====\n")
            self._ensure(FRONT_END, image, log,
                         lambda folder: images.front_end_context(folder, log, self.builder.installs_on_host))
            log.write(f"ready: {image}\n")
        return image

    def _ensure(self, key: str, image: str, log: IO[str], make_context: Callable[[Path], Path]) -> None:
        """Build and push ``image`` unless the builder has it; one build per image at a time."""
        with self._lock:
            lock = self._image_locks[image]
        with lock:
            self._step(key, f"looking up image {image}", log)
            if self.builder.exists(image):
                log.write(f"found {image}: not built again\n")
                return
            self.work_root.mkdir(parents=True, exist_ok=True)
            folder = Path(tempfile.mkdtemp(prefix="context-", dir=self.work_root))
            try:
                self._step(key, f"making the build context of image {image}", log)
                make_context(folder)
                self._step(key, f"building image {image}", log)
                self.builder.build(folder, image, log)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            if self.registry:
                self._step(key, f"pushing image {image}", log)
                self.builder.push(image, log)

    def _step(self, key: str, text: str, log: IO[str]) -> None:
        self._steps[key] = text
        log.write(f"› {text}\n")
        log.flush()
