"""Hostile folder manifests through the real control plane (HTTP), the SDK and the CLI: refused, nothing outside.

The reproduction of issue 7 fault 5: upload a manifest blob whose path climbs out (``PUT /blobs``),
register a folder model on it, download it with ``model download -t dl/a/b`` (it wrote
``dl/a/escape/x``) and deploy it (the control plane wrote outside the workspace). Registration, snapshot
and tree creation now refuse such a manifest; a model stored by an older modelport (written into the
database directly here) is refused on download and fails on deploy, with nothing written outside.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from modelport import AksWebservice, InferenceConfig, Model, Webservice, Workspace
from modelport.api import server
from modelport.errors import InvalidInput
from modelport.store.db import Store
from modelport.store.models import Model as ModelRow

APP = Path(__file__).resolve().parents[1] / "fixtures" / "deploy_app"
CONTENT = b"escaped?"
PATH_RULE = "a path is relative, made of '/'-separated file and folder names"


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    workspace = Workspace.create("manifestws", tmp_path_factory.mktemp("ws"))
    yield workspace
    server.stop(workspace._dir)


@pytest.fixture(scope="module")
def api(ws):
    """An HTTP client of the workspace's real control plane, as any client would use it."""
    url = server.ensure_running(ws._dir)
    with httpx.Client(base_url=f"{url}/api/v1", headers={"Authorization": f"Bearer {ws._dir.token()}"}) as client:
        yield client


