"""Content-addressed artifact storage: blobs named by their sha256.

``ArtifactStore`` is the interface (an S3-compatible store can implement it later);
``LocalArtifactStore`` keeps blobs in a folder of the workspace. Writing the same content
twice stores it once. Folders are stored as a manifest blob listing each file's blob.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Protocol

from ..errors import NotFound

CHUNK = 1 << 20


class ArtifactStore(Protocol):
    def put_file(self, path: Path) -> str:
        """Store a file's content; return its sha256."""

    def put_bytes(self, data: bytes) -> str:
        """Store bytes; return their sha256."""

    def get_bytes(self, sha256: str) -> bytes:
        """The content of a blob (NotFound if absent)."""

    def exists(self, sha256: str) -> bool: ...

    def copy_to(self, sha256: str, target: Path) -> None:
        """Write a blob's content to ``target`` (created or replaced atomically)."""


class LocalArtifactStore:
    """Blobs at ``<root>/<first two hex digits>/<sha256>``, written atomically."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def blob_path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def put_file(self, path: Path) -> str:
        digest = hashlib.sha256()
        with open(path, "rb") as source, tempfile.NamedTemporaryFile(dir=self.root, delete=False) as tmp:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                tmp.write(chunk)
        return self._commit(Path(tmp.name), digest.hexdigest())

    def put_bytes(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        if self.exists(sha):
            return sha
        with tempfile.NamedTemporaryFile(dir=self.root, delete=False) as tmp:
            tmp.write(data)
        return self._commit(Path(tmp.name), sha)

    def _commit(self, tmp: Path, sha: str) -> str:
        target = self.blob_path(sha)
        if target.exists():
            tmp.unlink()
            return sha
        target.parent.mkdir(exist_ok=True)
        os.chmod(tmp, 0o444)
        os.replace(tmp, target)
        return sha

    def exists(self, sha256: str) -> bool:
        return self.blob_path(sha256).is_file()

    def get_bytes(self, sha256: str) -> bytes:
        return self._existing(sha256).read_bytes()

    def copy_to(self, sha256: str, target: Path) -> None:
        source = self._existing(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp, open(source, "rb") as blob:
            shutil.copyfileobj(blob, tmp, CHUNK)
        os.replace(tmp.name, target)

    def _existing(self, sha256: str) -> Path:
        path = self.blob_path(sha256)
        if not path.is_file():
            raise NotFound(f"artifact {sha256} is missing from {self.root}; the workspace's artifact folder is damaged")
        return path


def put_tree(store: ArtifactStore, files: list[tuple[str, Path]]) -> tuple[str, list[dict]]:
    """Store files given as (relative path, source path); return the manifest's sha256 and the manifest.

    The manifest is a JSON list of ``{"path", "sha256", "size", "mode"}`` sorted by path,
    so the same tree always has the same manifest sha256.
    """
    manifest = []
    for relative, source in sorted(files):
        stat = source.stat()
        manifest.append({"path": relative, "sha256": store.put_file(source), "size": stat.st_size,
                         "mode": stat.st_mode & 0o777})
    return store.put_bytes(json.dumps(manifest, sort_keys=True).encode()), manifest


def materialize(store: ArtifactStore, manifest_sha256: str, target: Path) -> list[Path]:
    """Write the tree of a manifest under ``target``; return the written paths."""
    written = []
    for entry in json.loads(store.get_bytes(manifest_sha256)):
        path = target / entry["path"]
        store.copy_to(entry["sha256"], path)
        os.chmod(path, entry["mode"])
        written.append(path)
    return written
