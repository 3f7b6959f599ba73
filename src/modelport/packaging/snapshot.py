"""Source snapshots: the files of a source directory (minus .amlignore/.gitignore matches) stored as one manifest."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pathspec

from ..errors import InvalidInput
from ..store.artifacts import ArtifactStore, materialize, put_tree

MAX_FILE_BYTES = 100 * 1024 * 1024
MAX_TOTAL_BYTES = 1024 * 1024 * 1024
IGNORE_FILES = (".amlignore", ".gitignore")  # the first one present wins, as in Azure ML
ALWAYS_LEFT_OUT = frozenset({".git", ".modelport"})  # a workspace folder holds keys and tokens: never packaged


@dataclass(frozen=True)
class Snapshot:
    sha256: str  # the manifest's sha256 in the artifact store
    file_count: int
    size_bytes: int


def collect(source_dir: Path, max_file_bytes: int = MAX_FILE_BYTES,
            max_total_bytes: int = MAX_TOTAL_BYTES) -> list[tuple[str, Path]]:
    """The files to snapshot as sorted (relative posix path, absolute path) pairs.

    Honours the top-level ``.amlignore`` (else ``.gitignore``), always leaves out ``.git`` and any
    ``.modelport`` workspace folder (its database, keys and token must never reach a replica's app root),
    follows symlinks that stay inside ``source_dir`` and refuses those that leave it.
    """
    source = Path(source_dir)
    if not source.exists():
        raise InvalidInput(f"source directory {source} does not exist; check sourceDirectory")
    if not source.is_dir():
        raise InvalidInput(f"source directory {source} is not a directory; point sourceDirectory at a folder")
    root = source.resolve()
    walker = _Walker(root, _ignore_spec(root), max_file_bytes)
    walker.walk(root, "", frozenset({root}))
    if not walker.files:
        raise InvalidInput(f"source directory {source} has no files to package (after ignore rules); "
                           "add the entry script or check .amlignore/.gitignore")
    total = sum(size for _, _, size in walker.files)
    if total > max_total_bytes:
        raise InvalidInput(f"source directory {source} holds {total} bytes, over the {max_total_bytes} byte limit; "
                           "leave large files out with .amlignore and register them as models")
    return sorted((relative, path) for relative, path, _ in walker.files)


def snapshot(source_dir: Path, store: ArtifactStore, **limits: int) -> Snapshot:
    """Store the collected files of ``source_dir`` (see ``collect``); the same tree gives the same sha256."""
    files = collect(source_dir, **limits)
    sha256, manifest = put_tree(store, files)
    return Snapshot(sha256=sha256, file_count=len(manifest), size_bytes=sum(entry["size"] for entry in manifest))


def restore(store: ArtifactStore, sha256: str, target_dir: Path) -> list[Path]:
    """Write the snapshot's files, with their modes, under ``target_dir``; return the written paths."""
    return materialize(store, sha256, Path(target_dir))


def _ignore_spec(root: Path) -> pathspec.PathSpec | None:
    for name in IGNORE_FILES:
        path = root / name
        if path.is_file():
            return pathspec.GitIgnoreSpec.from_lines(path.read_text(encoding="utf-8", errors="replace").splitlines())
    return None


class _Walker:
    """Depth-first walk that applies the ignore spec before following any symlink."""

    def __init__(self, root: Path, spec: pathspec.PathSpec | None, max_file_bytes: int):
        self.root = root
        self.spec = spec
        self.max_file_bytes = max_file_bytes
        self.files: list[tuple[str, Path, int]] = []

    def walk(self, directory: Path, prefix: str, chain: frozenset[Path]) -> None:
        with os.scandir(directory) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name not in ALWAYS_LEFT_OUT:
                    self._visit(Path(entry.path), prefix + entry.name, entry.is_dir(), chain)

    def _visit(self, path: Path, relative: str, is_dir: bool, chain: frozenset[Path]) -> None:
        if self.spec is not None and self.spec.match_file(relative + "/" if is_dir else relative):
            return
        real = path.resolve()
        if path.is_symlink():
            self._check_link(path, relative, real)
        if is_dir:
            if real in chain:
                raise InvalidInput(f"symlink {relative} points back to its own parent folder {real}, which would loop; "
                                   "remove it or list it in .amlignore")
            self.walk(path, relative + "/", chain | {real})
        elif real.is_file():
            size = real.stat().st_size
            if size > self.max_file_bytes:
                raise InvalidInput(f"{relative} is {size} bytes, over the {self.max_file_bytes} byte limit for one "
                                   "source file; list it in .amlignore and register it as a model instead")
            self.files.append((relative, real, size))
        else:
            raise InvalidInput(f"{relative} is not a regular file (a socket, pipe or device); "
                               "remove it or list it in .amlignore")

    def _check_link(self, path: Path, relative: str, real: Path) -> None:
        target = os.readlink(path)
        if not real.exists():
            raise InvalidInput(f"symlink {relative} points to {target}, which does not exist; "
                               "fix or remove the link, or list it in .amlignore")
        if not real.is_relative_to(self.root):
            raise InvalidInput(f"symlink {relative} points to {target}, outside the source directory; "
                               "copy the file in, or list the link in .amlignore")
