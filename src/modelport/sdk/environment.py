"""``Environment`` and ``CondaDependencies``: the Python environment a deployment runs in.

Shaped like ``azureml.core.Environment``; its JSON form is Azure ML's Environment object,
so an ``inferenceconfig.json`` written for Azure ML reads unchanged. ``read_environment`` reads that JSON as a
user wrote it (under the key rule of ``files``): ``condaDependenciesFile`` is read, settings a local build does
not apply warn, Spark/Databricks/R packages are refused.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from ..environments.conda import absolute_find_links, load_conda_file, parse_requirements_file
from ..environments.spec import EnvironmentSpec, file_keys
from ..errors import InvalidInput, ModelportError
from .files import KeyRule, find_path, read_json_object

DEFAULT_PYTHON_CHANNELS = ["conda-forge"]


class CondaDependencies:
    """Conda and pip packages of an environment (the ``condaDependencies`` object)."""

    def __init__(self, _underlying_structure: dict | None = None):
        self._conda_dependencies = copy.deepcopy(_underlying_structure) if _underlying_structure else {
            "name": "project_environment", "channels": list(DEFAULT_PYTHON_CHANNELS), "dependencies": []}

    @staticmethod
    def create(pip_packages: list[str] | None = None, conda_packages: list[str] | None = None,
               python_version: str | None = None) -> CondaDependencies:
        deps = CondaDependencies()
        if python_version:
            deps.add_conda_package(f"python={python_version}")
        for package in conda_packages or []:
            deps.add_conda_package(package)
        for package in pip_packages or []:
            deps.add_pip_package(package)
        return deps

    @property
    def _items(self) -> list:
        return self._conda_dependencies.setdefault("dependencies", [])

    def _pip_list(self) -> list[str]:
        for item in self._items:
            if isinstance(item, dict) and "pip" in item:
                return item["pip"]
        pip_item: dict = {"pip": []}
        self._items.append(pip_item)
        return pip_item["pip"]

    def add_pip_package(self, pip_package: str) -> None:
        packages = self._pip_list()
        if pip_package not in packages:
            packages.append(pip_package)

    def remove_pip_package(self, pip_package: str) -> None:
        packages = self._pip_list()
        if pip_package in packages:
            packages.remove(pip_package)

    def add_conda_package(self, conda_package: str) -> None:
        if conda_package not in self._items:
            self._items.insert(len(self.conda_packages), conda_package)

    @property
    def pip_packages(self) -> list[str]:
        return next((list(i["pip"]) for i in self._items if isinstance(i, dict) and "pip" in i), [])

    @property
    def conda_packages(self) -> list[str]:
        return [i for i in self._items if isinstance(i, str)]

    def serialize_to_dict(self) -> dict:
        return copy.deepcopy(self._conda_dependencies)


class PythonSection:
    def __init__(self) -> None:
        self.user_managed_dependencies = False
        self.interpreter_path = "python"
        self.conda_dependencies = CondaDependencies()


class DockerSection:
    def __init__(self) -> None:
        self.enabled = False
        self.base_image: str | None = None
        self.base_dockerfile: str | None = None
        self.arguments: list[str] = []
        self.shm_size: str | None = None


class Environment:
    """A named, versioned Python environment: pip/conda dependencies, env vars, a base image."""

    def __init__(self, name: str):
        self.name = name
        self.version: str | None = None
        self.environment_variables: dict[str, str] = {}
        self.python = PythonSection()
        self.docker = DockerSection()
        self.inferencing_stack_version: str | None = None
        EnvironmentSpec.from_dict(self._to_dict())  # validates the name now, as Azure ML does

    @staticmethod
    def from_pip_requirements(name: str, file_path: str | Path) -> Environment:
        env = Environment(name)
        env.python.conda_dependencies = CondaDependencies.create(pip_packages=parse_requirements_file(Path(file_path)))
        return env

    @staticmethod
    def from_conda_specification(name: str, file_path: str | Path) -> Environment:
        env = Environment(name)
        env.python.conda_dependencies = CondaDependencies(load_conda_file(Path(file_path)))
        return env

    @staticmethod
    def load_from_file(path: str | Path, strict: bool = False) -> Environment:
        """An Azure ML Environment JSON (or YAML) file, read under the key rule (``strict``: unknown keys are
        errors, all of them in one): ``python.condaDependenciesFile`` and relative ``--find-links`` folders are taken
        from the current directory, then from the file's folder. What ``modelport environment register
        --environment-file`` reads.
        """
        path = Path(path)
        with KeyRule(str(path), strict) as rule:
            spec = read_environment(read_json_object(path, "environment file"), rule, "",
                                    [Path.cwd(), path.resolve().parent])
        return Environment._from_dict(spec.to_dict())

    @staticmethod
    def load_from_directory(path: str | Path, strict: bool = False) -> Environment:
        """Azure ML's ``Environment.load_from_directory``: the folder ``az ml environment scaffold`` (or
        ``save_to_directory``) writes.

        Reads ``azureml_environment.json`` under the key rule (``strict``: unknown keys are errors); the conda
        dependencies come from ``conda_dependencies.yml`` when the folder has one (as in Azure ML), else from
        ``python.condaDependenciesFile`` (relative to the folder) or inline; a ``BaseDockerfile`` becomes
        ``docker.baseDockerfile``. Raises InvalidInput when the folder has no ``azureml_environment.json``.
        """
        folder = Path(path).expanduser().resolve()
        definition = folder / DEFINITION_FILE
        if not definition.is_file():
            raise InvalidInput(f"{folder} has no {DEFINITION_FILE}; give the folder `az ml environment scaffold` "
                               "wrote (azureml_environment.json with conda_dependencies.yml)")
        data = read_json_object(definition, "environment definition")
        conda_file, dockerfile = folder / CONDA_FILE, folder / DOCKERFILE
        with KeyRule(str(definition), strict) as rule:
            if conda_file.is_file():
                python = data.get("python") if isinstance(data.get("python"), dict) else {}
                rule.unsupported("python.condaDependencies", python.get("condaDependencies"),
                                 f"replaced by {CONDA_FILE} beside it, as Azure ML's load_from_directory did")
                data = {**data, "python": {**python, "condaDependencies": load_conda_file(conda_file),
                                           "condaDependenciesFile": None}}
            if dockerfile.is_file():
                docker = data.get("docker") if isinstance(data.get("docker"), dict) else {}
                data = {**data, "docker": {**docker, "baseDockerfile": dockerfile.read_text()}}
            spec = read_environment(data, rule, "", [folder])
        return Environment._from_dict(spec.to_dict())

    def register(self, workspace) -> Environment:
        """Register in the workspace; the same content as the latest version returns that version."""
        record = workspace._client.json("POST", "/environments", json=self._to_dict())
        return Environment._from_dict(record["spec"] | {"version": record["version"]})

    @staticmethod
    def get(workspace, name: str, version: str | None = None) -> Environment:
        params = {"version": str(version)} if version is not None else {}
        record = workspace._client.json("GET", f"/environments/{name}", params=params)
        return Environment._from_dict(record["spec"] | {"version": record["version"]})

    @staticmethod
    def list(workspace) -> dict[str, Environment]:
        records = workspace._client.json("GET", "/environments")
        return {r["name"]: Environment._from_dict(r["spec"] | {"version": r["version"]}) for r in records}

    def build_local(self, workspace, show_output: bool = True) -> dict:
        """Build (or reuse) this environment's virtual environment on this machine; registers it first."""
        registered = self if self.version else self.register(workspace)
        return _render_build(workspace._client.stream_lines(
            "POST", f"/environments/{registered.name}/{registered.version}/build"), show_output)

    def _to_dict(self) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "environmentVariables": dict(self.environment_variables),
            "python": {
                "userManagedDependencies": self.python.user_managed_dependencies,
                "interpreterPath": self.python.interpreter_path,
                "condaDependencies": self.python.conda_dependencies.serialize_to_dict(),
            },
            "docker": {
                "enabled": self.docker.enabled, "baseImage": self.docker.base_image,
                "baseDockerfile": self.docker.base_dockerfile, "arguments": list(self.docker.arguments),
                "shmSize": self.docker.shm_size,
            },
            "inferencingStackVersion": self.inferencing_stack_version,
        }

    @staticmethod
    def _from_dict(data: dict) -> Environment:
        spec = EnvironmentSpec.from_dict(data).to_dict()
        env = Environment(spec["name"])
        env.version = spec.get("version")
        env.environment_variables = dict(spec.get("environmentVariables") or {})
        python = spec.get("python") or {}
        env.python.user_managed_dependencies = bool(python.get("userManagedDependencies"))
        env.python.interpreter_path = python.get("interpreterPath") or "python"
        env.python.conda_dependencies = CondaDependencies(python.get("condaDependencies"))
        docker = spec.get("docker") or {}
        env.docker.enabled = bool(docker.get("enabled"))
        env.docker.base_image = docker.get("baseImage")
        env.docker.base_dockerfile = docker.get("baseDockerfile")
        env.docker.arguments = list(docker.get("arguments") or [])
        env.docker.shm_size = docker.get("shmSize")
        env.inferencing_stack_version = spec.get("inferencingStackVersion")
        return env

    def __repr__(self) -> str:
        return f"Environment(name={self.name!r}, version={self.version!r})"


