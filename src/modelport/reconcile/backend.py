"""The backend interface: what the reconciler asks of any place that runs replicas."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

INIT_FAILED_EXIT_CODE = 3  # the runtime's exit code when loading the script or init() failed


@dataclass(frozen=True)
class VersionSpec:
    """One version of a service, to run as ``replicas`` identical replicas."""

    service: str
    version: str
    python: Path
    pythonpath: Path
    app_root: Path
    entry_script: str
    replicas: int
    env: dict[str, str] = field(default_factory=dict)
    cpu_limit: float | None = None
    memory_limit_gb: float | None = None
    gpus: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.service}/{self.version}"


@dataclass(frozen=True)
class ReplicaState:
    """What the backend saw of one replica."""

    index: int
    pid: int | None
    port: int | None
    ready: bool
    exit_code: int | None
    restarts: int
    log: Path

    @property
    def init_failed(self) -> bool:
        return self.exit_code == INIT_FAILED_EXIT_CODE

    @property
    def url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}" if self.port else None


class Backend(Protocol):
    def apply(self, spec: VersionSpec) -> None:
        """Make exactly ``spec.replicas`` replicas of this version run (start, restart, stop extras)."""

    def observe(self, service: str, version: str) -> list[ReplicaState]:
        """The replicas of a version, with readiness."""

    def services(self) -> list[str]:
        """Services that have (or had) replicas here."""

    def versions(self, service: str) -> list[str]:
        """Versions of a service that have replicas (running or not)."""

    def remove(self, service: str, version: str | None = None) -> None:
        """Stop and forget a version's replicas (all versions when None)."""

    def logs(self, service: str, version: str, num_lines: int = 5000) -> str:
        """The last lines of the replicas' logs."""
