"""What every route handler needs: the workspace folder, its store, artifacts and running deployments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from ..store.artifacts import LocalArtifactStore

if TYPE_CHECKING:
    from ..operations.endpoints import EndpointOperations
    from .deployments import Deployments
from ..store.db import Store
from .workspace_dir import WorkspaceDir


@dataclass(frozen=True)
class Context:
    """The workspace a control plane serves, with its store, artifacts and deployments (one per app)."""

    workspace: WorkspaceDir
    store: Store
    artifacts: LocalArtifactStore
    deployments: Deployments
    operations: EndpointOperations


def context(request: Request) -> Context:
    """FastAPI dependency: the app's Context."""
    return request.app.state.context
