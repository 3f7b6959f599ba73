"""``az ml`` command lines run as ``modelport`` command lines (real CLI processes, a real control plane): az's
workspace options (``-w`` is the workspace's name there), ``-g``/``--subscription-id``, ``service update``'s flags,
and ``--strict`` naming every unknown key at once. Deploys with these lines are in ``test_deploy_flags``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelport.api import server
from modelport.api.workspace_dir import WorkspaceDir

NO_AZURE = ("there is no Azure subscription or resource group here; the workspace is the one of the folder "
            "(-w/--workspace, default: this folder or a parent)")


def modelport(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modelport.cli.main", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder holding the workspace 'azws' (and score.py), its control plane stopped at the end."""
    path = tmp_path_factory.mktemp("az")
    created = modelport(path, "workspace", "create", "-n", "azws", "-o", "json")
    assert created.returncode == 0, created.stderr
    (path / "score.py").write_text("def init(): pass\ndef run(data): return data\n")
    yield path
    server.stop(WorkspaceDir.at(path))


def test_resource_group_and_subscription_are_accepted_with_one_warning_each(folder):
    result = modelport(folder, "model", "list", "-g", "myrg", "--subscription-id", "0000-11", "-o", "json")
    assert (result.returncode, json.loads(result.stdout)) == (0, []), result.stderr
    assert result.stderr.splitlines() == [f'Warning: the command line: --resource-group "myrg": {NO_AZURE}',
                                          f'Warning: the command line: --subscription-id "0000-11": {NO_AZURE}']


def test_workspace_name_selects_this_folders_workspace_or_names_the_mismatch(folder):
    shown = modelport(folder, "workspace", "show", "--workspace-name", "azws", "-o", "json")
    assert (shown.returncode, json.loads(shown.stdout)["name"], shown.stderr) == (0, "azws", "")
    other = modelport(folder, "workspace", "show", "--workspace-name", "prod")
    assert (other.returncode, other.stderr) == (1, (
        f"Error: --workspace-name 'prod': the workspace in {folder} is 'azws'; give its name, or the folder of "
        "workspace 'prod' with -w/--workspace\n"))


def test_dash_w_with_the_workspaces_name_as_in_az_ml_works_with_a_warning(folder):
    result = modelport(folder, "workspace", "show", "-w", "azws", "-o", "json")
    assert (result.returncode, json.loads(result.stdout)["name"]) == (0, "azws"), result.stderr
    assert result.stderr == (f'Warning: the command line: -w "azws" names no folder; taken as az ml\'s workspace '
                             f'name: the workspace of this folder ({folder}) is "azws"\n')


def test_dash_w_naming_no_folder_and_not_this_workspace_is_refused(folder):
    result = modelport(folder, "model", "list", "-w", "myws")
    assert (result.returncode, result.stdout, result.stderr) == (1, "", (
        "Error: -w/--workspace 'myws': no such folder; modelport's -w is the folder of the workspace (az ml's -w "
        "was its name); give that folder, or leave -w out to use the workspace of this folder or a parent\n"))


def test_dash_w_naming_a_folder_uses_the_workspace_there(folder, tmp_path):
    result = modelport(tmp_path, "workspace", "show", "-w", str(folder), "-o", "json")
    assert (result.returncode, json.loads(result.stdout)["name"], result.stderr) == (0, "azws", "")
    assert modelport(tmp_path, "workspace", "show", "--path", str(folder)).returncode == 0  # az ml's --path


def test_service_update_takes_model_deploys_flags(folder):
    result = modelport(folder, "service", "update", "-n", "nosuch", "--nr", "2", "--ae", "false", "--tag", "a=b")
    assert result.returncode == 1  # not 2 (No such option): the flags are read and the service is looked up
    assert result.stderr.startswith("Error: ") and "nosuch" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_strict_names_every_unknown_key_of_the_files_at_once(folder):
    (folder / "dc.json").write_text(json.dumps({"computeType": "aks", "enableAppInsights": True,
                                                "autoScaler": {"maxReplica": 3}}))
    for command in (["model", "deploy", "-m", "nosuch:1", "--es", "score.py"], ["service", "update"]):
        result = modelport(folder, *command, "-n", "strict-svc", "--dc", "dc.json", "--strict")
        assert result.returncode == 1, command
        assert [line.split(" (did you mean")[0] for line in result.stderr.splitlines()] == [
            "Error: dc.json: unknown key 'enableAppInsights'", "dc.json: unknown key 'autoScaler.maxReplica'"]


def test_a_flag_given_conda_file_is_named_by_its_flag_in_warnings(folder):
    (folder / "env.yml").write_text("dependencies:\n  - scikit-learn=1.3\n  - pip:\n    - six\n")
    result = modelport(folder, "model", "deploy", "-n", "conda-svc", "-m", "nosuch:1", "--es", "score.py",
                       "--cf", "env.yml")
    warnings, error = result.stderr.splitlines()
    assert warnings == ("Warning: the command line: --conda-file: conda packages scikit-learn=1.3 are not installed "
                        "by local builds (there is no conda here); add their pip names to the pip list if score.py "
                        "needs them")
    assert result.returncode == 1 and error.startswith("Error: ") and "nosuch" in error
