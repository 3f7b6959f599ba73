"""``modelport environment register --environment-file``: Azure's Environment JSON under the key rule."""

from __future__ import annotations

import json

import pytest

from modelport.api import server
from modelport.api.workspace_dir import WorkspaceDir

from .test_cli_workspace import modelport


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("envcli")
    assert modelport(path, "workspace", "create", "-n", "envcliws", "-o", "json").returncode == 0
    yield path
    server.stop(WorkspaceDir.at(path))


def test_conda_dependencies_file_is_read_and_an_unknown_key_warns_in_one_line(folder):
    (folder / "env").mkdir()
    (folder / "env" / "conda.yml").write_text("dependencies:\n  - python=3.11\n  - pip:\n    - joblib==1.4.2\n")
    (folder / "env" / "environment.json").write_text(json.dumps({
        "name": "from-file", "python": {"userManagedDependencies": False, "condaDependencies": None,
                                        "condaDependenciesFile": "conda.yml"},
        "inferencingStackVersion": None, "dockr": {"baseImage": None}}))
    registered = modelport(folder, "environment", "register", "--environment-file", "env/environment.json",
                           "-n", "renamed", "-o", "json")
    assert registered.returncode == 0, registered.stderr
    warnings = [line for line in registered.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "'dockr'" in warnings[0] and "'docker'" in warnings[0], registered.stderr
    shown = json.loads(modelport(folder, "environment", "show", "-n", "renamed", "-o", "json").stdout)
    assert "joblib==1.4.2" in json.dumps(shown)
