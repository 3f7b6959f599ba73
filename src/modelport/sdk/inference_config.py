"""``InferenceConfig``: the entry script, its source folder and its environment.

Also reads ``inferenceconfig.json`` as Azure ML's CLI did, in both forms: with ``environment`` (an Environment
object, or ``{"name", "version"}`` naming a registered environment) or the legacy keys (``runtime``, ``condaFile``,
``extraDockerfileSteps``, ``enableGpu``, ``baseImage``, ``baseImageRegistry``, ``cudaVersion``). Keys follow the
key rule of ``files``; relative paths are taken from the current directory, then from the file's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..environments.spec import EnvironmentSpec
from ..errors import InvalidInput
from ..packaging.snapshot import collect
from .environment import Environment, read_environment, warn_conda_only
from .files import KeyRule, find_path, read_json_object

RUNTIMES = ("python", "python-slim", "spark-py")  # what Azure ML's --runtime accepted
_IMAGE = "local builds make a virtual environment with this machine's Python and build no image"
# The legacy keys that shaped Azure's Docker image: key -> what modelport does instead.
IMAGE_KEYS = {
    "extraDockerfileSteps": f"{_IMAGE}, so Docker steps are not run; install Python packages through condaFile's "
                            "pip list",
    "enableGpu": f"{_IMAGE}; replicas get this machine's GPUs with gpuCores in deploymentconfig.json",
    "cudaVersion": f"{_IMAGE}; CUDA comes from this machine's driver and the wheels pip installs",
    "baseImage": _IMAGE,
    "baseImageRegistry": _IMAGE,
}
FILE_KEYS = frozenset({"entryScript", "sourceDirectory", "environment", "description", "runtime", "condaFile",
                       *IMAGE_KEYS})


class InferenceConfig:
    """What a deployment runs: ``entry_script`` (relative to ``source_directory``) in ``environment``."""

    def __init__(self, entry_script: str, source_directory: str | Path | None = None,
                 environment: Environment | None = None, description: str | None = None):
        self.entry_script = entry_script
        self.source_directory = str(source_directory) if source_directory is not None else None
        self.environment = environment
        self.description = description
        self.validate()

    @property
    def source_path(self) -> Path:
        return Path(self.source_directory or ".").expanduser().resolve()

    def validate(self) -> None:
        """Check that the entry script exists inside the source folder."""
        if not self.entry_script:
            raise InvalidInput("entry_script is required, e.g. InferenceConfig(entry_script='score.py')")
        source = self.source_path
        if not source.is_dir():
            raise InvalidInput(f"source_directory {self.source_directory} is not a folder")
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
                  flags: dict[str, Any] | None = None) -> InferenceConfig:
        """Read an Azure ML ``inferenceconfig.json`` as the ``az ml`` CLI did.

        Relative ``sourceDirectory``, ``condaFile`` and ``environment.python.condaDependenciesFile`` are taken from
        the current directory, then from the file's folder (``condaFile`` first from ``sourceDirectory``, as Azure
        ML joined them); ``entryScript`` lies in the source folder (without ``sourceDirectory``: the first of those
        two folders that holds it). ``workspace`` resolves an ``environment`` that only names a registered one.
        ``strict`` makes unknown keys errors. ``flags`` are ``az ml model deploy``'s inference flags by file key
        (``entryScript``, ``sourceDirectory``, ``runtime``, ``condaFile``; None = not given): they override the
        file, and ``path`` None reads them alone. Raises InvalidInput naming the file, the key and the fix.
        """
        flags = {key: value for key, value in (flags or {}).items() if value is not None}
        data = read_json_object(path, "inference config") if path is not None else {}
        conda_flag = flags.pop("condaFile", None)
        source = str(path) if path is not None else "the command line"
        folder = Path(path).resolve().parent if path is not None else Path.cwd()
        return _Reading(KeyRule(source, strict), [Path.cwd(), folder], workspace).config({**data, **flags},
                                                                                          conda_flag)

    def serialize(self) -> dict:
        return {"entryScript": self.entry_script, "sourceDirectory": self.source_directory,
                "environment": self.environment._to_dict() if self.environment else None,
                "description": self.description}


class _Reading:
    """One inferenceconfig.json being read: its key rule, the folders relative paths are tried in, a workspace."""

    def __init__(self, rule: KeyRule, bases: list[Path], workspace):
        self.rule = rule
        self.bases = bases
        self.workspace = workspace

    def config(self, data: dict, conda_flag: str | None) -> InferenceConfig:
        for key in data:
            if key not in FILE_KEYS:
                self.rule.unknown(key, FILE_KEYS)
        entry = data.get("entryScript")
        if not isinstance(entry, str) or not entry:
            raise InvalidInput(f"{self.rule.source}: entryScript is required (the scoring script, e.g. "
                               "\"entryScript\": \"score.py\")")
        folder = self._source_folder(data.get("sourceDirectory"), entry)
        self._check_runtime(data.get("runtime"))
        for key, instead in IMAGE_KEYS.items():
            self.rule.unsupported(key, data.get(key), instead)
        environment = self._environment(data, folder)
        if conda_flag is not None:
            conda = self._conda_environment(conda_flag, folder)
            if environment is not None:
                environment.python.conda_dependencies = conda.python.conda_dependencies
            else:
                environment = conda
        return InferenceConfig(entry, folder, environment, data.get("description"))

    def _source_folder(self, value: object, entry: str) -> Path:
        if value is None or value == "":
            script = find_path(entry, "entryScript", self.rule.source, self.bases, Path.is_file, "file")
            return next(base for base in self.bases if (base / entry).resolve() == script)
        if not isinstance(value, str):
            raise InvalidInput(f"{self.rule.source}: sourceDirectory must be a folder path; got {value!r}")
        return find_path(value, "sourceDirectory", self.rule.source, self.bases,
                         lambda folder: (folder / entry).is_file(), f"folder holding {entry}")

    def _check_runtime(self, runtime: object) -> None:
        if runtime is None or (isinstance(runtime, str) and runtime.lower() in ("python", "python-slim")):
            return
        if not (isinstance(runtime, str) and runtime.lower() in RUNTIMES):
            raise InvalidInput(f"{self.rule.source}: runtime {runtime!r} is not one Azure ML accepted; use "
                               f"{', '.join(RUNTIMES)} (or leave it out)")
        self.rule.unsupported("runtime", runtime, "the entry script runs with Python; add pyspark to the pip list "
                                                  "if score.py uses Spark")

    def _environment(self, data: dict, folder: Path) -> Environment | None:
        described, conda = data.get("environment"), data.get("condaFile")
        if described is None:
            return self._conda_environment(conda, folder) if conda else None
        if conda:
            raise InvalidInput(f"{self.rule.source}: give environment or the legacy condaFile, not both (Azure ML "
                               "ignored condaFile when environment was given); move its packages into "
                               "environment.python.condaDependencies, or remove condaFile")
        if isinstance(described, dict) and described and set(described) <= {"name", "version"}:
            return self._registered(described)
        return Environment._from_dict(read_environment(described, self.rule, "environment.", self.bases).to_dict())

    def _conda_environment(self, conda: object, folder: Path) -> Environment:
        if not isinstance(conda, str):
            raise InvalidInput(f"{self.rule.source}: condaFile must be a file path; got {conda!r}")
        path = find_path(conda, "condaFile", self.rule.source, [folder, *self.bases], Path.is_file, "file")
        env = Environment.from_conda_specification("inference-env", path)
        warn_conda_only(EnvironmentSpec.from_dict(env._to_dict()), self.rule, "condaFile")
        return env

    def _registered(self, reference: dict) -> Environment:
        """Azure's EnvironmentReference: an environment given by name (and version) only is the registered one."""
        name, version = reference.get("name"), reference.get("version")
        if self.workspace is None:
            raise InvalidInput(f"{self.rule.source}: environment names the registered environment {name!r} (only "
                               "name and version are given); read the file with the workspace "
                               "(InferenceConfig.from_file(path, workspace=ws)) or write the whole environment")
        return Environment.get(self.workspace, name, version)
