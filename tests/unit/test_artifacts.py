"""The content-addressed artifact store: real files in a temporary folder."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat

import pytest

from modelport.errors import InvalidInput, NotFound
from modelport.store.artifacts import LocalArtifactStore, materialize, put_tree


@pytest.fixture
def store(tmp_path):
    return LocalArtifactStore(tmp_path / "blobs")


def stored_files(store: LocalArtifactStore) -> list[str]:
    """Every file under the store's root (blobs and any left-over temporary files)."""
    return sorted(str(path.relative_to(store.root)) for path in store.root.rglob("*") if path.is_file())


def test_bytes_are_named_by_their_sha256_and_read_back(store):
    sha = store.put_bytes(b"weights")
    assert sha == hashlib.sha256(b"weights").hexdigest()
    assert store.exists(sha)
    assert store.get_bytes(sha) == b"weights"
    assert stored_files(store) == [f"{sha[:2]}/{sha}"]


def test_the_same_file_stored_twice_is_kept_once(store, tmp_path):
    first, second = tmp_path / "a.pkl", tmp_path / "b.pkl"
    first.write_bytes(b"x" * 3_000_000)
    second.write_bytes(b"x" * 3_000_000)
    sha = store.put_file(first)
    assert store.put_file(second) == sha
    assert store.put_bytes(b"x" * 3_000_000) == sha
    assert stored_files(store) == [f"{sha[:2]}/{sha}"]  # one blob, no temporary files left behind


def test_blobs_are_read_only(store):
    sha = store.put_bytes(b"model")
    assert stat.S_IMODE(store.blob_path(sha).stat().st_mode) == 0o444


def test_copy_to_replaces_the_target_atomically(store, tmp_path):
    sha = store.put_bytes(b"new content")
    target = tmp_path / "out" / "model.bin"
    target.parent.mkdir()
    target.write_bytes(b"old content")
    with open(target, "rb") as reader:  # a reader of the old file keeps seeing all of the old content
        store.copy_to(sha, target)
        assert reader.read() == b"old content"
    assert target.read_bytes() == b"new content"
    assert os.listdir(target.parent) == ["model.bin"]


def make_tree(root, files: dict[str, bytes]) -> list:
    entries = []
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        entries.append((relative, path))
    return entries


def test_a_tree_round_trips_with_modes_and_shares_blobs(store, tmp_path):
    files = make_tree(tmp_path / "src", {"model.pkl": b"same", "sub/copy.pkl": b"same", "sub/run.sh": b"#!/bin/sh"})
    os.chmod(tmp_path / "src/sub/run.sh", 0o755)
    manifest_sha, manifest = put_tree(store, files)
    assert [entry["path"] for entry in manifest] == ["model.pkl", "sub/copy.pkl", "sub/run.sh"]
    assert json.loads(store.get_bytes(manifest_sha)) == manifest
    assert len(stored_files(store)) == 3  # "same" once, run.sh, the manifest

    written = materialize(store, manifest_sha, tmp_path / "out")
    assert sorted(path.relative_to(tmp_path / "out").as_posix() for path in written) == [
        "model.pkl", "sub/copy.pkl", "sub/run.sh"]
    assert (tmp_path / "out/sub/copy.pkl").read_bytes() == b"same"
    assert stat.S_IMODE((tmp_path / "out/sub/run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "out/model.pkl").stat().st_mode) == stat.S_IMODE(
        (tmp_path / "src/model.pkl").stat().st_mode)


def test_the_manifest_sha_depends_only_on_the_tree(tmp_path):
    one = make_tree(tmp_path / "one", {"a.txt": b"a", "b/c.txt": b"c"})
    two = make_tree(tmp_path / "two", {"b/c.txt": b"c", "a.txt": b"a"})
    sha_one, _ = put_tree(LocalArtifactStore(tmp_path / "store1"), one)
    sha_two, _ = put_tree(LocalArtifactStore(tmp_path / "store2"), list(reversed(two)))
    assert sha_one == sha_two

    (tmp_path / "two/b/c.txt").write_bytes(b"changed")
    assert put_tree(LocalArtifactStore(tmp_path / "store2"), two)[0] != sha_one
    (tmp_path / "two/b/c.txt").write_bytes(b"c")
    os.chmod(tmp_path / "two/a.txt", 0o600)
    assert put_tree(LocalArtifactStore(tmp_path / "store2"), two)[0] != sha_one


def test_a_missing_blob_is_not_found(store, tmp_path):
    missing = hashlib.sha256(b"never stored").hexdigest()
    assert not store.exists(missing)
    with pytest.raises(NotFound, match=missing):
        store.get_bytes(missing)
    with pytest.raises(NotFound, match=missing):
        store.copy_to(missing, tmp_path / "target")
    assert not (tmp_path / "target").exists()
    with pytest.raises(NotFound, match=missing):
        materialize(store, missing, tmp_path / "out")


def test_a_manifest_whose_blob_is_gone_is_not_found(store, tmp_path):
    manifest_sha, manifest = put_tree(store, make_tree(tmp_path / "src", {"model.pkl": b"weights"}))
    store.blob_path(manifest[0]["sha256"]).unlink()
    with pytest.raises(NotFound, match=manifest[0]["sha256"]):
        materialize(store, manifest_sha, tmp_path / "out")


@pytest.mark.parametrize("name", ["../../../etc/passwd", "A" * 64, "", "ab/" + "0" * 61])
def test_a_blob_is_named_only_by_a_sha256(store, name):
    for call in (store.exists, store.get_bytes, store.blob_path):
        with pytest.raises(InvalidInput, match=f"^blob digest {re.escape(repr(name))} is not a sha256"):
            call(name)
