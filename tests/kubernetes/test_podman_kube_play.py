"""The images and the rendered scoring pod, run for real with podman (no Kubernetes: ``podman kube play``).

The environment and app images of ``tests/fixtures/deploy_app`` are built with the podman builder through
``ImageBuilds`` (as the Kubernetes backend builds them), the scoring Deployment is rendered by ``manifests`` as it
is applied to a cluster, given a ``hostPort`` (test only), played, probed and scored; then the cache (a restarted
control plane builds nothing it has; a new model version builds only the app layer), pushes to a real registry
(Debian's ``docker-registry``) and the front end image are checked.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelport.backends.kubernetes import images
from modelport.backends.kubernetes.builders import ImageBuildFailed, registry_has
from modelport.backends.kubernetes.frontend_manifests import controller_command, envoy_command
from modelport.backends.kubernetes.image_builds import ImageBuilds
from modelport.backends.kubernetes.manifests import ScoringWorkload, runtime_env, scoring_objects, to_yaml
from modelport.reconcile.backend import Preparation, Prepared, ReplicaSetSpec
from modelport.sdk.deploy_config import DeploymentConfig
from modelport.spec.compute import KubernetesTarget
from modelport.store.artifacts import LocalArtifactStore, put_tree

from .podman import Podman, podman, registries_conf  # noqa: F401 - podman is a fixture

FIXTURES = Path(__file__).parent.parent / "fixtures"
BUILD_TIMEOUT_S = 600
START_TIMEOUT_S = 120

pytestmark = pytest.mark.timeout(1200)


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "blobs")


@pytest.fixture
def on_base_image(podman: Podman, monkeypatch: pytest.MonkeyPatch) -> Podman:  # noqa: F811
    """Environments build on the test's Debian base image."""
    monkeypatch.setenv(images.BASE_IMAGE_VARIABLE, podman.base_image)
    return podman


def replica_set(store: LocalArtifactStore, tmp_path: Path, environment: dict[str, Any], weights: str,
                model_version: int, deploy: dict[str, Any] | None = None) -> ReplicaSetSpec:
    """The deploy_app fixture (``score.py`` answering with its model file) with model ``echo-model`` holding
    ``weights``."""
    snapshot, _ = put_tree(store, [("score.py", FIXTURES / "deploy_app" / "score.py")])
    path = tmp_path / f"weights-{model_version}.txt"
    path.write_text(weights)
    model = {"name": "echo-model", "version": model_version, "artifact_sha256": store.put_file(path),
             "artifact_kind": "file", "artifact_name": "weights.txt"}
    return ReplicaSetSpec(service="echo", replica_set=f"default-{model_version}", environment=environment,
                          snapshot=snapshot, models=(model,), entry_script="score.py", replicas=1,
                          deploy=deploy or DeploymentConfig().to_settings())


