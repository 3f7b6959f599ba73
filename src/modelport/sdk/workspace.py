"""``Workspace``: where models, environments, compute targets and services live."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from ..api.client import Client
from ..api.workspace_dir import WorkspaceDir
from ..errors import NotFound


class Workspace:
    """A modelport workspace, used like ``azureml.core.Workspace``.

    Every operation goes through the workspace's control plane API; for a local workspace
    its server is started in the background on first use.
    """

    def __init__(self, name: str, path: str | Path = ".", _dir: WorkspaceDir | None = None):
        self._dir = _dir or WorkspaceDir.at(Path(path))
        if self._dir.name != name:
            raise NotFound(
                f"the workspace in {self._dir.root.parent} is {self._dir.name!r}, not {name!r}; "
                f"use Workspace.get({self._dir.name!r}, path=...) or another path"
            )
        self.name = name

    @staticmethod
    def create(name: str, path: str | Path = ".", exist_ok: bool = False, store_url: str | None = None) -> Workspace:
        """Create a workspace in ``path`` (its data goes to ``path/.modelport``)."""
        return Workspace(name, _dir=WorkspaceDir.create(name, Path(path), store_url=store_url, exist_ok=exist_ok))

    @staticmethod
    def get(name: str, path: str | Path = ".") -> Workspace:
        """The workspace ``name`` in ``path``; NotFound if the workspace there has another name."""
        return Workspace(name, path)

    @staticmethod
    def from_config(path: str | Path | None = None) -> Workspace:
        """The workspace whose ``.modelport/config.json`` is in ``path`` (default: cwd) or a parent."""
        found = WorkspaceDir.find(Path(path) if path else None)
        return Workspace(found.name, _dir=found)

    @property
    def path(self) -> Path:
        """The folder holding ``.modelport``."""
        return self._dir.root.parent

    @cached_property
    def _client(self) -> Client:
        return Client(self._dir)

    @property
    def models(self) -> dict:
        """Latest version of every registered model, by name."""
        from .model import Model

        return {m.name: m for m in Model.list(self, latest=True)}

    @property
    def environments(self) -> dict:
        """Latest version of every registered environment, by name."""
        from .environment import Environment

        return Environment.list(self)

    @property
    def compute_targets(self) -> dict:
        """Compute targets by name (Azure ML's ``ws.compute_targets``): ``local`` (this machine, a
        ``ComputeTarget``) and each attached cluster (a ``KubernetesCompute``)."""
        from .compute import ComputeTarget

        return {target.name: target for target in ComputeTarget.list(self)}

    @property
    def webservices(self) -> dict:
        """Every service of the workspace by name, as ``Webservice`` objects (Azure ML's ``ws.webservices``)."""
        from .webservice import Webservice

        return {service.name: service for service in Webservice.list(self)}

    def get_details(self) -> dict:
        """``name``, ``path``, ``store`` and ``created`` of the workspace, from its control plane."""
        return self._client.json("GET", "/workspace")

    def __repr__(self) -> str:
        return f"Workspace.get(name={self.name!r}, path={str(self.path)!r})"

