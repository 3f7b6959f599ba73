"""The ``modelport`` CLI for workspaces, models and environments, as a user types it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from modelport.api import server
from modelport.api.workspace_dir import WorkspaceDir


def modelport(cwd, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modelport.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli")
    assert modelport(path, "workspace", "create", "-n", "cliws", "-o", "json").returncode == 0
    (path / "model.pkl").write_bytes(b"weights")
    yield path
    server.stop(WorkspaceDir.at(path))


def test_model_commands_round_trip(folder):
    registered = modelport(folder, "model", "register", "-n", "clf", "-p", "model.pkl", "--tag", "stage=dev",
                           "-o", "json")
    assert registered.returncode == 0, registered.stderr
    assert json.loads(registered.stdout)["id"] == "clf:1"
    listed = json.loads(modelport(folder, "model", "list", "-o", "json").stdout)
    assert [m["id"] for m in listed] == ["clf:1"]
    header, row = modelport(folder, "model", "list").stdout.splitlines()  # stdout is a pipe: tab-separated
    assert header.split("\t") == ["id", "name", "version", "artifact_name", "size_bytes", "tags", "created_at"]
    assert row.split("\t")[:6] == ["clf:1", "clf", "1", "model.pkl", "7", "stage=dev"]
    downloaded = modelport(folder, "model", "download", "-i", "clf:1", "-t", "out")
    assert (folder / "out" / "model.pkl").read_bytes() == b"weights", downloaded.stderr
    assert modelport(folder, "model", "delete", "-i", "clf:1").returncode == 0
    assert json.loads(modelport(folder, "model", "list", "-o", "json").stdout) == []


@pytest.mark.parametrize(("args", "message"), [
    (("model", "show", "-i", "clf:42"), "clf"),
    (("model", "register", "-n", "x", "-p", "missing.pkl"), "does not exist"),
    (("model", "show", "-i", "never:1"), "never"),
    (("environment", "show", "-n", "nope"), "nope"),
])
def test_errors_are_one_line_and_exit_1(folder, args, message):
    result = modelport(folder, *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_environment_register_and_show(folder):
    (folder / "requirements.txt").write_text("six==1.16.0\n")
    result = modelport(folder, "environment", "register", "-n", "cli-env", "--pip-requirements", "requirements.txt",
                       "-o", "json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(modelport(folder, "environment", "show", "-n", "cli-env", "-o", "json").stdout)
    assert (shown["version"], shown["pip_packages"]) == ("1", "six==1.16.0")


def test_server_status_and_stop(folder):
    assert json.loads(modelport(folder, "server", "status", "-o", "json").stdout)["running"] is True
    assert modelport(folder, "server", "stop").stdout.strip() == "Stopped."
    assert json.loads(modelport(folder, "server", "status", "-o", "json").stdout)["running"] is False
    assert modelport(folder, "workspace", "show", "-o", "json").returncode == 0  # starts it again


def test_outside_a_workspace_says_how_to_make_one(tmp_path):
    result = modelport(tmp_path, "model", "list")
    assert result.returncode == 1
    assert "modelport workspace create" in result.stderr