def prepared(builds: ImageBuilds, spec: ReplicaSetSpec) -> Prepared:
    """``prepare`` until it is no longer PREPARING (bounded by BUILD_TIMEOUT_S)."""
    deadline = time.monotonic() + BUILD_TIMEOUT_S
    while time.monotonic() < deadline:
        answer = builds.prepare(spec)
        if answer.state is not Preparation.PREPARING:
            return answer
        time.sleep(0.2)
    raise AssertionError(f"{spec.key} still preparing after {BUILD_TIMEOUT_S} s: {builds.prepare(spec).reason}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_rendered_scoring_pod_serves_under_podman_kube_play(on_base_image: Podman, store: LocalArtifactStore,
                                                           tmp_path: Path) -> None:
    engine = on_base_image
    deploy = DeploymentConfig(period_seconds=3, timeout_seconds=2, failure_threshold=4).to_settings()
    spec = replica_set(store, tmp_path, {"name": "echo-env"}, "w-1", 1, deploy)
    builds = ImageBuilds(engine.builder(), store, tmp_path / "logs", tmp_path / "work")
    answer = prepared(builds, spec)
    assert answer.state is Preparation.READY, answer.reason
    image = builds.image(spec)
    assert image == images.app_image_for(spec, None)

    workload = ScoringWorkload(workspace="ws", target=KubernetesTarget(name="podman-host", server="https://x"),
                               endpoint="echo", version="default", replica_set=spec.replica_set, image=image,
                               replicas=1, deploy=spec.deploy, env=runtime_env(spec))
    deployment = next(item for item in scoring_objects(workload) if item["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    port = free_port()
    container["ports"][0]["hostPort"] = port  # test only: reach the pod from here
    played = tmp_path / "deployment.yaml"
    played.write_text(to_yaml([deployment]))
    engine.run("kube", "play", str(played))
    try:
        ready = container["readinessProbe"]["httpGet"]
        assert ready_within(f"http://127.0.0.1:{port}{ready['path']}", START_TIMEOUT_S), \
            engine.run("pod", "logs", f"{deployment['metadata']['name']}-pod-0", check=False).stdout[-3000:]
        answer = httpx.post(f"http://127.0.0.1:{port}/score", json={"echo": "hi"}, timeout=30)
        assert answer.status_code == 200
        assert answer.json()["weights"] == "w-1" and answer.json()["echo"] == "hi"

        name = scoring_container(engine, deployment)
        live = container["livenessProbe"]
        check = json.loads(engine.run("inspect", name, "--format", "{{json .Config.Healthcheck}}").stdout)
        assert f"localhost:{live['httpGet']['port']}{live['httpGet']['path']}" in " ".join(check["Test"])
        assert (check["Interval"], check["Timeout"], check["Retries"]) == (
            live["periodSeconds"] * 10**9, live["timeoutSeconds"] * 10**9, live["failureThreshold"])
        assert engine.run("healthcheck", "run", name, check=False).returncode == 0  # the liveness probe passes

        assert engine.run("exec", name, "id", "-u").stdout.strip() == "1000"
        assert engine.run("exec", name, "touch", f"{images.APP_ROOT}/written", check=False).returncode != 0
        assert engine.run("exec", name, "touch", "/tmp/written", check=False).returncode == 0
    finally:
        engine.run("kube", "down", str(played), check=False)


def test_cached_environment_image_and_new_model_version_build_only_the_app_layer(
        on_base_image: Podman, store: LocalArtifactStore, tmp_path: Path) -> None:
    engine = on_base_image
    environment = {"name": "cache-env", "python": {"condaDependencies": {"dependencies": [{"pip": ["click"]}]}}}
    first = replica_set(store, tmp_path, environment, "w-1", 1)
    second = replica_set(store, tmp_path, environment, "w-2", 2)
    environment_image = images.environment_image_name(environment, None)
    for image in (images.app_image_for(first, None), images.app_image_for(second, None), environment_image):
        engine.run("rmi", "--force", image, check=False)  # start cold: left over from an earlier run

    builds = ImageBuilds(engine.builder(), store, tmp_path / "logs", tmp_path / "work")
    assert prepared(builds, first).state is Preparation.READY
    log = builds.log_path(first).read_text()
    assert f"building image {environment_image}" in log and f"building image {builds.image(first)}" in log
    built_id = image_id(engine, environment_image)

    restarted = ImageBuilds(engine.builder(), store, tmp_path / "logs-2", tmp_path / "work")  # a new control plane
    assert prepared(restarted, second).state is Preparation.READY
    log = restarted.log_path(second).read_text()
    assert f"found {environment_image}: not built again" in log
    assert f"building image {restarted.image(second)}" in log
    assert restarted.image(second) != builds.image(first)
    assert image_id(engine, environment_image) == built_id
    environment_layers = layers(engine, environment_image)
    assert layers(engine, restarted.image(second))[:len(environment_layers)] == environment_layers

    assert prepared(restarted, first).state is Preparation.READY
    assert "building image" not in restarted.log_path(first).read_text()


@pytest.fixture
def registry(tmp_path: Path, on_base_image: Podman) -> Iterator[str]:
    """A plain-HTTP Docker registry (Debian's docker-registry) on a free port; its ``host:port``."""
    if shutil.which("docker-registry") is None or shutil.which("skopeo") is None:
        pytest.skip("docker-registry or skopeo not installed (apt-get install docker-registry skopeo; .ci/run does)")
    address = f"127.0.0.1:{free_port()}"
    config = tmp_path / "registry.yml"
    config.write_text(json.dumps({"version": 0.1, "storage": {"filesystem": {"rootdirectory": str(tmp_path / "reg")}},
                                  "http": {"addr": address}}))
    process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        assert ready_within(f"http://{address}/v2/", 30), "the registry did not start"
        registries_conf(on_base_image, [address])
        yield address
    finally:
        process.terminate()
        process.wait(10)
        registries_conf(on_base_image, [])


def test_images_are_pushed_to_the_registry_and_found_there(on_base_image: Podman, registry: str,
                                                           store: LocalArtifactStore, tmp_path: Path) -> None:
    spec = replica_set(store, tmp_path, {"name": "echo-env"}, "w-1", 1)
    prefix = f"{registry}/team"
    environment_image = images.environment_image_name(spec.environment, prefix)
    assert not registry_has(environment_image, insecure=True)

    builds = ImageBuilds(on_base_image.builder(), store, tmp_path / "logs", tmp_path / "work", registry=prefix)
    assert prepared(builds, spec).state is Preparation.READY
    app_image = builds.image(spec)
    assert app_image.startswith(f"{prefix}/{images.APP_REPOSITORY}:")
    assert registry_has(environment_image, insecure=True) and registry_has(app_image, insecure=True)
    assert on_base_image.builder().exists(app_image)  # skopeo, with podman's registry configuration
    assert not registry_has(f"{prefix}/{images.APP_REPOSITORY}:absent", insecure=True)

    on_base_image.run("rmi", "--force", app_image, environment_image)  # only the registry has them now
    again = ImageBuilds(on_base_image.builder(), store, tmp_path / "logs-2", tmp_path / "work", registry=prefix)
    assert prepared(again, spec).state is Preparation.READY
    log = again.log_path(spec).read_text()
    assert f"found {environment_image}" in log and f"found {app_image}" in log and "building image" not in log


def ready_within(url: str, timeout_s: float) -> bool:
    """Whether GET ``url`` answers 200 within ``timeout_s`` seconds (asked every 0.5 s)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


def scoring_container(engine: Podman, deployment: dict[str, Any]) -> str:
    """The name podman gave the played Deployment's scoring container."""
    names = engine.run("ps", "--format", "{{.Names}}").stdout.split()
    found = [name for name in names if name.startswith(deployment["metadata"]["name"]) and name.endswith("-scoring")]
    assert len(found) == 1, names
    return found[0]


def image_id(engine: Podman, image: str) -> str:
    return engine.run("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()


def layers(engine: Podman, image: str) -> list[str]:
    return json.loads(engine.run("image", "inspect", "--format", "{{json .RootFS.Layers}}", image).stdout)


def test_front_end_image_runs_the_commands_the_front_end_pod_gives(on_base_image: Podman, store: LocalArtifactStore,
                                                                  tmp_path: Path) -> None:
    builds = ImageBuilds(on_base_image.builder(), store, tmp_path / "logs", tmp_path / "work")
    image = builds.front_end_image()
    assert image.startswith(f"localhost/{images.FRONT_END_REPOSITORY}:")
    deadline = time.monotonic() + BUILD_TIMEOUT_S
    while builds.front_end_prepared().state is Preparation.PREPARING and time.monotonic() < deadline:
        time.sleep(0.2)
    assert builds.front_end_prepared().state is Preparation.READY, builds.front_end_prepared().reason
    target = KubernetesTarget(name="podman-host", server="https://x")
    controller = on_base_image.run("run", "--rm", "--network=none", image,
                                   *controller_command(target, tls=False)[:3], "--help")
    assert "--compute-target" in controller.stdout
    envoy = on_base_image.run("run", "--rm", "--network=none", image, envoy_command()[0], "--version")
    assert "1.40.0" in envoy.stdout
    assert on_base_image.run("run", "--rm", image, "id", "-u").stdout.strip() == "1000"


def test_a_base_image_that_cannot_be_pulled_is_named_with_the_setting_to_change(podman: Podman, tmp_path: Path):  # noqa: F811
    """An offline builder cannot pull the default base image: the failure names the base image and
    MODELPORT_BASE_IMAGE, not only the build log."""
    context = tmp_path / "context"
    context.mkdir()
    (context / "Containerfile").write_text("FROM 127.0.0.1:9/nowhere/python:3.11\nRUN true\n")
    with open(tmp_path / "build.log", "w") as log, pytest.raises(ImageBuildFailed) as failed:
        podman.builder().build(context, "localhost/modelport-test-unpullable:1", log)
    assert str(failed.value).startswith("the base image 127.0.0.1:9/nowhere/python:3.11 could not be pulled: make it "
                                        "pullable by the builder, or set MODELPORT_BASE_IMAGE to an image the builder "
                                        "has (then restart the control plane: modelport server stop)")