DEFINITION_FILE = "azureml_environment.json"  # Azure ML's file names in an environment folder
CONDA_FILE = "conda_dependencies.yml"
DOCKERFILE = "BaseDockerfile"
REGISTRATION_KEYS = frozenset({"assetId"})  # Azure's registration metadata: known, asks for nothing here
# Azure ML's default CPU base images (every release): an environment naming one asks for nothing special.
AZURE_DEFAULT_IMAGE = re.compile(r"^mcr\.microsoft\.com/azureml/(base|intelmpi[\d.]+-ubuntu[\d.]+|"
                                 r"openmpi[\d.]+-ubuntu[\d.]+)(:[\w.-]+)?$")
_IMAGE = "local builds make a virtual environment with this machine's Python, not an image; kept for image builds"
_CONTAINER = "replicas run as processes on this machine, not in containers; kept for image builds"
# Environment keys a local build does not apply: dotted key -> (Azure's default, what modelport does instead).
NOT_APPLIED: dict[str, tuple[Any, str]] = {
    "docker.baseDockerfile": (None, _IMAGE),
    "docker.buildContext": (None, _IMAGE),
    "docker.baseImageRegistry.address": (None, _IMAGE),
    "docker.baseImageRegistry.username": (None, _IMAGE),
    "docker.baseImageRegistry.password": (None, _IMAGE),
    "docker.baseImageRegistry.registryIdentity": (None, _IMAGE),
    "docker.enabled": (False, _CONTAINER),
    "docker.arguments": ([], _CONTAINER),
    "docker.sharedVolumes": (True, _CONTAINER),
    "docker.shmSize": ("2g", _CONTAINER),
    "docker.platform.os": ("Linux", "replicas run on this machine's platform"),
    "docker.platform.architecture": ("amd64", "replicas run on this machine's platform"),
    "python.baseCondaEnvironment": (None, "there is no conda here; the environment is a virtual environment built "
                                          "from the pip list"),
}


