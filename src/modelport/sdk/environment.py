"""``Environment`` and ``CondaDependencies``: the Python environment a deployment runs in.

Shaped like ``azureml.core.Environment``; its JSON form is Azure ML's Environment object,
so an ``inferenceconfig.json`` written for Azure ML reads unchanged.
"""

from __future__ import annotations

import copy
from contextlib import nullcontext
from pathlib import Path

from ..environments.conda import load_conda_file, parse_requirements_file
from ..environments.spec import EnvironmentSpec
from ..errors import ModelportError

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


def _render_build(events, show_output: bool) -> dict:
    """Show an environment build's log lines with a spinner; return the final event or raise its error."""
    from rich.console import Console

    console = Console(stderr=True)
    result: dict = {}
    with console.status("building the environment ...", spinner="dots") if show_output else nullcontext() as status:
        for event in events:
            if event["event"] == "log":
                if show_output:
                    console.print(event["line"], markup=False, highlight=False)
                    status.update(f"building: {event['line'][:70]}")
            else:
                result = event
    if result.get("event") != "done":
        raise ModelportError(result.get("message", "the environment build stopped without a result"))
    if show_output:
        console.print(f"environment ready: {result['python']}" + (" (reused)" if result.get("reused") else ""))
    return result
