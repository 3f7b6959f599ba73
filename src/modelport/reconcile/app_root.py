"""The app root of a service version: its source snapshot plus ``azureml-models/<name>/<version>/...``.

Files are hard links to the workspace's read-only blobs when the file system allows (no
copy of a large model per version), copies otherwise. A finished root has a marker file,
so it is made once per version, and a half-made one is removed and made again.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..store.artifacts import LocalArtifactStore

MARKER = ".modelport-app-root"


def prepare(root: Path, artifacts: LocalArtifactStore, snapshot_sha: str, models: list[dict]) -> Path:
    """Lay out ``root`` once: the snapshot's files, then each model under azureml-models."""
    if (root / MARKER).exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    _tree(artifacts, snapshot_sha, root)
    for model in models:
        target = root / "azureml-models" / model["name"] / str(model["version"]) / model["artifact_name"]
        if model["artifact_kind"] == "file":
            _place(artifacts, model["artifact_sha256"], target)
        else:
            _tree(artifacts, model["artifact_sha256"], target)
    (root / MARKER).write_text("")
    return root


def _tree(artifacts: LocalArtifactStore, manifest_sha: str, target: Path) -> None:
    for entry in json.loads(artifacts.get_bytes(manifest_sha)):
        _place(artifacts, entry["sha256"], target / entry["path"])


def _place(artifacts: LocalArtifactStore, sha: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(artifacts.blob_path(sha), target)
    except OSError:
        artifacts.copy_to(sha, target)
