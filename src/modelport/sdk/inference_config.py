"""``InferenceConfig``: the entry script, its source folder and its environment.

Also reads ``inferenceconfig.json`` as Azure ML writes it (``entryScript``,
``sourceDirectory``, ``environment``); the legacy ``runtime``/``condaFile`` keys are mapped
where they have a meaning here and refused with the fix otherwise.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InvalidInput
from ..packaging.snapshot import collect
from .environment import Environment
from .files import read_json_object

FILE_KEYS = {"entryScript", "sourceDirectory", "environment", "description", "runtime", "condaFile"}
LEGACY_REFUSED = {
    "extraDockerfileSteps": "put Dockerfile steps in environment.docker.baseDockerfile",
    "enableGpu": "set gpuCores in deploymentconfig.json",
    "baseImage": "set environment.docker.baseImage",
    "baseImageRegistry": "set environment.docker.baseImageRegistry",
    "cudaVersion": "choose a CUDA base image in environment.docker.baseImage",
    "sourceDirectoryPath": "use sourceDirectory",
}


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
        """The files a snapshot of the source folder holds (``.amlignore``/``.gitignore`` honoured)."""
        return collect(self.source_path)

    def package_source(self, workspace) -> str:
        """Upload a snapshot of the source folder to the workspace; return its sha256."""
        tree = workspace._client.upload_tree(self.source_files())
        workspace._client.json("POST", "/snapshots", json=tree)
        return tree["sha256"]

    @staticmethod
    def from_file(path: str | Path) -> InferenceConfig:
        """Read an Azure ML ``inferenceconfig.json``; relative folders are relative to the file."""
        path = Path(path)
        data = read_json_object(path, "inference config")
        for key in data:
            if key in LEGACY_REFUSED:
                raise InvalidInput(f"{path}: key {key!r} is not supported; {LEGACY_REFUSED[key]}")
            if key not in FILE_KEYS:
                raise InvalidInput(f"{path}: unknown key {key!r}; known keys: {', '.join(sorted(FILE_KEYS))}")
        if data.get("runtime", "python").lower() != "python":
            raise InvalidInput(f"{path}: runtime {data['runtime']!r} is not supported; only python entry scripts run")
        base = path.resolve().parent
        source = base / data["sourceDirectory"] if data.get("sourceDirectory") else base
        environment = None
        if data.get("environment"):
            if data.get("condaFile"):
                raise InvalidInput(f"{path}: give either environment or the legacy condaFile, not both")
            environment = Environment._from_dict(data["environment"])
        elif data.get("condaFile"):
            environment = Environment.from_conda_specification("inference-env", base / data["condaFile"])
        if "entryScript" not in data:
            raise InvalidInput(f"{path}: entryScript is required")
        return InferenceConfig(data["entryScript"], source, environment, data.get("description"))

    def serialize(self) -> dict:
        return {"entryScript": self.entry_script, "sourceDirectory": self.source_directory,
                "environment": self.environment._to_dict() if self.environment else None,
                "description": self.description}
