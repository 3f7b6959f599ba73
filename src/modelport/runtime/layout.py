"""The app root a replica runs in: source files, ``azureml-models/<name>/<version>/...`` and env vars.

Azure ML runs every entry script with cwd = the app root, ``AML_APP_ROOT`` set, and
``AZUREML_MODEL_DIR`` pointing at ``<app root>/azureml-models/<name>/<version>`` for one
model or ``<app root>/azureml-models`` for several. With ``InferenceConfig(source_directory=
"src", entry_script="x/score.py")`` the app root *contains* ``src/``: the entry script is
``src/x/score.py``, ``AZUREML_SOURCE_DIRECTORY=src`` and ``<app root>/src`` is on ``sys.path``.
This module reproduces that layout.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .settings import ModelSpec, RuntimeSettings

MODELS_FOLDER = "azureml-models"


@dataclass(frozen=True)
class AppLayout:
    """Where the entry script runs and where its models are."""

    app_root: Path
    entry_script: Path
    model_dir: Path | None
    staged: bool = False  # True when app_root is a temporary folder this process made
    model_dir_text: str | None = None  # AZUREML_MODEL_DIR as the user gave it (default: str(model_dir))
    source_directory: str | None = None  # AZUREML_SOURCE_DIRECTORY, relative to the app root

    @property
    def source_dir(self) -> Path | None:
        """The source folder inside the app root that goes on ``sys.path``, when there is one."""
        return self.app_root / self.source_directory if self.source_directory else None

    def environment(self) -> dict[str, str]:
        """Environment variables the entry script expects."""
        env = {"AML_APP_ROOT": str(self.app_root), "AZUREML_ENTRY_SCRIPT": str(self.entry_script)}
        if self.model_dir is not None:
            env["AZUREML_MODEL_DIR"] = self.model_dir_text or str(self.model_dir)
        if self.source_directory:
            env["AZUREML_SOURCE_DIRECTORY"] = self.source_directory
        return env

    def cleanup(self) -> None:
        if self.staged:
            shutil.rmtree(self.app_root, ignore_errors=True)


def prepare(settings: RuntimeSettings) -> AppLayout:
    """Build the layout for these settings (staging a temporary app root for ``--model``)."""
    if settings.models:
        return _stage(settings.app_root, settings.entry_script, settings.models, settings.source_directory)
    if settings.model_dir is not None:
        return AppLayout(settings.app_root, settings.entry_script, Path(settings.model_dir).expanduser(),
                         model_dir_text=settings.model_dir, source_directory=settings.source_directory)
    model_dir = _infer_model_dir(settings.app_root / MODELS_FOLDER)
    return AppLayout(settings.app_root, settings.entry_script, model_dir, source_directory=settings.source_directory)


def _infer_model_dir(models_root: Path) -> Path | None:
    """An app root that already holds ``azureml-models`` (a deployment's replica) needs no flag."""
    if not models_root.is_dir():
        return None
    versions = [v for name in models_root.iterdir() if name.is_dir() for v in name.iterdir() if v.is_dir()]
    return versions[0] if len(versions) == 1 else models_root


def _stage(source: Path, entry_script: Path, models: tuple[ModelSpec, ...],
           source_directory: str | None = None) -> AppLayout:
    root = Path(tempfile.mkdtemp(prefix="modelport-app-"))
    for entry in source.iterdir():
        if entry.name != MODELS_FOLDER:
            (root / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    models_root = root / MODELS_FOLDER
    for spec in models:
        version_dir = models_root / spec.name / spec.version
        version_dir.mkdir(parents=True, exist_ok=True)
        (version_dir / spec.path.name).symlink_to(spec.path, target_is_directory=spec.path.is_dir())
    try:
        script = root / entry_script.relative_to(source)
    except ValueError:  # an entry script outside the source folder stays where it is
        script = entry_script
    model_dir = models_root / models[0].name / models[0].version if len(models) == 1 else models_root
    return AppLayout(root, script, model_dir, staged=True, source_directory=source_directory)


def describe_tree(path: Path | None, limit: int = 60) -> str:
    """A short indented listing of a folder, for logs that must show what the model directory holds."""
    if path is None:
        return "(AZUREML_MODEL_DIR is not set)"
    if not path.exists():
        return f"{path} (does not exist)"
    lines = [str(path)]

    def walk(folder: Path, depth: int) -> None:
        for entry in sorted(folder.iterdir()):
            if len(lines) > limit:
                return
            lines.append("  " * depth + entry.name + ("/" if entry.is_dir() else ""))
            if entry.is_dir():
                walk(entry, depth + 1)

    if path.is_dir():
        walk(path, 1)
    if len(lines) > limit:
        lines.append("  ...")
    return "\n".join(lines)
