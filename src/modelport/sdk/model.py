"""``Model``: registered model files or folders with versions, tags and properties."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ..errors import Conflict, InvalidInput
from .workspace import Workspace


class Model:
    """A registered model version, used like ``azureml.core.Model``.

    ``Model(ws, "name")`` is the latest version, ``Model(ws, "name", version=3)`` or
    ``Model(ws, id="name:3")`` a given one.
    """

    def __init__(self, workspace: Workspace, name: str | None = None, id: str | None = None,
                 version: int | None = None, _record: dict | None = None):
        self.workspace = workspace
        if _record is None:
            if id is not None:
                name, _, number = id.partition(":")
                version = int(number) if number.isdigit() else None
                if not number.isdigit():
                    raise InvalidInput(f"model id {id!r} must look like NAME:VERSION, e.g. mnist:3")
            if not name:
                raise InvalidInput("give the model's name (or id='name:version')")
            _record = workspace._client.json("GET", f"/models/{name}/{version or 'latest'}")
        self._load(_record)

    def _load(self, record: dict) -> None:
        self._record = record
        self.name: str = record["name"]
        self.version: int = record["version"]
        self.id: str = record["id"]
        self.tags: dict = record.get("tags") or {}
        self.properties: dict = record.get("properties") or {}
        self.description: str | None = record.get("description")
        self.model_framework: str | None = record.get("framework")
        self.model_framework_version: str | None = record.get("framework_version")
        self.created_time: str | None = record.get("created_at")

    @staticmethod
    def register(workspace: Workspace, model_path: str | Path, model_name: str, tags: dict | None = None,
                 properties: dict | None = None, description: str | None = None, model_framework: str | None = None,
                 model_framework_version: str | None = None) -> Model:
        """Upload a model file or folder and register it as the next version of ``model_name``."""
        path = Path(model_path).expanduser()
        if not path.exists():
            raise InvalidInput(f"model_path {model_path} does not exist; give the path of a model file or folder")
        client = workspace._client
        if path.is_dir():
            files = [(p.relative_to(path).as_posix(), p) for p in sorted(path.rglob("*")) if p.is_file()]
            if not files:
                raise InvalidInput(f"model folder {path} is empty; register a folder that holds the model files")
            tree = client.upload_tree(files)
            sha, kind, size = tree["sha256"], "folder", tree["size_bytes"]
        else:
            sha, kind, size = client.upload_file(path), "file", path.stat().st_size
        record = client.json("POST", "/models", json={
            "name": model_name, "artifact_sha256": sha, "artifact_kind": kind, "artifact_name": path.resolve().name,
            "size_bytes": size, "description": description, "tags": _strings(tags), "properties": _strings(properties),
            "model_framework": model_framework, "model_framework_version": model_framework_version,
        })
        return Model(workspace, _record=record)

    @staticmethod
    def list(workspace: Workspace, name: str | None = None, tags: list | None = None, properties: list | None = None,
             latest: bool = False) -> list[Model]:
        """Models, filtered as Azure ML does: ``tags=["key", ["key", "value"]]``."""
        params: dict = {"latest": latest}
        if name:
            params["name"] = name
        if tags:
            params["tags"] = json.dumps(tags)
        if properties:
            params["properties"] = json.dumps(properties)
        return [Model(workspace, _record=r) for r in workspace._client.json("GET", "/models", params=params)]

    def download(self, target_dir: str | Path = ".", exist_ok: bool = False) -> str:
        """Download the model into ``target_dir``; return the path of the file or folder written.

        Nothing is written outside ``target_dir``: the model's name and its folder manifest are checked
        first, and a symlink inside ``target_dir`` that leads out is refused (InvalidInput).
        """
        from ..store.artifacts import inside, parse_manifest
        from ..store.checks import check_file_name

        folder = Path(target_dir).expanduser().resolve()
        name = check_file_name("model artifact name", self._record["artifact_name"])
        target = inside(folder, name)
        if target.exists() and not exist_ok:
            raise Conflict(f"{target} already exists; pass exist_ok=True to overwrite it or choose another target_dir")
        client = self.workspace._client
        sha = self._record["artifact_sha256"]
        if self._record["artifact_kind"] == "file":
            return str(client.download_blob(sha, folder, name))
        manifest = parse_manifest(client.request("GET", f"/blobs/{sha}").content, sha)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".modelport-", dir=target.parent))
        try:
            for entry in manifest:
                client.download_blob(entry["sha256"], staging, entry["path"]).chmod(entry["mode"])
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return str(target)

    def add_tags(self, tags: dict) -> None:
        self._update({"add_tags": _strings(tags)})

    def remove_tags(self, tags: list[str]) -> None:
        self._update({"remove_tags": list(tags)})

    def add_properties(self, properties: dict) -> None:
        self._update({"add_properties": _strings(properties)})

    def delete(self) -> None:
        """Delete this version (refused while a service uses it)."""
        self.workspace._client.json("DELETE", f"/models/{self.name}/{self.version}")

    @staticmethod
    def deploy(workspace: Workspace, name: str, models: list[Model], inference_config, deployment_config=None,
               deployment_target=None, overwrite: bool = False, show_output: bool = False):
        """Deploy models as a web service, as Azure ML's ``Model.deploy``; returns the ``Webservice`` (Transitioning),
        an ``AksEndpoint`` when ``deployment_config`` is ``AksEndpoint.deploy_configuration(...)``.

        ``deployment_target``: an attached compute target or its name (``ComputeTarget(ws, "myk8s")``,
        ``ws.compute_targets["myk8s"]``, ``"myk8s"``); None or ``"local"`` is this machine. An unattached name
        raises NotFound naming the attached ones, as ``modelport model deploy --ct`` does. ``show_output=True``
        waits, reporting progress.
        """
        from .webservice import deploy

        return deploy(workspace, name, models, inference_config, deployment_config, deployment_target, overwrite,
                      show_output)

    def serialize(self) -> dict:
        return dict(self._record)

    def _update(self, body: dict) -> None:
        self._load(self.workspace._client.json("PATCH", f"/models/{self.name}/{self.version}", json=body))

    def __repr__(self) -> str:
        return f"Model(workspace={self.workspace.name!r}, name={self.name!r}, id={self.id!r}, version={self.version})"


def _strings(values: dict | None) -> dict | None:
    """Azure ML stores tags and properties as strings."""
    return None if values is None else {str(k): str(v) for k, v in values.items()}
