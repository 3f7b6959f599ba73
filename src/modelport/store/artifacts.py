"""Content-addressed artifact storage: blobs named by their sha256.

``ArtifactStore`` is the interface (an S3-compatible store can implement it later);
``LocalArtifactStore`` keeps blobs in a folder of the workspace. Writing the same content
twice stores it once. Folders are stored as a manifest blob listing each file's blob.

A manifest is data from outside (anyone with the token can upload a blob): ``read_manifest`` and
``parse_manifest`` check it (``checks.check_manifest``) wherever it is used, and ``inside`` is the one way
a path from stored data becomes a file to write, so no write leaves its folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Protocol

from ..errors import InvalidInput, NotFound
from .checks import check_manifest, check_sha256, listing, shown

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
        """Where a blob is kept; InvalidInput unless ``sha256`` is 64 lowercase hex digits."""
        check_sha256("blob", sha256)
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


def parse_manifest(data: bytes, sha256: str) -> list[dict]:
    """The checked entries of the folder manifest ``data`` (the content of blob ``sha256``).

    Raises InvalidInput when it is not JSON or not a manifest (see ``checks.check_manifest``).
    """
    try:
        entries = json.loads(data)
    except (ValueError, RecursionError):
        raise InvalidInput(f"blob {sha256} is not a folder manifest (not JSON); upload the folder with the modelport "
                           "SDK or CLI, or register a single file with artifact_kind 'file'") from None
    return check_manifest(entries, f"folder manifest {sha256[:12]}")


def read_manifest(store: ArtifactStore, sha256: str) -> list[dict]:
    """The checked entries of the stored folder manifest ``sha256`` (NotFound if absent, else as ``parse_manifest``)."""
    return parse_manifest(store.get_bytes(sha256), sha256)


def require_blobs(store: ArtifactStore, manifest: list[dict]) -> None:
    """Refuse a manifest (InvalidInput) whose files' blobs are not all stored yet."""
    missing = [entry["path"] for entry in manifest if not store.exists(entry["sha256"])]
    if missing:
        raise InvalidInput(f"upload these files' blobs before their tree: {listing(missing, 5)}")


def inside(folder: Path, relative: str) -> Path:
    """The file ``relative`` names under ``folder``, with every symlink on the way followed.

    ``folder`` is the caller's choice and taken as it resolves; the result must lie strictly inside it,
    so neither ``..``, an absolute path nor a symlink below ``folder`` that leads elsewhere can place a
    write outside. Raises InvalidInput naming the path and where it leads.
    """
    base = Path(folder).resolve()
    try:
        target = (base / relative).resolve()
    except (OSError, RuntimeError, ValueError) as err:  # a symlink loop, a NUL
        raise InvalidInput(f"{shown(relative)} under {base} cannot be resolved ({err}); remove the looping symlink "
                           "or fix the path") from None
    if target == base or not target.is_relative_to(base):
        raise InvalidInput(f"{shown(relative)} under {base} leads to {target}, outside that folder (through '..', "
                           "an absolute path or a symlink); remove the symlink or fix the path")
    return target


def materialize(store: ArtifactStore, manifest_sha256: str, target: Path) -> list[Path]:
    """Write the tree of a manifest under ``target``; return the written paths.

    The manifest is checked first (InvalidInput, nothing written); each file goes through ``inside``.
    """
    written = []
    for entry in read_manifest(store, manifest_sha256):
        path = inside(target, entry["path"])
        store.copy_to(entry["sha256"], path)
        os.chmod(path, entry["mode"])
        written.append(path)
    return written