def put_blob(api: httpx.Client, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    response = api.put(f"/blobs/{sha}", content=data)
    assert response.status_code == 200, response.text
    return sha


def hostile_manifest(api: httpx.Client, path: str) -> tuple[str, list[dict]]:
    """A manifest blob uploaded directly, as the issue's reproduction does; returns its sha256 and entries."""
    entries = [{"path": path, "sha256": put_blob(api, CONTENT), "size": len(CONTENT), "mode": 0o644}]
    return put_blob(api, json.dumps(entries).encode()), entries


def stored_before_the_fix(ws, name: str, manifest_sha: str) -> Model:
    """A folder model row as an older modelport registered it (no manifest check), written into the database."""
    with Store(ws._dir.store_url) as store:
        store.register_model(name, manifest_sha, "folder", "net", len(CONTENT))
    return Model(ws, name)


def files_under(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*")}


def modelport(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modelport.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


CLIMBING = ["../../escape/x", "../" * 20 + "tmp/modelport-escape/x", "net/../../x", "/tmp/modelport-escape/x",
            "a\\..\\..\\x", "\uff0e\uff0e/\uff0e\uff0e/x"]


@pytest.mark.parametrize("path", CLIMBING)
def test_a_climbing_manifest_is_refused_wherever_it_is_referenced(api, path):
    manifest_sha, entries = hostile_manifest(api, path)
    expected = f"folder manifest {manifest_sha[:12]} entry 0 path "

    model = api.post("/models", json={"name": "escape", "artifact_sha256": manifest_sha, "artifact_kind": "folder",
                                      "artifact_name": "net", "size_bytes": len(CONTENT)})
    assert model.status_code == 400
    assert model.json()["code"] == "InvalidInput"
    assert model.json()["message"].startswith(expected) and PATH_RULE in model.json()["message"]
    assert api.get("/models", params={"name": "escape"}).json() == []

    snapshot = api.post("/snapshots", json={"sha256": manifest_sha, "file_count": 1, "size_bytes": len(CONTENT)})
    assert (snapshot.status_code, snapshot.json()["message"]) == (400, model.json()["message"])
    assert api.get(f"/snapshots/{manifest_sha}").status_code == 404

    tree = api.post("/trees", json=entries)
    assert tree.status_code == 400
    assert tree.json()["message"] == model.json()["message"].replace(f"folder manifest {manifest_sha[:12]}", "tree")


@pytest.mark.parametrize(("body", "message"), [
    ({"artifact_name": "../escape.pkl"}, "artifact name '../escape.pkl' has the part '..', which names a folder"),
    ({"artifact_name": "sub/model.pkl"}, "artifact name 'sub/model.pkl' contains '/'; use one file or folder name"),
    ({"artifact_name": "model\x00.pkl"}, "artifact name 'model\\x00.pkl' contains the control character '\\x00'"),
    ({"artifact_sha256": "../../../../etc/passwd"},
     "blob digest '../../../../etc/passwd' is not a sha256 (64 lowercase hex digits)"),
])
def test_a_file_model_needs_a_plain_name_and_a_real_digest(api, body, message):
    registration = {"name": "plain", "artifact_sha256": put_blob(api, b"weights"), "artifact_kind": "file",
                    "artifact_name": "model.pkl", "size_bytes": 7, **body}
    response = api.post("/models", json=registration)
    assert (response.status_code, response.json()["message"][:len(message)]) == (400, message)
    assert api.get("/models", params={"name": "plain"}).json() == []


def test_a_manifest_must_list_stored_blobs_and_its_snapshot_counts_must_match(api):
    never_uploaded = hashlib.sha256(b"never uploaded").hexdigest()
    entries = [{"path": "weights.bin", "sha256": never_uploaded, "size": 3, "mode": 0o644}]
    manifest_sha = put_blob(api, json.dumps(entries).encode())
    for response in (api.post("/models", json={"name": "holes", "artifact_sha256": manifest_sha, "size_bytes": 3,
                                               "artifact_kind": "folder", "artifact_name": "net"}),
                     api.post("/snapshots", json={"sha256": manifest_sha, "file_count": 1, "size_bytes": 3}),
                     api.post("/trees", json=entries)):
        assert (response.status_code, response.json()["message"]) == (
            400, "upload these files' blobs before their tree: weights.bin")

    manifest_sha, _ = hostile_manifest(api, "score.py")
    response = api.post("/snapshots", json={"sha256": manifest_sha, "file_count": 5, "size_bytes": 1})
    assert (response.status_code, response.json()["message"]) == (
        400, f"snapshot {manifest_sha} holds 1 files of {len(CONTENT)} bytes, not 5 files of 1 bytes; "
             "send the counts POST /trees returned")
    assert api.post("/snapshots", json={"sha256": manifest_sha, "file_count": 1,
                                        "size_bytes": len(CONTENT)}).status_code == 201


def test_downloading_a_climbing_model_from_before_the_fix_writes_nothing(ws, api, tmp_path):
    manifest_sha, _ = hostile_manifest(api, "../../escape/x")
    model = stored_before_the_fix(ws, "old-escape", manifest_sha)
    expected = (f"folder manifest {manifest_sha[:12]} entry 0 path '../../escape/x' has the part '..', which names "
                "a folder or its parent, not a file; " + PATH_RULE)

    with pytest.raises(InvalidInput) as refused:
        model.download(tmp_path / "dl" / "a" / "b")
    assert str(refused.value).startswith(expected)
    assert not (tmp_path / "dl").exists()

    cli = modelport(ws.path, "model", "download", "-i", "old-escape:1", "-t", str(tmp_path / "cli" / "a" / "b"))
    assert cli.returncode == 1
    assert cli.stderr.startswith(f"Error: {expected}") and len(cli.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "cli").exists()


def test_a_stored_name_that_climbs_is_refused_on_download(ws, api, tmp_path):
    model = Model.register(ws, _file(tmp_path / "model.pkl", b"weights"), "renamed-by-hand")
    with Store(ws._dir.store_url) as store, store.session() as session:  # as an older modelport let it be stored
        session.execute(update(ModelRow).where(ModelRow.name == "renamed-by-hand").values(artifact_name="../esc.pkl"))
    with pytest.raises(InvalidInput, match=r"^model artifact name '\.\./esc\.pkl' has the part '\.\.'"):
        Model(ws, id=model.id).download(tmp_path / "dl")
    assert files_under(tmp_path) == {"model.pkl"}


def test_a_symlink_in_the_download_folder_that_leads_out_is_not_followed(ws, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = _file(outside / "victim.pkl", b"do not overwrite")
    file_model = Model.register(ws, _file(tmp_path / "src" / "model.pkl", b"weights"), "linked-file")
    folder_model = Model.register(ws, tmp_path / "src", "linked-folder")
    target = tmp_path / "dl"
    target.mkdir()
    (target / "model.pkl").symlink_to(victim)
    (target / "src").symlink_to(outside)

    for model, name, leads_to in ((file_model, "model.pkl", victim), (folder_model, "src", outside)):
        with pytest.raises(InvalidInput) as refused:
            model.download(target, exist_ok=True)
        assert str(refused.value) == (
            f"'{name}' under {target} leads to {leads_to}, outside that folder (through '..', an absolute path or a "
            "symlink); remove the symlink or fix the path")
    cli = modelport(ws.path, "model", "download", "-i", file_model.id, "-t", str(target), "--overwrite")
    assert (cli.returncode, cli.stderr.startswith(f"Error: 'model.pkl' under {target} leads to {victim}")) == (1, True)
    assert victim.read_bytes() == b"do not overwrite"
    assert files_under(outside) == {"victim.pkl"}
    assert files_under(target) == {"model.pkl", "src"}  # the two links, untouched


def test_a_clean_folder_still_downloads_with_its_modes(ws, tmp_path):
    folder = tmp_path / "net"
    _file(folder / "sub" / "run.sh", b"#!/bin/sh\n").chmod(0o750)
    _file(folder / "w.bin", b"\x00\x01").chmod(0o600)
    path = Path(Model.register(ws, folder, "clean-folder").download(tmp_path / "dl"))
    assert path == tmp_path / "dl" / "net"
    assert files_under(tmp_path / "dl") == {"net", "net/sub", "net/sub/run.sh", "net/w.bin"}
    assert ((path / "sub/run.sh").stat().st_mode & 0o777, (path / "w.bin").stat().st_mode & 0o777) == (0o750, 0o600)


def test_deploying_a_climbing_model_from_before_the_fix_is_refused_and_writes_nothing(ws, api, tmp_path):
    escape = tmp_path / "escape"
    manifest_sha, _ = hostile_manifest(api, "../" * 20 + str(escape / "x").lstrip("/"))
    model = stored_before_the_fix(ws, "old-deploy", manifest_sha)
    config = AksWebservice.deploy_configuration(num_replicas=1, auth_enabled=False)
    with pytest.raises(InvalidInput) as refused:
        Model.deploy(ws, "escape-svc", [model], InferenceConfig("score.py", source_directory=APP), config)
    assert str(refused.value).startswith(f"folder manifest {manifest_sha[:12]} entry 0 path '../../")
    assert "has the part '..', which names a folder or its parent, not a file" in str(refused.value)
    assert not escape.exists()
    assert not (ws._dir.root / "services" / "escape-svc").exists()
    assert "escape-svc" not in [s.name for s in Webservice.list(ws)]


def _file(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path
