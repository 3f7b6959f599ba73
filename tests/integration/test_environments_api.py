"""Environments and inference configs through the SDK and the real control plane server (SQLite)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelport import CondaDependencies, Environment, InferenceConfig, Workspace
from modelport.api import server
from modelport.errors import Conflict, InvalidInput, ModelportError, NotFound


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    workspace = Workspace.create("envws", tmp_path_factory.mktemp("ws"))
    yield workspace
    server.stop(workspace._dir)


def six_env(name: str) -> Environment:
    env = Environment(name)
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["six==1.16.0"], python_version="3.11")
    return env


def test_same_content_keeps_the_version_new_content_adds_one(ws):
    first = six_env("reuse").register(ws)
    again = six_env("reuse").register(ws)
    assert (first.version, again.version) == ("1", "1")
    changed = six_env("reuse")
    changed.python.conda_dependencies.add_pip_package("orjson")
    assert changed.register(ws).version == "2"
    assert Environment.get(ws, "reuse").version == "2"
    assert Environment.get(ws, "reuse", version="1").python.conda_dependencies.pip_packages == ["six==1.16.0"]
    assert set(ws.environments) >= {"reuse"}


def test_an_explicit_version_with_other_content_is_a_conflict(ws):
    six_env("pinned").register(ws)
    other = six_env("pinned")
    other.version = "1"
    other.python.conda_dependencies.add_pip_package("orjson")
    with pytest.raises(Conflict, match="version 1 exists with different content"):
        other.register(ws)


def test_reserved_and_malformed_names_are_refused():
    with pytest.raises(InvalidInput, match="AzureML"):
        Environment("AzureML-Minimal")
    with pytest.raises(InvalidInput, match="invalid"):
        Environment("no spaces please")


def test_conda_and_requirements_files(ws, tmp_path):
    conda = tmp_path / "env.yml"
    conda.write_text("name: x\ndependencies:\n  - python=3.11\n  - numpy\n  - pip:\n    - six==1.16.0\n")
    env = Environment.from_conda_specification("from-conda", conda)
    assert env.python.conda_dependencies.pip_packages == ["six==1.16.0"]
    assert "numpy" in env.python.conda_dependencies.conda_packages
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# pins\nsix==1.16.0\n")
    assert Environment.from_pip_requirements("from-pip", requirements).python.conda_dependencies.pip_packages == [
        "six==1.16.0"]
    conda.write_text("dependencies: [python=3.11\n")
    with pytest.raises(InvalidInput, match="env.yml"):
        Environment.from_conda_specification("bad", conda)
    requirements.write_text("six===\n")
    with pytest.raises(InvalidInput, match="requirements.txt:1"):
        Environment.from_pip_requirements("bad", requirements)


def test_build_local_through_the_api_is_cached(ws):
    env = six_env("built").register(ws)
    first = env.build_local(ws, show_output=False)
    assert Path(first["python"]).exists()
    second = Environment.get(ws, "built").build_local(ws, show_output=False)
    assert second["reused"] is True and second["python"] == first["python"]


def test_a_failing_build_reports_the_log_tail(ws):
    env = Environment("broken")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["no-such-package-modelport-xyz==1.0"])
    with pytest.raises(ModelportError, match="no-such-package-modelport-xyz"):
        env.register(ws).build_local(ws, show_output=False)


def test_unknown_environment_is_not_found(ws):
    with pytest.raises(NotFound, match="nope"):
        Environment.get(ws, "nope")


def test_inference_config_file_as_azure_writes_it(tmp_path):
    source = tmp_path / "source_dir"
    source.mkdir()
    (source / "score.py").write_text("def init(): pass\ndef run(d): return d\n")
    config = tmp_path / "inferenceconfig.json"
    config.write_text(json.dumps({
        "entryScript": "score.py", "sourceDirectory": "./source_dir",
        "environment": {"name": "my-deploy-env", "version": "1",
                        "environmentVariables": {"EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"},
                        "python": {"userManagedDependencies": False, "interpreterPath": "python",
                                   "condaDependencies": {"name": "project_environment", "channels": ["conda-forge"],
                                                         "dependencies": ["python=3.8", {"pip": [
                                                             "azureml-defaults", "scikit-learn",
                                                             "inference-schema[numpy-support]"]}]}},
                        "docker": {"baseImage": "mcr.microsoft.com/azureml/base:intelmpi2018.3-ubuntu16.04",
                                   "arguments": [], "shmSize": None}}}))
    loaded = InferenceConfig.from_file(config)
    assert loaded.entry_script == "score.py"
    assert Path(loaded.source_directory) == source
    assert loaded.environment.environment_variables == {"EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"}
    assert "scikit-learn" in loaded.environment.python.conda_dependencies.pip_packages


@pytest.mark.parametrize(("content", "message"), [
    ({"entryScript": "missing.py"}, "entryScript 'missing.py': no file at "),
    ({"sourceDirectory": "."}, "entryScript is required"),
    ({"entryScript": "score.py", "runtime": "java"}, "runtime 'java' is not one Azure ML accepted"),
])
def test_inference_config_file_errors_name_the_problem(tmp_path, content, message):
    (tmp_path / "score.py").write_text("def init(): pass\ndef run(d): return d\n")
    config = tmp_path / "inferenceconfig.json"
    config.write_text(json.dumps(content))
    with pytest.raises(InvalidInput, match=message):
        InferenceConfig.from_file(config)


def test_an_environment_given_by_name_and_version_is_the_registered_one(ws, tmp_path):
    registered = six_env("referenced").register(ws)
    (tmp_path / "score.py").write_text("def init(): pass\ndef run(d): return d\n")
    config = tmp_path / "inferenceconfig.json"
    config.write_text(json.dumps({"entryScript": "score.py",
                                  "environment": {"name": "referenced", "version": registered.version}}))
    environment = InferenceConfig.from_file(config, workspace=ws).environment
    assert (environment.name, environment.version, environment.python.conda_dependencies.pip_packages) == \
        ("referenced", registered.version, ["six==1.16.0"])


def test_legacy_conda_file_becomes_the_environment(tmp_path):
    (tmp_path / "score.py").write_text("def init(): pass\ndef run(d): return d\n")
    (tmp_path / "env.yml").write_text("dependencies:\n  - pip:\n    - six\n")
    config = tmp_path / "inferenceconfig.json"
    config.write_text(json.dumps({"entryScript": "score.py", "runtime": "python", "condaFile": "env.yml"}))
    assert InferenceConfig.from_file(config).environment.python.conda_dependencies.pip_packages == ["six"]


def test_source_snapshot_is_stored_once_and_honours_amlignore(ws, tmp_path):
    (tmp_path / "score.py").write_text("def init(): pass\ndef run(d): return d\n")
    (tmp_path / "notes.tmp").write_text("scratch")
    (tmp_path / ".amlignore").write_text("*.tmp\n")
    config = InferenceConfig("score.py", source_directory=tmp_path)
    assert sorted(rel for rel, _ in config.source_files()) == [".amlignore", "score.py"]
    sha = config.package_source(ws)
    assert sha == config.package_source(ws)
    assert ws._client.json("GET", f"/snapshots/{sha}")["file_count"] == 2
