"""modelport shim of ``azureml.core.model.Model`` for entry scripts (``Model.get_model_path``).

Errors are Azure's classes from ``azureml.exceptions``, raised where Azure raises them inside a
service: a missing model is ``ModelNotFoundException`` when no version was asked for and
``WebserviceException`` when one was (Azure re-raises it so); a version folder holding more
than one entry and a version that is not an int are ``WebserviceException``.
"""

from __future__ import annotations

import os
from pathlib import Path

from azureml.exceptions import ModelNotFoundException, WebserviceException

MODELS_FOLDER = "azureml-models"


class _NotHere(Exception):
    """Not found in the model folders; the message says what was searched."""


class Model:
    """The part of Azure ML's ``Model`` that runs inside a deployed service."""

    @staticmethod
    def get_model_path(model_name: str, version: int | None = None, _workspace=None) -> str:
        """Return the path of a deployed model's file or folder.

        Looks in ``<app root>/azureml-models/<name>/<version>`` (the highest numeric version
        when ``version`` is None); the version folder must hold exactly one entry. Falls back
        to ``./<model_name>`` as Azure ML does.
        """
        if version is not None and not isinstance(version, int):
            raise WebserviceException(f"version should be an int, got {version!r}")
        if model_name is None:
            raise WebserviceException("model_name is None")
        try:
            return str(_find(model_name, version))
        except _NotHere as err:
            local = Path(model_name)
            if local.exists():
                return str(local)
            message = f"{err} Also looked for ./{model_name}. Deploy the model with the service (models=[...]) " \
                      "or check the name."
            if version is None:
                raise ModelNotFoundException(message) from None
            raise WebserviceException(message) from None


def _find(model_name: str, version: int | None) -> Path:
    roots = _model_roots()
    for root in roots:
        model_folder = root / model_name
        if model_folder.is_dir():
            return _entry_in_version(model_folder, version)
    searched = ", ".join(str(r) for r in roots) or "(no model folder: AZUREML_MODEL_DIR is not set)"
    wanted = f"{model_name} version {version}" if version is not None else model_name
    raise _NotHere(f"Model {wanted} is not deployed with this service; searched {searched}.")


def _model_roots() -> list[Path]:
    """Folders that may hold ``<name>/<version>`` model folders, most specific first."""
    roots: list[Path] = []
    model_dir = os.environ.get("AZUREML_MODEL_DIR")
    if model_dir:
        path = Path(model_dir)
        if path.parent.parent.name == MODELS_FOLDER:  # one model: .../azureml-models/<name>/<version>
            roots.append(path.parent.parent)
        roots.append(path)
    app_root = os.environ.get("AML_APP_ROOT")
    for base in (app_root, os.getcwd()):
        if base:
            roots.append(Path(base) / MODELS_FOLDER)
    unique: list[Path] = []
    for root in roots:
        if root.is_dir() and root not in unique:
            unique.append(root)
    return unique


def _entry_in_version(model_folder: Path, version: int | None) -> Path:
    if version is None:
        numeric = [p for p in model_folder.iterdir() if p.is_dir() and p.name.isdigit()]
        if not numeric:
            raise _NotHere(f"{model_folder} holds no numbered version folder.")
        version_folder = max(numeric, key=lambda p: int(p.name))
    else:
        version_folder = model_folder / str(version)
        if not version_folder.is_dir():
            available = sorted((p.name for p in model_folder.iterdir() if p.is_dir()), key=_version_key)
            raise _NotHere(f"Model {model_folder.name} has no version {version} here; deployed versions: {available}.")
    entries = sorted(version_folder.iterdir())
    if len(entries) != 1:
        raise WebserviceException(
            f"Expected exactly one file or folder in {version_folder}, found {len(entries)}: "
            f"{[e.name for e in entries]}. Register the model as a single file or a single folder."
        )
    return entries[0]


def _version_key(name: str) -> tuple[int, str]:
    return (int(name), "") if name.isdigit() else (1 << 62, name)