def read_environment(data: object, rule: KeyRule, prefix: str, bases: Sequence[Path]) -> EnvironmentSpec:
    """An Azure ML Environment JSON object as a user wrote it (inferenceconfig.json's ``environment``, an
    Environment JSON file, ``azureml_environment.json``), read under ``rule``.

    ``prefix`` is the object's key path in its file (``"environment."``); ``bases`` are the folders relative paths
    are tried in (the current directory, then the file's folder). ``python.condaDependenciesFile`` is read (given
    together with ``condaDependencies`` it is refused); relative ``--find-links`` folders in the pip list are
    resolved the same way; conda-only packages and the ``docker`` settings that local builds do not apply warn.
    Raises InvalidInput naming the key for bad values and for Spark, Databricks and R packages.
    """
    if not isinstance(data, dict):
        raise InvalidInput(f"{rule.source}: {prefix or 'the environment '}must be a JSON object (an Azure ML "
                           f"Environment), not {type(data).__name__}")
    known = _known_keys(data, file_keys(), rule, prefix, "")
    _warn_not_applied(known, rule, prefix)
    try:
        spec = EnvironmentSpec.from_dict(known)
    except InvalidInput as err:
        raise InvalidInput(f"{rule.source}: {err}") from None
    conda_file = spec.python.conda_dependencies_file
    if conda_file:
        key = f"{prefix}python.condaDependenciesFile"
        if spec.python.conda_dependencies is not None:
            raise InvalidInput(f"{rule.source}: {key} and {prefix}python.condaDependencies are both given; keep one "
                               "(the file, or the inline dependencies)")
        spec = spec.with_conda_file(find_path(conda_file, key, rule.source, bases, Path.is_file, "file"))
    spec = _with_absolute_find_links(spec, rule, prefix, bases)
    warn_conda_only(spec, rule, f"{prefix}python.condaDependencies")
    return spec


