"""A service version's app root from stored data: a hostile manifest or name fails it and writes nothing outside.

The app root goes to ``<tmp>/ws/services/svc/v1/app`` in a real artifact store; "outside" is the rest of
``<tmp>``, compared file by file before and after.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from modelport.errors import InvalidInput
from modelport.reconcile.app_root import MARKER, prepare
from modelport.store.artifacts import LocalArtifactStore


@pytest.fixture
def store(tmp_path):
    return LocalArtifactStore(tmp_path / "ws" / "artifacts")


@pytest.fixture
def root(tmp_path):
    return tmp_path / "ws" / "services" / "svc" / "v1" / "app"


def files_under(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*")}


def tree(store: LocalArtifactStore, files: dict[str, bytes]) -> str:
    entries = [{"path": path, "sha256": store.put_bytes(data), "size": len(data), "mode": 0o644}
               for path, data in files.items()]
    return store.put_bytes(json.dumps(entries).encode())


def folder_model(sha: str, name: str = "net", model: str = "m", version: int = 1) -> dict:
    return {"name": model, "version": version, "artifact_sha256": sha, "artifact_kind": "folder", "artifact_name": name}


def file_model(sha: str, name: str = "model.pkl", model: str = "m", version: int = 1) -> dict:
    return {"name": model, "version": version, "artifact_sha256": sha, "artifact_kind": "file", "artifact_name": name}


def test_a_layout_from_clean_data_is_made_once(store, root):
    snapshot = tree(store, {"score.py": b"def init(): pass", "azureml-models/m/1/model.pkl": b"stale copy"})
    models = [file_model(store.put_bytes(b"weights")), folder_model(tree(store, {"w.bin": b"1", "sub/c.json": b"{}"}),
                                                                     model="n", version=2)]
    assert prepare(root, store, snapshot, models) == root
    assert files_under(root) == {MARKER, "score.py", "azureml-models", "azureml-models/m", "azureml-models/m/1",
                                 "azureml-models/m/1/model.pkl", "azureml-models/n", "azureml-models/n/2",
                                 "azureml-models/n/2/net", "azureml-models/n/2/net/w.bin", "azureml-models/n/2/net/sub",
                                 "azureml-models/n/2/net/sub/c.json"}
    assert (root / "azureml-models/m/1/model.pkl").read_bytes() == b"weights"  # the model wins over the snapshot


@pytest.mark.parametrize(("hostile", "reason"), [
    ("../" * 20 + "{tmp}/escape/x", "has the part '..', which names a folder or its parent"),
    ("../../../../../escape/x", "has the part '..', which names a folder or its parent"),
    ("/{tmp}/escape/x", "is absolute"),
])
def test_a_hostile_model_manifest_fails_the_version_and_writes_nothing(store, root, tmp_path, hostile, reason):
    hostile = hostile.replace("{tmp}", str(tmp_path).lstrip("/"))
    snapshot = tree(store, {"score.py": b"x"})
    model_sha = tree(store, {"ok.bin": b"ok", hostile: b"escaped?"})
    root.mkdir(parents=True)
    (root / "half-made").write_text("from an interrupted earlier attempt")
    before = files_under(tmp_path) - {f"ws/services/svc/v1/app{suffix}" for suffix in ("", "/half-made")}

    with pytest.raises(InvalidInput) as refused:
        prepare(root, store, snapshot, [folder_model(model_sha)])

    message = str(refused.value)
    assert message.startswith(f"folder manifest {model_sha[:12]} entry 1 path '")
    assert f" {reason}" in message  # after the path, which is shortened when long
    assert not (tmp_path / "escape").exists()
    assert files_under(tmp_path) == before  # the root (and what an earlier attempt left) is gone too


def test_a_hostile_snapshot_fails_the_version(store, root, tmp_path):
    snapshot = tree(store, {"score.py": b"x", "../../../../escape/x": b"escaped?"})
    expected = f"folder manifest {snapshot[:12]} entry 1 path '../../../../escape/x' has the part '..', which"
    with pytest.raises(InvalidInput, match=re.escape(expected)):
        prepare(root, store, snapshot, [file_model(store.put_bytes(b"w"))])
    assert not root.exists() and not (tmp_path / "ws" / "escape").exists()


@pytest.mark.parametrize(("model", "message"), [
    (file_model("0" * 64, name="../../../../escape"), "model artifact name '../../../../escape' has the part '..'"),
    (file_model("0" * 64, name="sub/x"), "model artifact name 'sub/x' contains '/'"),
    (file_model("0" * 64, model=".."), "model folder 'azureml-models/../1/model.pkl' has the part '..'"),
    (file_model("0" * 64, model="../../../.."), "model folder 'azureml-models/../../../../1/model.pkl' has"),
])
def test_stored_model_names_cannot_climb_out(store, root, tmp_path, model, message):
    with pytest.raises(InvalidInput, match=re.escape(message)):
        prepare(root, store, tree(store, {"score.py": b"x"}), [model])
    assert {path for path in files_under(tmp_path) if not path.startswith("ws/artifacts")} == {"ws"}


def test_a_snapshot_file_where_a_model_folder_goes_is_named(store, root):
    snapshot = tree(store, {"score.py": b"x", "azureml-models": b"a file"})
    with pytest.raises(InvalidInput) as refused:
        prepare(root, store, snapshot, [file_model(store.put_bytes(b"w"))])
    assert str(refused.value) == (
        "the app root (source snapshot plus models) lists 'azureml-models' as a file and "
        "'azureml-models/m/1/model.pkl' inside it; a path cannot be both a file and a folder, so rename one of them")
    assert not root.exists()
