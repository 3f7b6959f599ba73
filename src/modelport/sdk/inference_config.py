"""``InferenceConfig``: the entry script, its source folder and its environment.

Azure ML v1's class with its signature and parameter order, and ``inferenceconfig.json`` read as Azure ML's CLI did,
in both forms: with ``environment`` (an Environment object, or ``{"name", "version"}`` naming a registered
environment) or the legacy keys (``runtime``, ``condaFile``, ``extraDockerfileSteps``, ``enableGpu``, ``baseImage``,
``baseImageRegistry``, ``cudaVersion``). Keyword arguments, files and ``az ml model deploy``'s flags go through one
reader under the key rule of ``files``: a setting that asks for nothing is silent, one asking for what modelport does
not do (a Docker image, a GPU image, Spark) warns once with what it does instead, and ``conda_file``/``condaFile``
builds the environment. Messages name each setting as the user gave it: keyword, file key or flag.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..environments.spec import EnvironmentSpec
from ..errors import InvalidInput
from ..packaging.snapshot import collect
from .environment import Environment, read_environment, warn_conda_only
from .files import KeyRule, candidates, find_path, read_json_object, suggest

RUNTIMES = ("python", "python-slim", "spark-py")  # what Azure ML's --runtime accepted
_IMAGE = "local builds make a virtual environment with this machine's Python and build no image"
# The legacy settings that shaped Azure's Docker image: keyword, inferenceconfig.json key, what modelport does
# instead ({conda} and {gpu} are how the same source names the conda file and the deployment's GPU setting).
IMAGE_SETTINGS: tuple[tuple[str, str, str], ...] = (
    ("extra_docker_file_steps", "extraDockerfileSteps",
     f"{_IMAGE}, so Docker steps are not run; install Python packages through {{conda}}'s pip list"),
    ("enable_gpu", "enableGpu", f"{_IMAGE}; replicas get this machine's GPUs with {{gpu}}"),
    ("cuda_version", "cudaVersion", f"{_IMAGE}; CUDA comes from this machine's driver and the wheels pip installs"),
    ("base_image", "baseImage", _IMAGE),
    ("base_image_registry", "baseImageRegistry", _IMAGE),
)
# InferenceConfig's keywords by inferenceconfig.json key.
KEYWORDS: dict[str, str] = {"entryScript": "entry_script", "sourceDirectory": "source_directory",
                            "environment": "environment", "description": "description", "runtime": "runtime",
                            "condaFile": "conda_file", **{key: keyword for keyword, key, _ in IMAGE_SETTINGS}}
FILE_KEYS = frozenset(KEYWORDS)


class InferenceConfig:
    """What a deployment runs: ``entry_script`` (relative to ``source_directory``) in ``environment``."""

    def __init__(self, entry_script: str, runtime: str | None = None, conda_file: str | os.PathLike | None = None,
                 extra_docker_file_steps: str | None = None, source_directory: str | os.PathLike | None = None,
                 enable_gpu: bool | None = None, description: str | None = None, base_image: str | None = None,
                 base_image_registry: Any = None, cuda_version: str | None = None,
                 environment: Environment | None = None):
        """Azure ML's ``InferenceConfig``, same parameters in the same order.

        ``entry_script`` and ``conda_file`` are taken from ``source_directory`` when given (as Azure ML joined
        them), else from the current directory (and only the entry script is packaged). ``conda_file`` (a conda
        YAML) becomes ``environment``; giving both is refused, as Azure ML did. ``runtime`` is ``python`` (or
        ``python-slim``, the same here); ``spark-py`` and the Docker image settings (``extra_docker_file_steps``,
        ``enable_gpu``, ``cuda_version``, ``base_image``, ``base_image_registry``) are kept as attributes and
        warn once (``ConfigWarning``) with what modelport does instead, unless they ask for nothing (None, False,
        a registry with no address). Raises InvalidInput naming the parameter and the fix.
        """
        arguments = locals()
        origin = _Origin(KeyRule("InferenceConfig"), KEYWORDS, "gpu_cores in deploy_configuration()")
        self._read({key: _Given(arguments[keyword], origin) for key, keyword in KEYWORDS.items()},
                   origin, [Path.cwd()], None)
        if source_directory is None:
            self.source_directory = None  # the entry script alone is packaged, as Azure ML did

    @property
    def source_path(self) -> Path:
        return Path(self.source_directory or ".").expanduser().resolve()

    def validate(self) -> None:
        """Check that the entry script exists inside the source folder."""
        source = self.source_path
        if not source.is_dir():
            raise InvalidInput(f"source_directory {self.source_directory} is not a folder; give an existing folder")
        script = (source / self.entry_script).resolve()
        if not script.is_relative_to(source):
            raise InvalidInput(f"entry_script {self.entry_script} must be inside source_directory {source}")
        if not script.is_file():
            raise InvalidInput(f"entry_script {self.entry_script} not found in {source}; check the name and folder")

    def source_files(self) -> list[tuple[str, Path]]:
        """The files a snapshot holds: the source folder's (``.amlignore``/``.gitignore`` honoured), or, with
        no source folder, the entry script alone (as Azure ML packaged it), at its relative path."""
        if self.source_directory is None:
            return [(Path(self.entry_script).as_posix(), (self.source_path / self.entry_script).resolve())]
        return collect(self.source_path)

    def package_source(self, workspace) -> str:
        """Upload a snapshot of the source folder to the workspace; return its sha256."""
        tree = workspace._client.upload_tree(self.source_files())
        workspace._client.json("POST", "/snapshots", json=tree)
        return tree["sha256"]

    @staticmethod
    def from_file(path: str | Path | None, workspace=None, strict: bool = False,
                  flags: Mapping[str, Any] | None = None, flag_names: Mapping[str, str] | None = None
                  ) -> InferenceConfig:
        """Read an Azure ML ``inferenceconfig.json`` as the ``az ml`` CLI did.

        Relative ``sourceDirectory``, ``condaFile`` and ``environment.python.condaDependenciesFile`` are taken from
        the current directory, then from the file's folder (``condaFile`` first from ``sourceDirectory``, as Azure
        ML joined them); ``entryScript`` lies in the source folder (without ``sourceDirectory``: the first of those
        two folders that holds it). ``workspace`` resolves an ``environment`` that only names a registered one.
        ``strict`` makes unknown keys errors (all of them in one). ``flags`` are ``az ml model deploy``'s inference
        flags by file key (``entryScript``, ``sourceDirectory``, ``runtime``, ``condaFile``; ``environment`` as
        ``{"name", "version"}`` of a registered one; None = not given), named in messages by ``flag_names``: they
        override the file (an ``environment`` flag replaces the file's environment and condaFile; a ``condaFile``
        flag replaces the environment's conda dependencies), and ``path`` None reads them alone. Raises
        InvalidInput naming the file (or flag), the key and the fix.
        """
        flags = {key: value for key, value in (flags or {}).items() if value is not None}
        data = read_json_object(path, "inference config") if path is not None else {}
        origin = _Origin(KeyRule(str(path) if path is not None else "the command line", strict), {},
                         "gpuCores in deploymentconfig.json")
        flagged = _Origin(KeyRule("the command line"), flag_names or {}, "--gpu-cores")
        folder = Path(path).resolve().parent if path is not None else Path.cwd()
        config = InferenceConfig.__new__(InferenceConfig)
        with origin.rule:
            for key in [key for key in data if key not in FILE_KEYS]:
                origin.rule.unknown(key, FILE_KEYS)
            given = {key: _Given(value, origin) for key, value in data.items() if key in FILE_KEYS}
            if "environment" in flags:
                given.pop("condaFile", None)
            conda_flag = flags.pop("condaFile", None)
            given.update({key: _Given(value, flagged) for key, value in flags.items()})
            config._read(given, origin, [Path.cwd(), folder], workspace,
                         _Given(conda_flag, flagged) if conda_flag is not None else None)
        return config

    def _read(self, given: dict[str, _Given], origin: _Origin, bases: list[Path], workspace,
              conda_flag: _Given | None = None) -> None:
        """Set Azure's attributes from ``given`` settings (by file key), through the one reader."""
        reading = _Reading(given, origin, bases, workspace)
        reading.warn_image_settings()
        folder = reading.source_folder()
        environment = reading.environment(folder)
        if conda_flag is not None:
            conda = reading.conda_environment(conda_flag, folder)
            if environment is not None:
                environment.python.conda_dependencies = conda.python.conda_dependencies
            else:
                environment = conda
        for key, keyword in KEYWORDS.items():
            setattr(self, keyword, reading.at(key).value)
        self.entry_script = os.fspath(self.entry_script)
        self.source_directory = str(folder)
        self.environment = environment
        self.validate()

    def serialize(self) -> dict:
        return {"entryScript": self.entry_script, "sourceDirectory": self.source_directory,
                "environment": self.environment._to_dict() if self.environment else None,
                "description": self.description}

    def __repr__(self) -> str:
        return (f"InferenceConfig(entry_script={self.entry_script!r}, source_directory={self.source_directory!r}, "
                f"environment={self.environment!r})")


@dataclass(frozen=True)
class _Origin:
    """Where settings came from: their key rule, how the user named each (inferenceconfig.json key -> name; the
    key itself when absent), and how advice names the deployment's GPU setting."""

    rule: KeyRule
    names: Mapping[str, str]
    gpu: str

    def name(self, key: str) -> str:
        return self.names.get(key, key)


@dataclass(frozen=True)
class _Given:
    """One setting's value and where it came from."""

    value: Any
    origin: _Origin

    @property
    def source(self) -> str:
        return self.origin.rule.source


class _Reading:
    """One InferenceConfig being read: its settings by file key, the folders relative paths are tried in (the
    current directory, then a file's folder), a workspace for registered environments."""

    def __init__(self, given: dict[str, _Given], origin: _Origin, bases: list[Path], workspace):
        self.given = given
        self.origin = origin
        self.bases = bases
        self.workspace = workspace

    def at(self, key: str) -> _Given:
        """The setting of ``key`` (value None when not given)."""
        return self.given.get(key) or _Given(None, self.origin)

    def name(self, key: str) -> str:
        """How the user named ``key``'s setting."""
        return self.at(key).origin.name(key)

    def source_folder(self) -> Path:
        """The source folder: ``sourceDirectory`` (the first of its places that holds the entry script), or without
        one the first base that holds the entry script."""
        entry, source = self.at("entryScript"), self.at("sourceDirectory")
        if not isinstance(entry.value, str | os.PathLike) or not os.fspath(entry.value):
            raise InvalidInput(f"{entry.source}: {self.name('entryScript')} is required: the scoring script, "
                               "e.g. score.py")
        if source.value is None or source.value == "":
            script = find_path(entry.value, self.name("entryScript"), entry.source, self.bases, Path.is_file, "file")
            return next(base for base in self.bases if (base / entry.value).resolve() == script)
        if not isinstance(source.value, str | os.PathLike):
            raise InvalidInput(f"{source.source}: {self.name('sourceDirectory')} must be a folder path; got "
                               f"{source.value!r}")
        folders = [folder for folder in candidates(source.value, self.bases) if folder.is_dir()]
        if not folders:
            find_path(source.value, self.name("sourceDirectory"), source.source, self.bases, Path.is_dir, "folder")
        holding = next((folder for folder in folders if (folder / entry.value).is_file()), None)
        if holding is None:
            scripts = sorted(str(path.relative_to(folders[0])) for path in folders[0].rglob("*.py"))
            raise InvalidInput(f"{entry.source}: {self.name('entryScript')} {os.fspath(entry.value)!r}: no file in "
                               f"{self.name('sourceDirectory')} {' or '.join(map(str, folders))}"
                               f"{suggest(os.fspath(entry.value), scripts)}; fix the name (it is relative to "
                               f"{self.name('sourceDirectory')})")
        return holding

    def warn_image_settings(self) -> None:
        """One warning per image setting or Spark runtime that asks for something; an unknown runtime is refused."""
        for _, key, instead in IMAGE_SETTINGS:
            setting = self.at(key)
            setting.origin.rule.unsupported(self.name(key), setting.value,
                                            instead.format(conda=setting.origin.name("condaFile"),
                                                           gpu=setting.origin.gpu))
        runtime = self.at("runtime")
        value = runtime.value
        if value is None or (isinstance(value, str) and value.lower() in ("python", "python-slim")):
            return
        if not (isinstance(value, str) and value.lower() in RUNTIMES):
            raise InvalidInput(f"{runtime.source}: {self.name('runtime')} {value!r} is not one Azure ML accepted; "
                               f"use {', '.join(RUNTIMES)} (or leave it out)")
        runtime.origin.rule.unsupported(self.name("runtime"), value, "the entry script runs with Python; add "
                                                                     "pyspark to the pip list if score.py uses Spark")

    def environment(self, folder: Path) -> Environment | None:
        """The environment: ``environment`` (an Environment, its JSON, or a registered one's name and version), or
        the one ``condaFile`` describes; both together are refused."""
        described, conda = self.at("environment"), self.at("condaFile")
        if described.value is None:
            return self.conda_environment(conda, folder) if conda.value else None
        if conda.value:
            raise InvalidInput(f"{conda.source}: give {self.name('environment')} or the legacy "
                               f"{self.name('condaFile')}, not both (Azure ML did not combine them); put the conda "
                               f"file's packages into the environment, or remove {self.name('condaFile')}")
        if isinstance(described.value, Environment):
            return described.value
        if isinstance(described.value, dict) and described.value and set(described.value) <= {"name", "version"}:
            return self._registered(described)
        return Environment._from_dict(read_environment(described.value, described.origin.rule,
                                                       f"{self.name('environment')}.", self.bases).to_dict())

    def conda_environment(self, conda: _Given, folder: Path) -> Environment:
        """The environment of the conda YAML ``conda`` names, taken from the source folder first."""
        name = conda.origin.name("condaFile")
        if not isinstance(conda.value, str | os.PathLike):
            raise InvalidInput(f"{conda.source}: {name} must be a file path; got {conda.value!r}")
        path = find_path(conda.value, name, conda.source, [folder, *self.bases], Path.is_file, "file")
        env = Environment.from_conda_specification("inference-env", path)
        warn_conda_only(EnvironmentSpec.from_dict(env._to_dict()), conda.origin.rule, name)
        return env

    def _registered(self, reference: _Given) -> Environment:
        """Azure's EnvironmentReference: an environment given by name (and version) only is the registered one."""
        name, version = reference.value.get("name"), reference.value.get("version")
        if self.workspace is None:
            raise InvalidInput(f"{reference.source}: {self.name('environment')} names the registered environment "
                               f"{name!r} (only name and version are given); read the file with the workspace "
                               "(InferenceConfig.from_file(path, workspace=ws)) or write the whole environment")
        return Environment.get(self.workspace, name, version)
