"""Backends run the replica sets of endpoint versions; ``for_target`` picks one by compute target kind.

``local`` (the built-in target every workspace has): replica processes on this machine. A kind with
no backend here (``kubernetes`` until its backend exists) is refused with a message.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InvalidInput
from ..reconcile.backend import Backend
from ..store.artifacts import LocalArtifactStore
from .local import LocalBackend
from .local.preparation import Preparations

LOCAL = "local"


def for_target(kind: str, workspace_root: Path, artifacts: LocalArtifactStore, envs: Path, logs: Path) -> Backend:
    """The backend for compute targets of ``kind``, keeping its files under ``workspace_root``.

    Raises InvalidInput for a kind modelport cannot run yet."""
    if kind == LOCAL:
        preparations = Preparations(artifacts, envs, logs, workspace_root / "services")
        return LocalBackend(workspace_root / "replicas", preparations)
    raise InvalidInput(f"compute target kind {kind!r} has no backend in this modelport yet; deploy to the built-in "
                       "'local' target (leave deployment_target out)")
