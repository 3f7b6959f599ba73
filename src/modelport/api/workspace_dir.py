"""A workspace on disk: ``<path>/.modelport/`` with its config, token, database, blobs and logs.

``config.json`` plays the role of Azure ML's ``config.json``: ``Workspace.from_config()``
finds it in the current folder or a parent.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ..errors import Conflict, InvalidInput, NotFound

FOLDER = ".modelport"
NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,32}$")


@dataclass(frozen=True)
class WorkspaceDir:
    """Paths and settings of one workspace folder (``root`` is the ``.modelport`` folder)."""

    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def token_path(self) -> Path:
        return self.root / "token"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def envs(self) -> Path:
        return self.root / "envs"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def server_dir(self) -> Path:
        return self.root / "server"

    @property
    def compute(self) -> Path:
        """Credentials of attached compute targets: ``<name>/`` (mode 0700) holds its kubeconfig and TLS pair
        (0600), written by ``operations.compute`` only."""
        return self.root / "compute"

    def config(self) -> dict:
        try:
            return json.loads(self.config_path.read_text())
        except FileNotFoundError:
            raise NotFound(
                f"{self.config_path} is missing; create the workspace with `modelport workspace create`") from None
        except json.JSONDecodeError as err:
            raise InvalidInput(f"{self.config_path} is not valid JSON ({err}); fix or recreate it") from None

    @property
    def name(self) -> str:
        return self.config()["workspace_name"]

    @property
    def store_url(self) -> str:
        return self.config().get("store_url") or f"sqlite:///{self.root / 'workspace.db'}"

    def token(self) -> str:
        try:
            return self.token_path.read_text().strip()
        except FileNotFoundError:
            raise NotFound(f"{self.token_path} is missing; the workspace is damaged, recreate it") from None

    @classmethod
    def create(cls, name: str, path: Path, store_url: str | None = None, exist_ok: bool = False) -> WorkspaceDir:
        """Make the folder, its config and a fresh token (mode 0600)."""
        if not NAME_RULE.match(name):
            raise InvalidInput(
                f"workspace name {name!r} is not allowed: use 3-33 letters, digits, '-' or '_', starting with a "
                "letter or digit"
            )
        workspace = cls(Path(path).resolve() / FOLDER)
        if workspace.config_path.exists():
            existing = workspace.name
            if exist_ok and existing == name:
                return workspace
            raise Conflict(
                f"{workspace.root.parent} already holds workspace {existing!r}; use Workspace.get({existing!r}, "
                f"path=...) or another folder"
            )
        workspace.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for folder in (workspace.artifacts, workspace.envs, workspace.logs, workspace.server_dir):
            folder.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(workspace.token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as token_file:
            token_file.write(secrets.token_urlsafe(32))
        config = {"workspace_name": name, "created": datetime.now(timezone.utc).isoformat()}
        if store_url:
            config["store_url"] = store_url
        tmp = workspace.config_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(config, indent=2) + "\n")
        os.replace(tmp, workspace.config_path)  # written last: a config means a complete workspace
        return workspace

    def make_private(self) -> None:
        """Only the owner may enter the workspace folder (it holds keys, tokens and the signing key); files
        made from now on by this process are the owner's alone (umask 077). Workspaces made before this
        rule get the folder's mode fixed here."""
        os.umask(0o077)
        if self.root.stat().st_mode & 0o077:
            self.root.chmod(0o700)

    @classmethod
    def at(cls, path: Path) -> WorkspaceDir:
        """The workspace in ``path`` (the folder holding ``.modelport``, or ``.modelport`` itself)."""
        path = Path(path).resolve()
        root = path if path.name == FOLDER else path / FOLDER
        workspace = cls(root)
        if not workspace.config_path.exists():
            raise NotFound(f"no modelport workspace in {path}; create one with `modelport workspace create -n NAME`")
        return workspace

    @classmethod
    def find(cls, start: Path | None = None) -> WorkspaceDir:
        """The nearest workspace in ``start`` (default: the current folder) or one of its parents."""
        here = Path(start or Path.cwd()).resolve()
        if here.is_file():  # a config.json path, as Azure ML's from_config accepts
            here = here.parent.parent if here.parent.name == FOLDER else here.parent
        for folder in (here, *here.parents):
            if (folder / FOLDER / "config.json").exists():
                return cls(folder / FOLDER)
        raise NotFound(
            f"no modelport workspace in {here} or its parents; create one with `modelport workspace create -n NAME` "
            "or pass path="
        )
