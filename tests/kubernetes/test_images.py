"""Image names, build contexts and background builds, without a container engine (see test_podman_kube_play.py
for images built and run).

Environment contexts are made for real: uv installs the packages for the image's platform and python (from
PyPI or uv's cache), so these tests say what goes into an image, not only what the Containerfile asks for.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelport.backends.kubernetes import images
from modelport.backends.kubernetes.builders import CliBuilder, ImageBuildFailed, KanikoBuilder, builder_for
from modelport.backends.kubernetes.image_builds import ImageBuilds
from modelport.errors import InvalidInput
from modelport.reconcile.backend import Preparation, Prepared, ReplicaSetSpec
from modelport.spec.compute import KubernetesTarget
from modelport.store.artifacts import LocalArtifactStore, put_tree

FIXTURES = Path(__file__).parent.parent / "fixtures"
SKLEARN = {"name": "sk", "python": {"condaDependencies": {"dependencies": ["python=3.11", {"pip": ["joblib"]}]}}}


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "blobs")


@pytest.fixture
def private_umask() -> Iterator[None]:
    """The control plane's umask (077): files it writes are its own only, unless made readable on purpose."""
    previous = os.umask(0o077)
    yield
    os.umask(previous)


def model(store: LocalArtifactStore, folder: Path, weights: str, version: int, name: str = "echo-model") -> dict:
    path = folder / f"{name}-{version}.txt"
    path.write_text(weights)
    return {"name": name, "version": version, "artifact_sha256": store.put_file(path), "artifact_kind": "file",
            "artifact_name": "weights.txt"}


def spec_of(store: LocalArtifactStore, models: tuple[dict, ...], environment: dict[str, Any] | None = None,
            source_directory: str | None = None, replica_set: str = "default-1") -> ReplicaSetSpec:
    prefix = f"{source_directory}/" if source_directory else ""
    snapshot, _ = put_tree(store, [(f"{prefix}score.py", FIXTURES / "deploy_app" / "score.py")]) \
        if not source_directory else put_tree(store, [("score.py", FIXTURES / "deploy_app" / "score.py")])
    return ReplicaSetSpec(service="echo", replica_set=replica_set, environment=environment or {"name": "echo-env"},
                          snapshot=snapshot, models=models, entry_script="score.py", replicas=1,
                          source_directory=source_directory)


# --- names -----------------------------------------------------------------------------------------------------


def test_a_new_model_version_changes_only_the_app_image(store: LocalArtifactStore, tmp_path: Path) -> None:
    first = spec_of(store, (model(store, tmp_path, "w-1", 1),))
    second = spec_of(store, (model(store, tmp_path, "w-2", 2),))
    environment = images.environment_image_name(first.environment, None)
    assert environment == images.environment_image_name(second.environment, None)
    assert environment.startswith(f"localhost/{images.ENVIRONMENT_REPOSITORY}:")
    assert images.app_image_for(first, None) != images.app_image_for(second, None)
    assert images.app_image_for(first, None) == images.app_image_for(spec_of(store, first.models), None)  # stable


