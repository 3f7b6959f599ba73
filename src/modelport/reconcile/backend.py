"""The backend interface: what the reconciler asks of any place that runs replicas.

It says *what* to run (an environment, the app's content, an entry script, runtime settings,
replicas, resources), never *how*: each backend turns that into its own artefacts (local: a
virtual environment and an app root; Kubernetes: an image) as background work that the
reconciler starts with ``prepare`` and observes on later passes, never waiting for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from ..spec.state import State

INIT_FAILED_EXIT_CODE = 3  # the runtime's exit code when loading the script or init() failed


@dataclass(frozen=True)
class ReplicaSetSpec:
    """One replica set of an endpoint version, to run as ``replicas`` identical replicas.

    ``environment``: the Azure ML Environment dict (its content hash identifies the build);
    ``snapshot``/``models``/``source_directory``: the app's content (source snapshot sha256, model
    references as dicts, the source folder's name inside the app root); ``env``: the runtime's
    settings as environment variables; ``cpu_limit`` in cores, ``memory_limit_gb`` in GB, ``gpus``:
    the GPU ids assigned when it was deployed (local); ``deploy``: every setting of the version (requests,
    limits, probes, autoscaling) for backends that hand them to their platform."""

    service: str
    replica_set: str
    environment: dict[str, Any]
    snapshot: str
    models: tuple[dict[str, Any], ...]
    entry_script: str
    replicas: int
    source_directory: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    cpu_limit: float | None = None
    memory_limit_gb: float | None = None
    gpus: tuple[str, ...] = ()
    probe_period_s: float = 10.0  # Azure's period_seconds: how often a ready replica is probed
    version: str = ""  # the endpoint version it runs
    deploy: dict[str, Any] = field(default_factory=dict)  # the version's DeploymentConfig settings, as stored

    @property
    def key(self) -> str:
        return f"{self.service}/{self.replica_set}"


class Preparation(Enum):
    """Where a replica set's artefacts stand: being made, ready to run, or failed (not retried)."""

    PREPARING = "preparing"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class Prepared:
    """``prepare``'s answer: the state and, while preparing or failed, what is happening or went wrong."""

    state: Preparation
    reason: str = ""


@dataclass(frozen=True)
class ReplicaState:
    """What the backend saw of one replica; ``address`` is where the front end reaches it (host, port)."""

    index: int
    pid: int | None
    address: tuple[str, int] | None
    ready: bool
    exit_code: int | None
    restarts: int
    log: Path | None  # the replica log file (local); None where logs are read from the cluster

    @property
    def init_failed(self) -> bool:
        return self.exit_code == INIT_FAILED_EXIT_CODE


class Backend(Protocol):
    def prepare(self, spec: ReplicaSetSpec) -> Prepared:
        """Start making what ``spec`` needs (once); say where that stands. Never blocks on the work."""

    def resource_notes(self, spec: ReplicaSetSpec) -> list[str]:
        """How this backend applies the replica set's resource settings, in words, for its status."""

    def apply(self, spec: ReplicaSetSpec) -> None:
        """Make exactly ``spec.replicas`` replicas of a prepared replica set run (start, restart, stop extras)."""

    def observe(self, service: str, replica_set: str) -> list[ReplicaState]:
        """The replicas of a replica set, with readiness."""

    def services(self) -> list[str]:
        """Services that have (or had) replicas here."""

    def versions(self, service: str) -> list[str]:
        """Replica sets of a service that have replicas (running or not)."""

    def remove(self, service: str, replica_set: str | None = None) -> None:
        """Stop and forget a replica set's replicas (all of the service's when None)."""

    def logs(self, service: str, replica_set: str, num_lines: int = 5000) -> str:
        """The last lines of the replicas' logs."""

    def preparation_log(self, service: str, replica_set: str, environment: dict[str, Any],
                        num_lines: int = 5000) -> str:
        """The last lines of the log of making the replica set's artefacts (its environment's build, its image's
        build): what Azure ML's ``get_logs(init=True)`` gave, what happened before a replica started."""

    def diagnose(self, spec: ReplicaSetSpec, replicas: list[ReplicaState]) -> tuple[State, str] | None:
        """What the platform says is wrong with a replica set that is not all ready (a pod that cannot be
        scheduled, an image that cannot be pulled, a replica killed for memory), as a state and reason; None
        when it says nothing beyond the replicas' own states."""
