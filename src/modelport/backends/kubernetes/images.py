"""Image names of a replica set on Kubernetes: the environment image and the thin app image on top of it.

Called by the Kubernetes backend (what its pods run), ``manifests``' render command (the same names without a
build) and ``image_builds`` (what to build). As Azure ML did, the environment's image is named by its content,
so every version of every endpoint that uses the same environment shares one image, and a new model version
makes only a new app image:

- environment image ``<registry>/modelport-environment:<key>``: a base image plus the environment's pip packages
  and the runtime's requirements. ``key`` hashes the environment's ``content_hash`` (what it installs), the base
  image, the platform and the runtime's requirement lines. An environment that brings its own image (a
  ``docker.baseImage`` with ``userManagedDependencies``, what Azure's ``Environment.from_docker_image`` makes) is
  not built: that image is its environment image;
- app image ``<registry>/modelport-app:<key>``: the app root (source snapshot and models), the modelport package
  and the runtime's settings on the environment image. ``key`` hashes the environment image's name, the snapshot
  and model artifact sha256s (with the models' names and versions, which are folders of the layout), the entry
  script, the source folder and the modelport package's own files.

``registry`` None gives ``localhost/...`` names: images that stay in the builder's local store (a single-node
cluster sharing the builder's image store, or ``podman kube play``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ...environments.build import PACKAGE_DIR, runtime_requirements
from ...environments.spec import EnvironmentSpec

ENVIRONMENT_REPOSITORY = "modelport-environment"
APP_REPOSITORY = "modelport-app"
LOCAL_REGISTRY = "localhost"
BASE_IMAGE_VARIABLE = "MODELPORT_BASE_IMAGE"
DEFAULT_PYTHON = "3.11"  # the python of the default base image when the environment pins none
RECIPE = "1"  # bumped when the images' layout changes, so images made by an older modelport are not reused
TAG_DIGITS = 32


def default_base_image(python: str) -> str:
    """The base image an environment builds on unless ``MODELPORT_BASE_IMAGE`` names another: Debian bookworm
    with CPython ``python`` ("3.11"), the official slim image."""
    return f"docker.io/library/python:{python}-slim-bookworm"


def python_version(environment: dict[str, Any]) -> str:
    """The python the image runs: the environment's conda ``python=X.Y`` pin, else ``DEFAULT_PYTHON``."""
    return EnvironmentSpec.from_dict(environment).python_version() or DEFAULT_PYTHON


def base_image(environment: dict[str, Any]) -> str:
    """The image the environment image is built on: the environment's ``docker.baseImage``, else
    ``MODELPORT_BASE_IMAGE``, else ``default_base_image`` for the environment's python."""
    spec = EnvironmentSpec.from_dict(environment)
    chosen = spec.docker.base_image or os.environ.get(BASE_IMAGE_VARIABLE)
    return chosen or default_base_image(python_version(environment))


def brings_own_image(environment: dict[str, Any]) -> bool:
    """True when the environment is its own image (``docker.baseImage`` with ``userManagedDependencies``): nothing
    is installed, the app layer goes straight on it."""
    spec = EnvironmentSpec.from_dict(environment)
    return bool(spec.docker.base_image) and spec.python.user_managed_dependencies


def environment_image_name(environment: dict[str, Any], registry: str | None) -> str:
    """The environment image of ``environment`` (Azure ML's Environment dict), under ``registry``
    (``host[:port]/path``; None: ``localhost``). The user's own image, unchanged, when ``brings_own_image``."""
    spec = EnvironmentSpec.from_dict(environment)
    if brings_own_image(environment):
        return str(spec.docker.base_image)
    content = {"recipe": RECIPE, "environment": spec.content_hash(), "base": base_image(environment),
               "python": python_version(environment), "platform": spec.docker.platform.architecture,
               "runtime": sorted(runtime_requirements())}
    return f"{_prefix(registry)}/{ENVIRONMENT_REPOSITORY}:{_digest(content)}"


def app_image_name(environment: dict[str, Any], snapshot: str, models: tuple[dict[str, Any], ...],
                   registry: str | None, entry_script: str | None = None, source_directory: str | None = None) -> str:
    """The app image of a replica set: ``snapshot`` (the source snapshot's sha256), ``models`` (dicts with name,
    version, artifact_sha256, artifact_kind, artifact_name, as ``ReplicaSetSpec.models``), ``entry_script`` (relative
    to the source folder) and ``source_directory`` (the source folder's name in the app root, None: the root) on
    the environment image of ``environment``, under ``registry`` (None: ``localhost``)."""
    content = {"recipe": RECIPE, "environment": environment_image_name(environment, registry), "snapshot": snapshot,
               "models": sorted([str(m["name"]), str(m["version"]), str(m["artifact_name"]), str(m["artifact_kind"]),
                                 str(m["artifact_sha256"])] for m in models),
               "entry_script": entry_script, "source_directory": source_directory, "modelport": package_digest()}
    return f"{_prefix(registry)}/{APP_REPOSITORY}:{_digest(content)}"


@functools.lru_cache(maxsize=1)
def package_digest() -> str:
    """sha256 over the modelport package's files (paths and contents, without ``__pycache__``): what the app layer
    copies, so a modelport upgrade makes new app images (but reuses environment images)."""
    digest = hashlib.sha256()
    for path in package_files():
        digest.update(str(path.relative_to(PACKAGE_DIR)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def package_files() -> list[Path]:
    """The modelport package's files as the app layer copies them (sorted; no ``__pycache__`` or ``.pyc``)."""
    return sorted(path for path in PACKAGE_DIR.rglob("*")
                  if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc")


def _prefix(registry: str | None) -> str:
    return registry.strip().rstrip("/") if registry and registry.strip() else LOCAL_REGISTRY


def _digest(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:TAG_DIGITS]