def test_what_the_environment_installs_and_runs_on_names_its_image(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = images.environment_image_name({"name": "a"}, None)
    assert images.environment_image_name({"name": "b", "version": "7"}, None) == plain  # names are not content
    assert images.environment_image_name(SKLEARN, None) != plain
    monkeypatch.setenv(images.BASE_IMAGE_VARIABLE, "registry.example/debian-python:3.11")
    assert images.environment_image_name({"name": "a"}, None) != plain
    assert images.base_image({"name": "a"}) == "registry.example/debian-python:3.11"


def test_registry_prefixes_both_images(store: LocalArtifactStore, tmp_path: Path) -> None:
    spec = spec_of(store, (model(store, tmp_path, "w-1", 1),))
    assert images.environment_image_name(spec.environment, "reg.example:5000/team/").startswith(
        f"reg.example:5000/team/{images.ENVIRONMENT_REPOSITORY}:")
    app = images.app_image_for(spec, "reg.example:5000/team")
    assert app.startswith(f"reg.example:5000/team/{images.APP_REPOSITORY}:")


def test_entry_script_and_source_folder_name_the_app_image(store: LocalArtifactStore, tmp_path: Path) -> None:
    models = (model(store, tmp_path, "w-1", 1),)
    spec = spec_of(store, models)
    nested = spec_of(store, models, source_directory="src")
    assert images.app_image_for(spec, None) != images.app_image_for(nested, None)
    assert images.app_image_name(spec.environment, spec.snapshot, models, None, "score.py") != \
        images.app_image_name(spec.environment, spec.snapshot, models, None, "other.py")


def test_an_environment_that_brings_its_own_image_is_that_image() -> None:
    own = {"name": "mine", "docker": {"baseImage": "registry.example/team/scoring:3"},
           "python": {"userManagedDependencies": True, "interpreterPath": "/opt/conda/bin/python"}}
    assert images.brings_own_image(own)
    assert images.environment_image_name(own, "reg.example") == "registry.example/team/scoring:3"
    based = {"name": "on-base", "docker": {"baseImage": "registry.example/team/base:1"}}
    assert not images.brings_own_image(based)  # packages are installed on it: an environment image of its own
    assert images.base_image(based) == "registry.example/team/base:1"


# --- contexts --------------------------------------------------------------------------------------------------


def test_environment_context_carries_packages_installed_for_the_images_python(tmp_path: Path) -> None:
    environment = {"name": "py312", "python": {"condaDependencies": {"dependencies": ["python=3.12",
                                                                                      {"pip": ["joblib"]}]}}}
    folder = tmp_path / "context"
    folder.mkdir()
    with open(tmp_path / "build.log", "w") as log:
        images.environment_context(environment, folder, log)
    containerfile = (folder / images.CONTAINERFILE).read_text().splitlines()
    assert containerfile[0] == "FROM docker.io/library/python:3.12-slim-bookworm"
    site = f"{images.ENVIRONMENT_ROOT}/lib/python3.12/site-packages"
    assert f"COPY site-packages {site}" in containerfile
    assert f"ENV PYTHONUSERBASE={images.ENVIRONMENT_ROOT}" in containerfile
    assert not any(line.startswith("RUN") and "pip" in line for line in containerfile)  # nothing fetched in the build
    installed = {path.name.split("-")[0].lower() for path in (folder / "site-packages").glob("*.dist-info")}
    assert {"joblib", "uvicorn", "orjson", "werkzeug", "click", "inference_schema"} <= installed
    wheel = next((folder / "site-packages").glob("orjson-*.dist-info")) / "WHEEL"
    assert "Tag: cp312-cp312-manylinux" in wheel.read_text()  # the image's python, not this machine's 3.11


def test_a_builder_in_the_cluster_gets_a_small_context_that_installs_with_pip(tmp_path: Path) -> None:
    folder = tmp_path / "context"
    folder.mkdir()
    with open(tmp_path / "build.log", "w") as log:
        images.environment_context(SKLEARN, folder, log, install_on_host=False)
    assert not (folder / "site-packages").exists()
    requirements = (folder / "requirements.txt").read_text().splitlines()
    assert requirements[0] == "joblib" and any(line.startswith("uvicorn") for line in requirements)
    assert any(line.startswith("RUN python3 -m pip install") and "-r /opt/modelport/requirements.txt" in line
               for line in (folder / images.CONTAINERFILE).read_text().splitlines())


def test_an_unreachable_package_source_is_named(tmp_path: Path) -> None:
    environment = {"name": "offline", "python": {"condaDependencies": {"dependencies": [
        {"pip": ["--index-url http://127.0.0.1:9/simple", "joblib"]}]}}}
    folder = tmp_path / "context"
    folder.mkdir()
    with open(tmp_path / "build.log", "w") as log, pytest.raises(ImageBuildFailed) as failed:
        images.environment_context(environment, folder, log)
    assert "package source --index-url http://127.0.0.1:9/simple could not be reached" in str(failed.value)
    assert "offline environment" in str(failed.value)


def test_app_context_lays_out_the_app_as_azure_ml_did(store: LocalArtifactStore, tmp_path: Path,
                                                      private_umask: None) -> None:
    models = (model(store, tmp_path, "w-1", 1), model(store, tmp_path, "other", 3, name="second"))
    spec = spec_of(store, models, source_directory="src")
    folder = tmp_path / "context"
    folder.mkdir()
    images.app_context(spec, "localhost/modelport-environment:abc", store, folder)
    assert (folder / "app" / "src" / "score.py").read_bytes() == (FIXTURES / "deploy_app" / "score.py").read_bytes()
    assert (folder / "app" / "azureml-models" / "echo-model" / "1" / "weights.txt").read_text() == "w-1"
    assert (folder / "app" / "azureml-models" / "second" / "3" / "weights.txt").read_text() == "other"
    assert (folder / "lib" / "modelport" / "runtime" / "__main__.py").is_file()
    assert not list((folder / "lib").rglob("__pycache__"))
    containerfile = (folder / images.CONTAINERFILE).read_text()
    assert containerfile.startswith("FROM localhost/modelport-environment:abc\n")
    for setting in ('AML_APP_ROOT="/var/azureml-app"', 'AZUREML_ENTRY_SCRIPT="src/score.py"',
                    'AZUREML_SOURCE_DIRECTORY="src"', 'AZUREML_MODEL_DIR="/var/azureml-app/azureml-models"'):
        assert setting in containerfile
    assert "USER 1000:1000" in containerfile
    assert '"--port", "5001"' in containerfile
    # readable by the image's user (1000) although this process writes with umask 077
    assert all(path.stat().st_mode & 0o005 == 0o005 for path in folder.rglob("*") if path.is_dir())
    assert all(path.stat().st_mode & 0o004 for path in folder.rglob("*") if path.is_file())


def test_one_model_is_its_own_model_dir(store: LocalArtifactStore, tmp_path: Path) -> None:
    folder = tmp_path / "context"
    folder.mkdir()
    images.app_context(spec_of(store, (model(store, tmp_path, "w", 4),)), "env:1", store, folder)
    assert 'AZUREML_MODEL_DIR="/var/azureml-app/azureml-models/echo-model/4"' in (folder / "Containerfile").read_text()


def test_an_own_image_runs_the_runtime_with_its_interpreter(store: LocalArtifactStore, tmp_path: Path) -> None:
    own = {"name": "mine", "docker": {"baseImage": "registry.example/team/scoring:3"},
           "python": {"userManagedDependencies": True, "interpreterPath": "/opt/conda/bin/python"}}
    folder = tmp_path / "context"
    folder.mkdir()
    images.app_context(spec_of(store, (), environment=own), images.environment_image_name(own, None), store, folder)
    containerfile = (folder / "Containerfile").read_text()
    assert containerfile.startswith("FROM registry.example/team/scoring:3\n")
    assert 'CMD ["/opt/conda/bin/python", "-m", "modelport.runtime"' in containerfile
    assert 'RUN ["/opt/conda/bin/python", "-c", "import modelport.runtime.app"]' in containerfile  # checked in build
    with open(os.devnull, "w") as log, pytest.raises(ValueError):
        images.environment_context(own, folder, log)


def test_an_unsafe_snapshot_writes_nothing_outside_the_context(store: LocalArtifactStore, tmp_path: Path) -> None:
    entry = b'{"path": "../../escaped.py", "sha256": "' + b"0" * 64 + b'", "size": 1, "mode": 420}'
    snapshot = store.put_bytes(b"[" + entry + b"]")
    spec = ReplicaSetSpec(service="echo", replica_set="default-1", environment={"name": "e"}, snapshot=snapshot,
                          models=(), entry_script="score.py", replicas=1)
    folder = tmp_path / "deep" / "context"
    folder.mkdir(parents=True)
    with pytest.raises(InvalidInput):
        images.app_context(spec, "env:1", store, folder)
    assert not (tmp_path / "escaped.py").exists()


# --- builders and background builds ----------------------------------------------------------------------------


def test_builder_for_follows_the_targets_image_builder() -> None:
    podman = builder_for(KubernetesTarget(name="aks", server="https://x"))
    docker = builder_for(KubernetesTarget(name="aks", server="https://x", image_builder="docker"))
    assert isinstance(podman, CliBuilder) and podman.executable == "podman" and podman.installs_on_host
    assert isinstance(docker, CliBuilder) and docker.executable == "docker"
    kaniko = KubernetesTarget(name="aks", server="https://x", image_builder="kaniko", image_registry="reg.example")
    with pytest.raises(InvalidInput, match="runs in the cluster"):
        builder_for(kaniko)
    with pytest.raises(InvalidInput, match="set its image_registry"):
        builder_for(KubernetesTarget(name="aks", server="https://x", image_builder="kaniko"), cluster=object())
    assert isinstance(builder_for(kaniko, cluster=object(), workspace="ws"), KanikoBuilder)


def test_a_missing_engine_fails_the_build_with_the_fix(tmp_path: Path) -> None:
    with open(tmp_path / "build.log", "w") as log, pytest.raises(ImageBuildFailed, match="could not be started"):
        CliBuilder(str(tmp_path / "no-such-podman")).build(tmp_path, "localhost/x:1", log)


def prepared(builds: ImageBuilds, spec: ReplicaSetSpec, timeout_s: float = 300,
             steps: list[str] | None = None) -> Prepared:
    """``prepare`` until not PREPARING (bounded); the PREPARING reasons seen are appended to ``steps``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = builds.prepare(spec)
        if answer.state is not Preparation.PREPARING:
            return answer
        (steps if steps is not None else []).append(answer.reason)
        time.sleep(0.05)
    raise AssertionError(f"still preparing after {timeout_s} s")


def test_a_failed_build_says_why_and_is_not_retried(store: LocalArtifactStore, tmp_path: Path) -> None:
    environment = {"name": "broken", "python": {"condaDependencies": {"dependencies": [
        {"pip": ["--no-index", "no-such-package-anywhere==1.0"]}]}}}
    spec = spec_of(store, (), environment=environment)
    builds = ImageBuilds(CliBuilder(str(tmp_path / "no-engine")), store, tmp_path / "logs", tmp_path / "work")
    steps: list[str] = []
    answer = prepared(builds, spec, steps=steps)
    assert steps and all(" image localhost/modelport-" in step for step in steps)  # what is being made, meanwhile
    assert answer.state is Preparation.FAILED
    assert "installing the environment's packages failed" in answer.reason
    assert "no-such-package-anywhere" in answer.reason  # uv's own words, from the log's last lines
    assert str(builds.log_path(spec)) in answer.reason
    assert builds.prepare(spec) == answer
    assert builds.log_path(spec).read_text().count("===== ") == 1  # one attempt, however often it is asked
    assert list((tmp_path / "work").iterdir()) == []  # the context was removed
