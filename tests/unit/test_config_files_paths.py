"""Relative paths in inferenceconfig.json as the az ml CLI took them: from the current directory first, then from the
file's folder, naming every place tried when neither holds; and the environment files those paths name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from modelport.errors import InvalidInput
from modelport.sdk.environment import Environment
from modelport.sdk.inference_config import InferenceConfig

FILES = Path(__file__).resolve().parent.parent / "fixtures" / "azure_files"


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """The project fixture (src/inferenceconfig.json with sourceDirectory "src"), the current directory its root."""
    root = tmp_path / "project"
    shutil.copytree(FILES / "project", root)
    monkeypatch.chdir(root)
    return root


def test_source_directory_of_a_file_inside_it_is_taken_from_the_current_directory(project):
    config = InferenceConfig.from_file("src/inferenceconfig.json")
    assert Path(config.source_directory) == project / "src"  # not src/src


def test_conda_dependencies_file_beside_the_inference_config_is_read(project):
    config = InferenceConfig.from_file("src/inferenceconfig.json")
    deps = config.environment.python.conda_dependencies
    assert (deps.pip_packages, deps.conda_packages) == (["azureml-defaults", "six==1.16.0"], ["python=3.11"])


def test_the_files_folder_is_the_fallback(project, tmp_path, monkeypatch):
    (project / "src" / "ic.json").write_text(json.dumps({"entryScript": "score.py", "sourceDirectory": "."}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # "." here holds no score.py: the file's folder does
    assert Path(InferenceConfig.from_file(project / "src" / "ic.json").source_directory) == project / "src"
    (project / "src" / "ic.json").write_text(json.dumps({"entryScript": "score.py", "sourceDirectory": "src"}))
    with pytest.raises(InvalidInput) as raised:
        InferenceConfig.from_file(project / "src" / "ic.json")
    assert str(raised.value) == (
        f"{project / 'src' / 'ic.json'}: sourceDirectory 'src': no folder at {elsewhere / 'src'} or "
        f"{project / 'src' / 'src'}; fix the path")


def test_without_source_directory_the_entry_script_is_found_here_then_beside_the_file(tmp_path, monkeypatch):
    legacy = tmp_path / "legacy"
    shutil.copytree(FILES / "legacy", legacy)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = InferenceConfig.from_file(legacy / "inferenceconfig.json")
    assert Path(config.source_directory) == legacy  # score.py and myenv.yml beside the file
    assert config.environment.python.conda_dependencies.pip_packages == ["azureml-defaults", "six==1.16.0"]
    (elsewhere / "score.py").write_text("def init(): pass\ndef run(d): return d\n")
    (elsewhere / "myenv.yml").write_text("dependencies:\n  - pip:\n    - here==1.0\n")
    config = InferenceConfig.from_file(legacy / "inferenceconfig.json")
    assert Path(config.source_directory) == elsewhere  # the current directory first, as az ml did
    assert config.environment.python.conda_dependencies.pip_packages == ["here==1.0"]


def test_a_missing_entry_script_names_both_places(tmp_path, monkeypatch):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "ic.json").write_text(json.dumps({"entryScript": "score.py"}))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInput, match=rf"^cfg/ic.json: entryScript 'score.py': no file at {tmp_path}/score.py "
                                           rf"or {tmp_path}/cfg/score.py; fix the path"):
        InferenceConfig.from_file("cfg/ic.json")


def test_a_missing_conda_dependencies_file_names_the_key_and_places(project):
    data = json.loads((project / "src" / "inferenceconfig.json").read_text())
    data["environment"]["python"]["condaDependenciesFile"] = "missing.yml"
    (project / "src" / "ic.json").write_text(json.dumps(data))
    with pytest.raises(InvalidInput, match=rf"^src/ic.json: environment.python.condaDependenciesFile 'missing.yml': "
                                           rf"no file at {project}/missing.yml or {project}/src/missing.yml; "):
        InferenceConfig.from_file("src/ic.json")


def test_conda_dependencies_inline_and_from_a_file_together_are_refused(project):
    data = json.loads((project / "src" / "inferenceconfig.json").read_text())
    data["environment"]["python"]["condaDependencies"] = {"dependencies": [{"pip": ["numpy"]}]}
    (project / "src" / "ic.json").write_text(json.dumps(data))
    with pytest.raises(InvalidInput, match=r"^src/ic.json: environment.python.condaDependenciesFile and "
                                           r"environment.python.condaDependencies are both given; keep one"):
        InferenceConfig.from_file("src/ic.json")


def test_legacy_conda_file_together_with_an_environment_is_refused(project):
    data = json.loads((project / "src" / "inferenceconfig.json").read_text())
    (project / "src" / "ic.json").write_text(json.dumps({**data, "condaFile": "conda_env.yml"}))
    with pytest.raises(InvalidInput, match=r"^src/ic.json: give environment or the legacy condaFile, not both"):
        InferenceConfig.from_file("src/ic.json")


def test_an_environment_reference_needs_the_workspace(project):
    (project / "src" / "ic.json").write_text(json.dumps({"entryScript": "score.py", "sourceDirectory": "src",
                                                         "environment": {"name": "sklearn-env", "version": "3"}}))
    with pytest.raises(InvalidInput) as raised:
        InferenceConfig.from_file("src/ic.json")
    assert str(raised.value) == ("src/ic.json: environment names the registered environment 'sklearn-env' (only name "
                                 "and version are given); read the file with the workspace "
                                 "(InferenceConfig.from_file(path, workspace=ws)) or write the whole environment")


def test_relative_find_links_in_an_inline_pip_list_are_resolved_like_other_paths(project):
    (project / "src" / "wheels").mkdir()
    data = json.loads((project / "src" / "inferenceconfig.json").read_text())
    data["environment"]["python"].update(condaDependenciesFile=None, condaDependencies={"dependencies": [
        {"pip": ["--find-links wheels", "--extra-index-url https://download.pytorch.org/whl/cpu", "torch"]}]})
    (project / "src" / "ic.json").write_text(json.dumps(data))
    pip = InferenceConfig.from_file("src/ic.json").environment.python.conda_dependencies.pip_packages
    assert pip == [f"--find-links {project / 'src' / 'wheels'}",
                   "--extra-index-url https://download.pytorch.org/whl/cpu", "torch"]


def test_flags_override_the_file_and_stand_alone(project):
    (project / "src" / "other.py").write_text("def init(): pass\ndef run(d): return d\n")
    (project / "flags.yml").write_text("dependencies:\n  - pip:\n    - flagged==2.0\n")
    config = InferenceConfig.from_file("src/inferenceconfig.json",
                                       flags={"entryScript": "other.py", "condaFile": "flags.yml", "runtime": None})
    assert (config.entry_script, config.environment.name, config.environment.python.conda_dependencies.pip_packages) \
        == ("other.py", "greeting-env", ["flagged==2.0"])
    alone = InferenceConfig.from_file(None, flags={"entryScript": "score.py", "sourceDirectory": "src"})
    assert (alone.entry_script, Path(alone.source_directory), alone.environment) == ("score.py", project / "src", None)


def test_an_environment_json_file_reads_its_conda_file_beside_it(project, tmp_path, monkeypatch):
    data = json.loads((project / "src" / "inferenceconfig.json").read_text())["environment"]
    (project / "src" / "environment.json").write_text(json.dumps(data))
    monkeypatch.chdir(tmp_path)
    env = Environment.load_from_file(project / "src" / "environment.json")
    assert (env.name, env.python.conda_dependencies.pip_packages) == ("greeting-env", ["azureml-defaults",
                                                                                       "six==1.16.0"])
