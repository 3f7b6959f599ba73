"""Models and workspaces through the SDK and the real control plane server process (SQLite)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from modelport import Model, Workspace
from modelport.api import server
from modelport.errors import Conflict, InvalidInput, NotFound


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    workspace = Workspace.create("testws", tmp_path_factory.mktemp("ws"))
    yield workspace
    server.stop(workspace._dir)


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(os.urandom(2048))
    return path


def blob_count(ws) -> int:
    return sum(1 for p in ws._dir.artifacts.rglob("*") if p.is_file())


def test_register_counts_versions_per_name_and_stores_content_once(ws, model_file):
    first = Model.register(ws, model_file, "counted", tags={"stage": "dev"}, description="first")
    blobs = blob_count(ws)
    second = Model.register(ws, model_file, "counted")
    assert (first.version, second.version) == (1, 2)
    assert second.id == "counted:2"
    assert blob_count(ws) == blobs  # the same file registered twice is stored once
    assert Model(ws, "counted").version == 2
    assert Model(ws, id="counted:1").tags == {"stage": "dev"}
    assert Model(ws, "counted", version=1).description == "first"


def test_download_returns_the_file_and_refuses_to_overwrite(ws, model_file, tmp_path):
    model = Model.register(ws, model_file, "downloadable")
    target = tmp_path / "out"
    path = model.download(target)
    assert Path(path) == target / "model.pkl"
    assert Path(path).read_bytes() == model_file.read_bytes()
    with pytest.raises(Conflict, match="exist_ok=True"):
        model.download(target)
    assert model.download(target, exist_ok=True) == path


def test_folder_round_trip(ws, tmp_path):
    folder = tmp_path / "net"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"\x00\x01" * 100)
    (folder / "sub" / "config.json").write_text('{"layers": 3}')
    model = Model.register(ws, folder, "folder-model")
    path = Path(model.download(tmp_path / "back"))
    assert path.name == "net"
    assert (path / "weights.bin").read_bytes() == b"\x00\x01" * 100
    assert (path / "sub" / "config.json").read_text() == '{"layers": 3}'


def test_list_filters_like_azure_ml(ws, model_file):
    Model.register(ws, model_file, "listed", tags={"team": "a", "kind": "x"}, properties={"auc": "0.9"})
    Model.register(ws, model_file, "listed", tags={"team": "b"})
    assert sorted(m.version for m in Model.list(ws, name="listed")) == [1, 2]
    assert [m.version for m in Model.list(ws, name="listed", tags=[["team", "a"]])] == [1]
    assert [m.version for m in Model.list(ws, name="listed", tags=["kind"])] == [1]
    assert [m.version for m in Model.list(ws, name="listed", properties=[["auc", "0.9"]])] == [1]
    assert [m.version for m in Model.list(ws, name="listed", latest=True)] == [2]
    assert ws.models["listed"].version == 2


def test_tags_and_properties(ws, model_file):
    model = Model.register(ws, model_file, "tagged", properties={"p": "1"})
    model.add_tags({"a": 1})
    assert Model(ws, id=model.id).tags == {"a": "1"}
    model.remove_tags(["a"])
    assert Model(ws, id=model.id).tags == {}
    model.add_properties({"q": "2"})
    assert Model(ws, id=model.id).properties == {"p": "1", "q": "2"}
    with pytest.raises(InvalidInput):
        model.add_properties({"p": "changed"})  # properties are add-only


def test_delete(ws, model_file):
    model = Model.register(ws, model_file, "deleted")
    model.delete()
    with pytest.raises(NotFound):
        Model(ws, id=model.id)


@pytest.mark.parametrize(("call", "error", "message"), [
    (lambda ws, p: Model(ws, "never-registered"), NotFound, "never-registered"),
    (lambda ws, p: Model(ws, id="counted:99"), NotFound, "99"),
    (lambda ws, p: Model.register(ws, p.parent / "missing.pkl", "m"), InvalidInput, "does not exist"),
    (lambda ws, p: Model.register(ws, p, "bad name!"), InvalidInput, "not allowed"),
    (lambda ws, p: Model(ws, id="no-version"), InvalidInput, "NAME:VERSION"),
])
def test_bad_input_gives_one_clear_message(ws, model_file, call, error, message):
    with pytest.raises(error, match=message):
        call(ws, model_file)


def test_empty_folder_is_refused_and_nothing_is_registered(ws, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="empty"):
        Model.register(ws, tmp_path / "empty", "empty-model")
    assert Model.list(ws, name="empty-model") == []


def test_wrong_or_missing_token_is_401(ws):
    url = server.read_info(ws._dir)["url"] if server.read_info(ws._dir) else server.ensure_running(ws._dir)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": ws._dir.token()}):
        response = httpx.get(f"{url}/api/v1/models", headers=headers)
        assert response.status_code == 401
        assert "workspace token" in response.json()["message"]
    ok = httpx.get(f"{url}/api/v1/models", headers={"Authorization": f"Bearer {ws._dir.token()}"})
    assert ok.status_code == 200
    assert httpx.get(f"{url}/openapi.json").json()["info"]["title"] == "modelport control plane"


def test_token_file_is_private(ws):
    assert ws._dir.token_path.stat().st_mode & 0o777 == 0o600


def test_a_dead_server_is_restarted_by_the_client(ws, model_file):
    Model.register(ws, model_file, "before-crash")
    old_pid = server.read_info(ws._dir)["pid"]
    os.kill(old_pid, signal.SIGKILL)
    time.sleep(0.2)
    model = Model.register(ws, model_file, "after-crash")
    assert model.version == 1
    assert server.read_info(ws._dir)["pid"] != old_pid
    assert server.status(ws._dir)["running"] is True


def test_from_config_finds_the_workspace_in_a_parent(ws):
    nested = ws.path / "a" / "b"
    nested.mkdir(parents=True, exist_ok=True)
    assert Workspace.from_config(nested).name == "testws"
    with pytest.raises(NotFound, match="not 'other'"):
        Workspace.get("other", ws.path)
