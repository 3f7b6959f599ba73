"""The app root of a service version: its source snapshot plus ``azureml-models/<name>/<version>/...``.

As Azure ML laid it out: a snapshot of ``InferenceConfig(source_directory="src")`` lies in ``<root>/src/``
(the runtime gets ``AZUREML_SOURCE_DIRECTORY=src`` and the entry script ``src/<entry script>``, with the
root as working directory); a snapshot made without a source directory lies in the root itself.

Files are hard links to the workspace's read-only blobs when the file system allows (no
copy of a large model per version), copies otherwise. A finished root has a marker file,
so it is made once per version, and a half-made one is removed and made again.

Every path comes from stored data (manifests, model names and versions), so the whole layout is
checked before anything is written, and each file is placed through ``artifacts.inside``: a
hostile manifest fails the version with a one-line reason and writes nothing outside the root.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..store.artifacts import LocalArtifactStore, inside, read_manifest
from ..store.checks import check_file_name, check_no_clash, check_relative_path

MARKER = ".modelport-app-root"
MODELS_FOLDER = "azureml-models"


def prepare(root: Path, artifacts: LocalArtifactStore, snapshot_sha: str, models: list[dict],
            source_folder: str | None = None) -> Path:
    """Lay out ``root`` once: the snapshot's files (in ``root/source_folder`` when given), then each model
    under azureml-models.

    ``models`` are dicts with name, version, artifact_sha256, artifact_kind ("file" or "folder") and
    artifact_name. Raises InvalidInput (nothing left at ``root``) when a manifest, name or layout is unsafe,
    NotFound when a blob is missing.
    """
    if (root / MARKER).exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    try:
        for relative, sha in layout(artifacts, snapshot_sha, models, source_folder).items():
            _place(artifacts, sha, inside(root, relative))
        (root / MARKER).write_text("")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return root


def layout(artifacts: LocalArtifactStore, snapshot_sha: str, models: list[dict],
           source_folder: str | None = None) -> dict[str, str]:
    """Every file of the app root as ``{relative path: blob sha256}``, checked (a model beats the snapshot).

    Reads only manifests and writes nothing, so a deploy can call it to refuse unsafe stored data up front.
    Raises InvalidInput naming the bad manifest entry, name or clash; NotFound when a manifest is missing.
    """
    prefix = f"{check_file_name('source folder name', source_folder)}/" if source_folder else ""
    files = {f"{prefix}{entry['path']}": entry["sha256"] for entry in read_manifest(artifacts, snapshot_sha)}
    for model in models:
        name = check_file_name("model artifact name", model["artifact_name"])
        folder = check_relative_path("model folder", f"{MODELS_FOLDER}/{model['name']}/{model['version']}/{name}")
        if model["artifact_kind"] == "file":
            files[folder] = model["artifact_sha256"]
        else:
            files.update({f"{folder}/{entry['path']}": entry["sha256"]
                          for entry in read_manifest(artifacts, model["artifact_sha256"])})
    check_no_clash("the app root (source snapshot plus models)", files)
    return files


def _place(artifacts: LocalArtifactStore, sha: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(artifacts.blob_path(sha), target)
    except OSError:
        artifacts.copy_to(sha, target)
