"""The kaniko builder against the Kubernetes API EMULATOR (``emulator.py``): it asks the API the right things (a
ConfigMap with the context, a Job running kaniko, its pod's log, cleaning up) and reads the answers right. The
emulator runs no Job: each test plays the cluster's part (the Job's pod, its log, its outcome). The Job and
ConfigMap manifests are checked against the official schemas too.
"""

from __future__ import annotations

import base64
import io
import os
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from modelport.backends.kubernetes import objects
from modelport.backends.kubernetes.builders import BUILD, KANIKO_CONTEXT_LIMIT, ImageBuildFailed, KanikoBuilder
from modelport.backends.kubernetes.cluster import Cluster
from modelport.errors import InvalidInput

from .emulator import ApiEmulator

IMAGE = "reg.example:5000/team/modelport-app:0123456789abcdef0123456789abcdef"
KUBERNETES_VERSIONS = ("1.29", "1.33")
WAIT_S = 30


@pytest.fixture
def context(tmp_path: Path) -> Path:
    folder = tmp_path / "context"
    (folder / "app").mkdir(parents=True)
    (folder / "Containerfile").write_text("FROM reg.example:5000/team/modelport-environment:1\nCOPY app /app\n")
    (folder / "app" / "score.py").write_text("def init():\n    pass\n")
    return folder


@pytest.fixture
def builder(emulated_cluster: Cluster) -> KanikoBuilder:
    return KanikoBuilder(emulated_cluster, objects.target_labels("ws", "aks"), registry_secret="regcred",
                         poll_s=0.02, timeout_s=WAIT_S)


@pytest.fixture
def building(builder: KanikoBuilder, context: Path, tmp_path: Path) -> Iterator[Callable[[], dict[str, Any]]]:
    """Starts ``builder.build`` in a thread; ``finish()`` joins it and gives its outcome and log."""
    outcome: dict[str, Any] = {}
    log_path = tmp_path / "build.log"

    def run() -> None:
        with open(log_path, "w") as log:
            try:
                builder.build(context, IMAGE, log)
            except Exception as error:  # noqa: BLE001 - handed to the test
                outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()

    def finish() -> dict[str, Any]:
        thread.join(WAIT_S)
        assert not thread.is_alive(), "the build did not end"
        return {**outcome, "log": log_path.read_text()}

    yield finish
    thread.join(WAIT_S)


def wait_for_job(api: ApiEmulator) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        jobs = api.list_objects("Job")
        if jobs:
            return jobs[0]
        time.sleep(0.01)
    raise AssertionError("no build Job was created")


def finish_job(api: ApiEmulator, job: dict[str, Any], log: str, succeeded: bool) -> None:
    """The cluster's part: the Job's pod ran kaniko, wrote ``log`` and succeeded or failed."""
    name = job["metadata"]["name"]
    api.put({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{name}-x7k2p", "labels": {"job-name": name}},
             "spec": job["spec"]["template"]["spec"], "status": {"phase": "Succeeded" if succeeded else "Failed"}})
    api.pod_logs[(f"{name}-x7k2p", "kaniko", False)] = log
    api.put({**job, "status": {"succeeded": 1} if succeeded else {"failed": 1}})


def test_kaniko_builds_in_a_labelled_job_with_the_context_from_a_configmap_emulated(
        api_emulator: ApiEmulator, building: Callable[[], dict[str, Any]], context: Path) -> None:
    job = wait_for_job(api_emulator)
    name = job["metadata"]["name"]
    config_map = api_emulator.get_object("ConfigMap", name)
    assert config_map is not None
    for item in (job, config_map):
        assert item["metadata"]["labels"] == {**objects.target_labels("ws", "aks"), objects.COMPONENT: BUILD}
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(without_server_fields(item), version, strict=True)
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(config_map["binaryData"]["context.tar.gz"]))) as archive:
        assert archive.extractfile("Containerfile").read() == (context / "Containerfile").read_bytes()
        assert archive.extractfile("app/score.py").read() == (context / "app" / "score.py").read_bytes()

    pod = job["spec"]["template"]["spec"]
    kaniko = pod["containers"][0]
    assert f"--destination={IMAGE}" in kaniko["args"] and "--dockerfile=Containerfile" in kaniko["args"]
    assert "--context=tar:///workspace/context.tar.gz" in kaniko["args"]
    assert {"name": "context", "configMap": {"name": name}} in pod["volumes"]
    assert {"name": "registry", "mountPath": "/kaniko/.docker", "readOnly": True} in kaniko["volumeMounts"]
    assert pod["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] == 0  # a failed build is not retried

    finish_job(api_emulator, job, "INFO[0042] Pushed reg.example:5000/team/modelport-app@sha256:1234\n", True)
    outcome = building()
    assert "error" not in outcome, outcome.get("error")
    assert "Pushed reg.example:5000/team/modelport-app@sha256:1234" in outcome["log"]
    assert api_emulator.get_object("Job", name) is None and api_emulator.get_object("ConfigMap", name) is None


def test_a_failed_kaniko_job_fails_the_build_with_its_log_emulated(
        api_emulator: ApiEmulator, building: Callable[[], dict[str, Any]]) -> None:
    job = wait_for_job(api_emulator)
    finish_job(api_emulator, job, "INFO[0001] Retrieving image manifest\nerror building image: "
                                  "UNAUTHORIZED: authentication required\n", False)
    error = building()["error"]
    assert isinstance(error, ImageBuildFailed)
    assert IMAGE in str(error) and "UNAUTHORIZED: authentication required" in error.log_tail
    assert api_emulator.list_objects("Job") == [] and api_emulator.list_objects("ConfigMap") == []


def test_a_context_too_big_for_a_configmap_is_refused_before_anything_is_made_emulated(
        api_emulator: ApiEmulator, builder: KanikoBuilder, context: Path, tmp_path: Path) -> None:
    (context / "app" / "model.bin").write_bytes(os.urandom(KANIKO_CONTEXT_LIMIT + 1))
    with open(tmp_path / "build.log", "w") as log, pytest.raises(ImageBuildFailed, match="podman or docker"):
        builder.build(context, IMAGE, log)
    assert api_emulator.list_objects("Job") == [] and api_emulator.list_objects("ConfigMap") == []


def test_kaniko_needs_an_image_with_a_registry_emulated(builder: KanikoBuilder, context: Path, tmp_path: Path) -> None:
    with open(tmp_path / "build.log", "w") as log, pytest.raises(InvalidInput, match="image_registry"):
        builder.build(context, "localhost/modelport-app:1", log)


def without_server_fields(item: dict[str, Any]) -> dict[str, Any]:
    """A stored object as a manifest: without status and what the API server fills in."""
    metadata = {key: value for key, value in item["metadata"].items()
                if key in ("name", "namespace", "labels", "annotations")}
    return {key: value for key, value in {**item, "metadata": metadata}.items() if key != "status"}