def warn_conda_only(spec: EnvironmentSpec, rule: KeyRule, key: str) -> None:
    """Warn (naming ``key``) when ``spec`` lists conda packages, which local builds cannot install."""
    if spec.conda_packages():
        rule.note(f"{key}: conda packages {', '.join(spec.conda_packages())} are not installed by local builds "
                  "(there is no conda here); add their pip names to the pip list if score.py needs them")


def _known_keys(data: dict, keys: dict, rule: KeyRule, prefix: str, path: str) -> dict:
    """``data`` without the keys ``keys`` lacks (each reported to ``rule``; Azure's registration keys dropped) and
    without null sections (their defaults stand)."""
    known = {}
    for key, value in data.items():
        if key not in keys:
            if not path and key in REGISTRATION_KEYS:
                continue
            rule.unknown(f"{prefix}{path}{key}", keys, f"{prefix}{path}")
            continue
        node = keys[key]
        if isinstance(node, dict) and value is None:
            continue
        known[key] = _known_keys(value, node, rule, prefix, f"{path}{key}.") \
            if isinstance(node, dict) and isinstance(value, dict) else value
    return known


def _warn_not_applied(data: dict, rule: KeyRule, prefix: str) -> None:
    image = _at(data, "docker.baseImage")
    if not (isinstance(image, str) and AZURE_DEFAULT_IMAGE.match(image)):
        rule.unsupported(f"{prefix}docker.baseImage", image, _IMAGE)
    for key, (default, instead) in NOT_APPLIED.items():
        rule.unsupported(f"{prefix}{key}", _at(data, key), instead, default)


def _at(data: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _with_absolute_find_links(spec: EnvironmentSpec, rule: KeyRule, prefix: str,
                              bases: Sequence[Path]) -> EnvironmentSpec:
    conda = spec.python.conda_dependencies
    if not conda:
        return spec

    def folder(value: str) -> Path:
        return find_path(value, f"{prefix}python.condaDependencies pip --find-links", rule.source, bases,
                         Path.exists, "folder")

    dependencies = [{"pip": absolute_find_links(item["pip"], folder)} if isinstance(item, dict) else item
                    for item in conda.get("dependencies") or []]
    conda = {**conda, "dependencies": dependencies}
    return spec.model_copy(update={"python": spec.python.model_copy(update={"conda_dependencies": conda})})


def _render_build(events, show_output: bool) -> dict:
    """Show an environment build's log lines with a spinner; return the final event or raise its error."""
    from rich.console import Console

    console = Console(stderr=True)
    result: dict = {}
    with console.status("building the environment ...", spinner="dots") if show_output else nullcontext() as status:
        for event in events:
            if event["event"] == "log":
                if show_output:
                    console.print(event["line"], markup=False, highlight=False, soft_wrap=True)
                    status.update(f"building: {event['line'][:70]}")
            else:
                result = event
    if result.get("event") != "done":
        raise ModelportError(result.get("message", "the environment build stopped without a result"))
    if show_output:
        console.print(f"environment ready: {result['python']}" + (" (reused)" if result.get("reused") else ""),
                      soft_wrap=True)
    return result
