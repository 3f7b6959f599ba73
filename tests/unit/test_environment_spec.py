"""The environment spec (Azure ML's Environment JSON) and the conda / requirements file readers."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from modelport.environments.conda import load_conda_file, parse_conda_yaml, parse_requirements_file
from modelport.environments.spec import EnvironmentSpec
from modelport.errors import InvalidInput

# The "environment" object of the inferenceconfig.json example in contract/aml-v1-api.md.
EXAMPLE = {
    "name": "my-deploy-env", "version": "1",
    "environmentVariables": {"EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"},
    "python": {"userManagedDependencies": False, "interpreterPath": "python",
               "condaDependencies": {"name": "project_environment", "channels": ["conda-forge"],
                                     "dependencies": ["python=3.8", {"pip": ["azureml-defaults", "scikit-learn",
                                                                             "inference-schema[numpy-support]"]}]}},
    "docker": {"baseImage": "mcr.microsoft.com/azureml/base:intelmpi2018.3-ubuntu16.04", "arguments": [],
               "shmSize": None},
}

# Every section as `az ml environment scaffold` writes it.
SCAFFOLD = {
    "name": "testenv", "version": None,
    "environmentVariables": {"EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"},
    "python": {"userManagedDependencies": False, "interpreterPath": "python", "condaDependenciesFile": None,
               "baseCondaEnvironment": None},
    "docker": {"enabled": False, "baseImage": "mcr.microsoft.com/azureml/base:intelmpi2018.3-ubuntu16.04",
               "baseDockerfile": None, "sharedVolumes": True, "shmSize": "2g", "arguments": [],
               "baseImageRegistry": {"address": None, "username": None, "password": None}},
    "spark": {"repositories": [], "packages": [], "precachePackages": True},
    "databricks": {"mavenLibraries": [], "pypiLibraries": [], "rcranLibraries": [], "jarLibraries": [],
                   "eggLibraries": []},
    "inferencingStackVersion": None,
}


def assert_contains(whole: Any, part: Any, path: str = "") -> None:
    """Every key of ``part`` is in ``whole`` with the same value (recursively)."""
    if isinstance(part, dict):
        for key, value in part.items():
            assert key in whole, f"{path}.{key} missing"
            assert_contains(whole[key], value, f"{path}.{key}")
    else:
        assert whole == part, path


def with_pip(*lines: str, conda: tuple[str, ...] = ("python=3.11",)) -> EnvironmentSpec:
    return EnvironmentSpec(name="e", python={"conda_dependencies": {"dependencies": [*conda, {"pip": list(lines)}]}})


def reordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: reordered(value[key]) for key in reversed(list(value))}
    return value


@pytest.mark.parametrize("document", [EXAMPLE, SCAFFOLD], ids=["inferenceconfig-example", "scaffold"])
def test_azure_json_round_trips(document):
    spec = EnvironmentSpec.from_dict(document)
    written = spec.to_dict()
    assert_contains(written, document)
    assert EnvironmentSpec.from_dict(written) == spec


def test_fields_are_readable_by_python_name():
    spec = EnvironmentSpec.from_dict(EXAMPLE)
    assert spec.environment_variables == {"EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"}
    assert spec.docker.base_image.startswith("mcr.microsoft.com/")
    assert EnvironmentSpec(name="x", environment_variables={"A": "1"}).to_dict()["environmentVariables"] == {"A": "1"}


@pytest.mark.parametrize(("change", "named"), [
    (lambda d: d.update(dockerr={}), "'dockerr'"),
    (lambda d: d["python"].update(condaDependencie={}), "'python.condaDependencie'"),
    (lambda d: d["docker"].update(shm_sise="1g"), "'docker.shm_sise'"),
])
def test_unknown_keys_are_named(change, named):
    document = copy.deepcopy(EXAMPLE)
    change(document)
    with pytest.raises(InvalidInput, match=f"unknown key {named}"):
        EnvironmentSpec.from_dict(document)


@pytest.mark.parametrize("name", ["AzureML-Minimal", "azureml-sklearn", "Microsoft.Env", "MICROSOFTenv"])
def test_reserved_name_prefixes_are_refused(name):
    with pytest.raises(InvalidInput, match="reserves for its curated environments"):
        EnvironmentSpec.from_dict({**EXAMPLE, "name": name})


@pytest.mark.parametrize("name", ["my-deploy-env", "env_1.2", "a", "x" * 255, "9lives"])
def test_valid_names(name):
    assert EnvironmentSpec(name=name).name == name


@pytest.mark.parametrize("name", ["", "has space", "-lead", ".hidden", "x" * 256, "caf\u00e9", "a/b"])
def test_invalid_names(name):
    with pytest.raises(InvalidInput, match="environment name"):
        EnvironmentSpec(name=name)


@pytest.mark.parametrize(("document", "message"), [
    ({"version": "1"}, "has no 'name'"),
    ({**EXAMPLE, "environmentVariables": {"A": 1}}, "environmentVariables.A"),
    ({**EXAMPLE, "r": {"cranPackages": []}}, "R environments"),
    ({**EXAMPLE, "spark": {"packages": [{"group": "g", "artifact": "a", "version": "1"}]}}, "Spark packages"),
    ({**EXAMPLE, "python": {"condaDependencies": {"dependencies": "numpy"}}}, "'dependencies' must be a list"),
    ({**EXAMPLE, "python": {"condaDependencies": {"dependencies": [{"pip": "six"}]}}}, "'pip' item must be a list"),
    ([EXAMPLE], "must be a JSON object"),
])
def test_bad_values_are_one_line_errors(document, message):
    with pytest.raises(InvalidInput, match=message) as raised:
        EnvironmentSpec.from_dict(document)
    assert "\n" not in str(raised.value)


def test_integer_version_is_text():
    assert EnvironmentSpec.from_dict({**EXAMPLE, "version": 3}).version == "3"


def test_hash_ignores_key_order_name_version_and_variables():
    spec = EnvironmentSpec.from_dict(EXAMPLE)
    assert EnvironmentSpec.from_dict(reordered(EXAMPLE)).content_hash() == spec.content_hash()
    renamed = {**EXAMPLE, "name": "other", "version": "7", "environmentVariables": {"B": "2"}}
    assert EnvironmentSpec.from_dict(renamed).content_hash() == spec.content_hash()


@pytest.mark.parametrize("change", [
    lambda d: d["python"]["condaDependencies"]["dependencies"][1]["pip"].append("six==1.16.0"),
    lambda d: d["python"]["condaDependencies"]["dependencies"].__setitem__(0, "python=3.9"),
    lambda d: d["python"].update(userManagedDependencies=True),
    lambda d: d["python"].update(interpreterPath="/usr/bin/python3"),
    lambda d: d["docker"].update(baseImage="python:3.11-slim"),
    lambda d: d["docker"].update(baseDockerfile="FROM python:3.11"),
    lambda d: d["docker"].update(arguments=["--cpus", "2"]),
])
def test_hash_changes_with_dependency_content(change):
    document = copy.deepcopy(EXAMPLE)
    change(document)
    assert EnvironmentSpec.from_dict(document).content_hash() != EnvironmentSpec.from_dict(EXAMPLE).content_hash()


@pytest.mark.parametrize(("dependencies", "version"), [
    (["python=3.8"], "3.8"),
    (["numpy", "python==3.10.4"], "3.10"),
    (["conda-forge::python=3.9.*"], "3.9"),
    (["python>=3.8"], None),
    (["numpy"], None),
])
def test_python_version(dependencies, version):
    spec = EnvironmentSpec(name="e", python={"conda_dependencies": {"dependencies": dependencies}})
    assert spec.python_version() == version
    assert EnvironmentSpec(name="e").python_version() is None


def test_pip_requirements_drop_azure_packages():
    spec = with_pip("azureml-defaults", "scikit-learn==1.3.2", "AzureML_Core>=1.50", "azure-storage-blob",
                    "azureml.inference-server-http", "inference-schema[numpy-support]")
    assert spec.pip_requirements() == ["scikit-learn==1.3.2", "azure-storage-blob", "inference-schema[numpy-support]"]
    assert spec.dropped_requirements() == ["azureml-defaults", "AzureML_Core>=1.50", "azureml.inference-server-http"]


def test_conda_packages_leave_out_python_and_pip():
    spec = with_pip("six", conda=("python=3.8", "pip=23.0", "numpy=1.24", "conda-forge::libgomp"))
    assert spec.conda_packages() == ["numpy=1.24", "conda-forge::libgomp"]


def test_conda_yaml_is_read(tmp_path):
    path = tmp_path / "env.yml"
    path.write_text("name: project_environment\nchannels:\n  - conda-forge\ndependencies:\n"
                    "  - python=3.8\n  - pip:\n    - azureml-defaults\n    - six==1.16.0\n")
    conda = load_conda_file(path)
    assert conda == {"name": "project_environment", "channels": ["conda-forge"],
                     "dependencies": ["python=3.8", {"pip": ["azureml-defaults", "six==1.16.0"]}]}
    assert EnvironmentSpec(name="e", python={"conda_dependencies": conda}).pip_requirements() == ["six==1.16.0"]


def test_malformed_conda_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "env.yml"
    path.write_text("name: x\ndependencies:\n  - python=3.8\n  - pip: [six\n")
    with pytest.raises(InvalidInput, match=rf"{path}:\d+: not valid YAML") as raised:
        load_conda_file(path)
    assert ":4:" in str(raised.value) or ":5:" in str(raised.value)


@pytest.mark.parametrize(("text", "message"), [
    ("", "is empty"),
    ("- numpy\n", "must be a mapping"),
    ("dependencies: numpy\n", "'dependencies' must be a list"),
    ("dependencies:\n  - pip: six\n", "'pip' item must be a list"),
    ("dependencies:\n  - 3.8\n", "dependency 3.8"),
    ("channels: conda-forge\n", "'channels' must be a list"),
    ("name: x\npackages: []\n", "unknown key 'packages'"),
])
def test_conda_shape_errors(text, message):
    with pytest.raises(InvalidInput, match=message):
        parse_conda_yaml(text, "env.yml")


def test_requirements_file_with_comments_continuations_and_includes(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "base.txt").write_text("six==1.16.0  # pinned\n")
    main = tmp_path / "requirements.txt"
    main.write_text("# a comment\n\n-r sub/base.txt\nscikit-learn>=1.3,\\\n  <2 ; python_version >= '3.8'\n"
                    "inference-schema[numpy-support]\npkg @ https://example.com/pkg-1.0.tar.gz\n")
    assert parse_requirements_file(main) == [
        "six==1.16.0", "scikit-learn>=1.3,  <2 ; python_version >= '3.8'", "inference-schema[numpy-support]",
        "pkg @ https://example.com/pkg-1.0.tar.gz"]


@pytest.mark.parametrize(("text", "line", "message"), [
    ("six\nnot a requirement!\n", 2, "is not a valid requirement"),
    ("six\n\n# c\nnumpy=1.24\n", 4, "pip pins use '=='"),
    ("--index-url\nsix\n", 1, "'--index-url' is not a valid option line; write it as '--index-url VALUE'"),
    ("six\n--no-index now\n", 2, "'--no-index now' is not a valid option line; write it as '--no-index'"),
    ("-e .\n", 1, r"pip option '-e' is not supported here; remove it \(package-source options --extra-index-url, "
                  r"--find-links, --index-url, --no-index, --trusted-host are\)"),
])
def test_bad_requirement_lines_name_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "requirements.txt"
    path.write_text(text)
    with pytest.raises(InvalidInput, match=message) as raised:
        parse_requirements_file(path)
    assert f"{path}:{line}:" in str(raised.value)


def test_bad_line_in_an_included_file_names_that_file(tmp_path):
    (tmp_path / "inner.txt").write_text("six\nbad line here\n")
    (tmp_path / "outer.txt").write_text("-r inner.txt\n")
    with pytest.raises(InvalidInput, match=f"{tmp_path / 'inner.txt'}:2:"):
        parse_requirements_file(tmp_path / "outer.txt")


def test_include_loops_and_missing_includes_are_refused(tmp_path):
    (tmp_path / "a.txt").write_text("-r b.txt\n")
    (tmp_path / "b.txt").write_text("--requirement=a.txt\n")
    with pytest.raises(InvalidInput, match="includes itself"):
        parse_requirements_file(tmp_path / "a.txt")
    (tmp_path / "c.txt").write_text("-r missing.txt\n")
    with pytest.raises(InvalidInput, match="missing.txt does not exist"):
        parse_requirements_file(tmp_path / "c.txt")


def test_package_source_options_are_kept_and_relative_find_links_made_absolute(tmp_path):
    (tmp_path / "reqs").mkdir()
    (tmp_path / "reqs" / "wheels").mkdir()
    path = tmp_path / "reqs" / "requirements.txt"
    path.write_text("--extra-index-url https://download.pytorch.org/whl/cpu\n-i https://pypi.example/simple\n"
                    "-f wheels\n--find-links=https://example.com/links/\n--trusted-host pypi.example\n--no-index\n"
                    "torch==2.3.1+cpu\n")
    assert parse_requirements_file(path) == [
        "--extra-index-url https://download.pytorch.org/whl/cpu", "-i https://pypi.example/simple",
        f"--find-links {tmp_path / 'reqs' / 'wheels'}", "--find-links=https://example.com/links/",
        "--trusted-host pypi.example", "--no-index", "torch==2.3.1+cpu"]
    spec = EnvironmentSpec(name="e", python={"conda_dependencies": {"dependencies": [
        {"pip": parse_requirements_file(path)}]}})
    assert spec.pip_requirements()[0] == "--extra-index-url https://download.pytorch.org/whl/cpu"


def test_a_missing_find_links_folder_is_named_with_its_file(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("six\n-f ./wheelhouse\n")
    with pytest.raises(InvalidInput, match=f"^{path}:2: --find-links ./wheelhouse: {tmp_path / 'wheelhouse'} does "
                                           f"not exist; fix the path \\(relative to {tmp_path}\\)$"):
        parse_requirements_file(path)


def test_conda_pip_sections_keep_source_options_relative_to_the_yaml(tmp_path):
    (tmp_path / "env" / "wheels").mkdir(parents=True)
    path = tmp_path / "env" / "environment.yml"
    path.write_text("dependencies:\n  - python=3.11\n  - pip:\n    - --extra-index-url https://download.pytorch.org/"
                    "whl/cpu\n    - --find-links wheels\n    - torch\n")
    assert load_conda_file(path)["dependencies"][1] == {"pip": [
        "--extra-index-url https://download.pytorch.org/whl/cpu", f"--find-links {tmp_path / 'env' / 'wheels'}",
        "torch"]}


def test_per_requirement_options_are_refused(tmp_path):
    path = tmp_path / "requirements.txt"
    path.write_text("six==1.16.0 --hash=sha256:abc\n")
    with pytest.raises(InvalidInput, match=f"{path}:1: per-requirement pip option '--hash'"):
        parse_requirements_file(path)


def test_conda_dependencies_file_is_read_from_its_path(tmp_path):
    (tmp_path / "deps").mkdir()
    (tmp_path / "deps" / "env.yml").write_text("dependencies:\n  - python=3.9\n  - pip:\n    - six\n")
    spec = EnvironmentSpec.from_dict({**SCAFFOLD, "python": {"condaDependenciesFile": "deps/env.yml"}})
    assert spec.pip_requirements() == []
    loaded = spec.with_conda_file(tmp_path / "deps" / "env.yml")
    assert (loaded.pip_requirements(), loaded.python_version()) == (["six"], "3.9")
    assert loaded.content_hash() != spec.content_hash()
    with pytest.raises(InvalidInput, match="env.yml does not exist"):
        spec.with_conda_file(tmp_path / "env.yml")
