"""The environment spec: Azure ML's Environment JSON (as in ``inferenceconfig.json``), validated, with its hash."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from ..errors import InvalidInput
from .conda import check_conda_dict, load_conda_file, requirement_name

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
RESERVED_PREFIXES = ("AzureML", "Microsoft")
DROPPED_PREFIX = "azureml-"


class _Section(BaseModel):
    """Keys in Azure's camelCase; Python names accepted too; unknown keys refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class PythonSection(_Section):
    """How the Python environment is made: from conda dependencies, or a user-managed interpreter."""

    user_managed_dependencies: bool = False
    interpreter_path: str = "python"
    conda_dependencies_file: str | None = None
    conda_dependencies: dict[str, Any] | None = None
    base_conda_environment: str | None = None

    @field_validator("conda_dependencies")
    @classmethod
    def _conda_shape(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else check_conda_dict(value, "environment python.condaDependencies")


class RegistrySection(_Section):
    """Credentials of the registry holding the base image (kept for image builds)."""

    address: str | None = None
    username: str | None = None
    password: str | None = None
    registry_identity: dict[str, Any] | None = None


class PlatformSection(_Section):
    """The image's target platform (kept for image builds)."""

    os: str = "Linux"
    architecture: str = "amd64"


class DockerSection(_Section):
    """The image the environment builds on (kept for image builds; unused by local builds)."""

    enabled: bool = False
    base_image: str | None = None
    base_dockerfile: str | None = None
    build_context: dict[str, Any] | None = None
    shared_volumes: bool = True
    shm_size: str | None = None
    arguments: list[str] = Field(default_factory=list)
    base_image_registry: RegistrySection = Field(default_factory=RegistrySection)
    platform: PlatformSection = Field(default_factory=PlatformSection)


class SparkSection(_Section):
    """Accepted as Azure writes it, but must be empty: modelport has no Spark."""

    repositories: list[str] = Field(default_factory=list)
    packages: list[dict[str, Any]] = Field(default_factory=list)
    precache_packages: bool = True

    @field_validator("repositories", "packages")
    @classmethod
    def _empty(cls, value: list) -> list:
        if value:
            raise InvalidInput("Spark packages (environment spark section) are not supported by modelport; "
                               "remove them or leave the lists empty")
        return value


class DatabricksSection(_Section):
    """Accepted as Azure writes it, but must be empty: modelport has no Databricks."""

    maven_libraries: list[dict[str, Any]] = Field(default_factory=list)
    pypi_libraries: list[dict[str, Any]] = Field(default_factory=list)
    rcran_libraries: list[dict[str, Any]] = Field(default_factory=list)
    jar_libraries: list[dict[str, Any]] = Field(default_factory=list)
    egg_libraries: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("*")
    @classmethod
    def _empty(cls, value: list) -> list:
        if value:
            raise InvalidInput("Databricks libraries (environment databricks section) are not supported by modelport; "
                               "remove them or leave the lists empty")
        return value


class EnvironmentSpec(_Section):
    """An Azure ML v1 Environment. ``from_dict``/``to_dict`` read and write Azure's JSON shape."""

    name: str
    version: str | None = None
    environment_variables: dict[str, str] = Field(default_factory=dict)
    python: PythonSection = Field(default_factory=PythonSection)
    docker: DockerSection = Field(default_factory=DockerSection)
    spark: SparkSection = Field(default_factory=SparkSection)
    databricks: DatabricksSection = Field(default_factory=DatabricksSection)
    r: dict[str, Any] | None = None
    inferencing_stack_version: str | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _one_line_errors(cls, data: Any, handler: Any) -> EnvironmentSpec:
        if not isinstance(data, dict | EnvironmentSpec):
            raise InvalidInput(f"an environment must be a JSON object, not {type(data).__name__}")
        try:
            return handler(data)
        except ValidationError as exc:
            raise InvalidInput(_describe(exc.errors()[0])) from None

    @field_validator("name")
    @classmethod
    def _name_rules(cls, name: str) -> str:
        for prefix in RESERVED_PREFIXES:
            if name.lower().startswith(prefix.lower()):
                raise InvalidInput(f"environment name '{name}' starts with '{prefix}', a prefix Azure ML reserves "
                                   "for its curated environments; choose another name")
        if not NAME.match(name):
            raise InvalidInput(f"environment name '{name}' is invalid; use 1-255 letters, digits, '-', '_' or '.', "
                               "starting with a letter or digit")
        return name

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, version: Any) -> Any:
        return str(version) if isinstance(version, int) and not isinstance(version, bool) else version

    @field_validator("r")
    @classmethod
    def _no_r(cls, value: dict[str, Any] | None) -> None:
        if value is not None:
            raise InvalidInput("R environments (environment 'r' section) are not supported by modelport; "
                               "set it to null")
        return value

    @classmethod
    def from_dict(cls, data: Any) -> EnvironmentSpec:
        """Validate Azure's Environment JSON (a dict); InvalidInput names any unknown key or bad value."""
        return cls.model_validate(data)

    def to_dict(self) -> dict[str, Any]:
        """Azure's Environment JSON: camelCase keys, every section present."""
        return self.model_dump(by_alias=True, mode="json")

    def with_conda_file(self, path: Path) -> EnvironmentSpec:
        """A copy whose ``condaDependencies`` is read from the conda YAML at ``path`` (the resolved
        ``condaDependenciesFile``); InvalidInput names the file when it is missing or malformed."""
        conda = load_conda_file(Path(path))
        return self.model_copy(update={"python": self.python.model_copy(update={"conda_dependencies": conda})})

    def content_hash(self) -> str:
        """sha256 of what the environment installs and runs on; not its name, version or variables."""
        content = {
            "baseImage": self.docker.base_image,
            "baseDockerfile": self.docker.base_dockerfile,
            "buildContext": self.docker.build_context,
            "arguments": self.docker.arguments,
            "condaDependencies": self.python.conda_dependencies,
            "baseCondaEnvironment": self.python.base_conda_environment,
            "userManagedDependencies": self.python.user_managed_dependencies,
            "interpreterPath": self.python.interpreter_path,
        }
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def python_version(self) -> str | None:
        """``"3.8"`` for a conda ``python=3.8`` (or ``python==3.8.*``) pin, None when python is not pinned."""
        for dependency in self._conda_strings():
            match = re.match(r"^python\s*={1,2}\s*(\d+\.\d+)(?:\.[\d*]+)*$", _strip_channel(dependency))
            if match:
                return match[1]
        return None

    def pip_requirements(self) -> list[str]:
        """The pip list to install, without Azure's own ``azureml-*`` packages (see ``dropped_requirements``)."""
        return [line for line in self._pip_lines() if not _is_dropped(line)]

    def dropped_requirements(self) -> list[str]:
        """The ``azureml-*`` lines of the pip list: Azure's packages, replaced by modelport's runtime."""
        return [line for line in self._pip_lines() if _is_dropped(line)]

    def conda_packages(self) -> list[str]:
        """Conda dependencies other than python and pip (installable only in image builds)."""
        return [dep for dep in self._conda_strings() if _conda_name(dep) not in ("python", "pip")]

    def _dependencies(self) -> list[Any]:
        return list((self.python.conda_dependencies or {}).get("dependencies") or [])

    def _conda_strings(self) -> list[str]:
        return [item.strip() for item in self._dependencies() if isinstance(item, str)]

    def _pip_lines(self) -> list[str]:
        return [line.strip() for item in self._dependencies() if isinstance(item, dict) for line in item["pip"]]


def file_keys(section: type[BaseModel] = EnvironmentSpec) -> dict[str, dict | None]:
    """The JSON keys of an Environment ``section`` as Azure writes them: each nested section a dict of its keys,
    every other key (conda dependencies and variables included, whose values are not keys) None."""
    keys: dict[str, dict | None] = {}
    for name, field in section.model_fields.items():
        kind = field.annotation
        nested = isinstance(kind, type) and issubclass(kind, _Section)
        keys[field.alias or name] = file_keys(kind) if nested else None
    return keys


def _describe(error: dict[str, Any]) -> str:
    path = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown key '{path}' in the environment; remove it or fix its spelling (keys as Azure ML writes them)"
    if error["type"] == "missing":
        return f"the environment has no '{path}'; add it"
    return f"environment value '{path}' is invalid: {error['msg']}; fix it"


def _is_dropped(line: str) -> bool:
    name = requirement_name(line)
    return name is not None and name.startswith(DROPPED_PREFIX)


def _strip_channel(dependency: str) -> str:
    return dependency.split("::", 1)[-1].strip()


def _conda_name(dependency: str) -> str:
    return re.split(r"[\s=<>!~\[]", _strip_channel(dependency), maxsplit=1)[0].lower()
