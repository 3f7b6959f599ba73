"""``InferenceConfig`` as Azure ML v1's scripts call it: Azure's signature and positional order, conda_file building
the environment, and the legacy image parameters under the key rule (silent when they ask for nothing, one warning
naming the keyword otherwise)."""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from modelport import Environment, InferenceConfig
from modelport.errors import InvalidInput
from modelport.sdk.files import ConfigWarning

# azureml-core's InferenceConfig.__init__ (azureml/core/model.py), in order; every default None.
AZURE_PARAMETERS = ["entry_script", "runtime", "conda_file", "extra_docker_file_steps", "source_directory",
                    "enable_gpu", "description", "base_image", "base_image_registry", "cuda_version", "environment"]
IMAGE = "local builds make a virtual environment with this machine's Python and build no image"


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """src/score.py and src/env.yml, the current directory the project root."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text("def init(): pass\ndef run(data): return data\n")
    (tmp_path / "src" / "env.yml").write_text("dependencies:\n  - python=3.11\n  - pip:\n    - six==1.16.0\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def messages(record) -> list[str]:
    return [str(warning.message) for warning in record if issubclass(warning.category, ConfigWarning)]


def test_the_signature_is_azures_in_its_order():
    parameters = list(inspect.signature(InferenceConfig).parameters.values())
    assert [parameter.name for parameter in parameters] == AZURE_PARAMETERS
    assert [parameter.default for parameter in parameters[1:]] == [None] * 10
    assert parameters[0].default is inspect.Parameter.empty


def test_conda_file_builds_the_environment_from_the_source_directory(project):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)
        config = InferenceConfig(entry_script="score.py", source_directory="src", conda_file="env.yml")
    assert (config.entry_script, config.source_directory, config.conda_file) == \
        ("score.py", str(project / "src"), "env.yml")
    assert config.environment.python.conda_dependencies.pip_packages == ["six==1.16.0"]


def test_positional_arguments_follow_azures_order(project):
    config = InferenceConfig("score.py", "python", "env.yml", None, "src", False, "churn scoring")
    assert (config.runtime, config.source_directory, config.enable_gpu, config.description) == \
        ("python", str(project / "src"), False, "churn scoring")
    assert config.environment.python.conda_dependencies.pip_packages == ["six==1.16.0"]


def test_a_conda_file_outside_the_source_directory_is_taken_from_the_current_directory(project):
    (project / "root.yml").write_text("dependencies:\n  - pip:\n    - root-pkg==1.0\n")
    config = InferenceConfig("score.py", conda_file="root.yml", source_directory="src")
    assert config.environment.python.conda_dependencies.pip_packages == ["root-pkg==1.0"]


def test_without_a_source_directory_the_entry_script_is_taken_from_here_alone(project):
    config = InferenceConfig("src/score.py", conda_file="src/env.yml")
    assert (config.source_directory, config.source_files()) == \
        (None, [("src/score.py", project / "src" / "score.py")])


def test_settings_that_ask_for_nothing_are_silent(project):
    empty_registry = SimpleNamespace(address=None, username=None, password=None)  # Azure's ContainerRegistry()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfigWarning)
        config = InferenceConfig("score.py", runtime="python", extra_docker_file_steps=None, source_directory="src",
                                 enable_gpu=False, base_image=None, base_image_registry=empty_registry,
                                 cuda_version=None, environment=Environment("kept-env"))
    assert (config.environment.name, config.base_image_registry) == ("kept-env", empty_registry)


@pytest.mark.parametrize(("keyword", "value", "warning"), [
    ("enable_gpu", True, f"enable_gpu true: {IMAGE}; replicas get this machine's GPUs with gpu_cores in "
                         "deploy_configuration()"),
    ("extra_docker_file_steps", "steps.txt", f'extra_docker_file_steps "steps.txt": {IMAGE}, so Docker steps are '
                                             "not run; install Python packages through conda_file's pip list"),
    ("base_image", "python:3.11-slim", f'base_image "python:3.11-slim": {IMAGE}'),
    ("cuda_version", "10.0", f'cuda_version "10.0": {IMAGE}; CUDA comes from this machine\'s driver and the wheels '
                             "pip installs"),
    ("runtime", "spark-py", 'runtime "spark-py": the entry script runs with Python; add pyspark to the pip list if '
                            "score.py uses Spark"),
    ("base_image_registry", SimpleNamespace(address="myacr.azurecr.io", username="ci", password="hunter2"),
     f'base_image_registry {{"address": "myacr.azurecr.io", "username": "ci", "password": "***"}}: {IMAGE}'),
])
def test_an_image_setting_that_asks_for_something_warns_once_by_its_keyword(project, keyword, value, warning):
    with pytest.warns(ConfigWarning) as record:
        config = InferenceConfig("score.py", source_directory="src", **{keyword: value})
    assert messages(record) == [f"InferenceConfig: {warning}"]
    assert getattr(config, keyword) == value  # kept, as Azure's attribute


def test_environment_and_conda_file_together_are_refused(project):
    with pytest.raises(InvalidInput) as raised:
        InferenceConfig("score.py", source_directory="src", conda_file="env.yml", environment=Environment("e"))
    assert str(raised.value) == ("InferenceConfig: give environment or the legacy conda_file, not both (Azure ML did "
                                 "not combine them); put the conda file's packages into the environment, or remove "
                                 "conda_file")


def test_an_unknown_runtime_is_refused_by_its_keyword(project):
    with pytest.raises(InvalidInput, match=r"^InferenceConfig: runtime 'R' is not one Azure ML accepted; use python, "
                                           r"python-slim, spark-py \(or leave it out\)$"):
        InferenceConfig("score.py", runtime="R", source_directory="src")


def test_a_misspelt_entry_script_names_the_keyword_and_the_folder_it_looked_in(project):
    with pytest.raises(InvalidInput) as raised:
        InferenceConfig("scor.py", source_directory="src")
    assert str(raised.value) == (f"InferenceConfig: entry_script 'scor.py': no file in source_directory "
                                 f"{project / 'src'} (did you mean 'score.py'?); fix the name (it is relative to "
                                 "source_directory)")


def test_a_missing_conda_file_names_the_keyword_and_both_places(project):
    with pytest.raises(InvalidInput) as raised:
        InferenceConfig("score.py", source_directory="src", conda_file="missing.yml")
    assert str(raised.value) == (f"InferenceConfig: conda_file 'missing.yml': no file at {project / 'src'}/missing.yml "
                                 f"or {project}/missing.yml; fix the path")
