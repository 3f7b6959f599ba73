"""What every route handler needs: the workspace folder, its store and its artifact store."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from ..store.artifacts import LocalArtifactStore
from ..store.db import Store
from .workspace_dir import WorkspaceDir


@dataclass(frozen=True)
class Context:
    workspace: WorkspaceDir
    store: Store
    artifacts: LocalArtifactStore


def context(request: Request) -> Context:
    """FastAPI dependency: the app's Context."""
    return request.app.state.context
