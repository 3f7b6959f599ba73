"""The world of ``test_deploy_flow_emulated.py`` and ``test_endpoints_flow_emulated.py``: a REAL control plane
(``create_app`` served by uvicorn in a thread of the test process), a REAL front-end controller and a REAL Envoy
(local processes, as ``test_controller_emulated.py`` runs them), against the EMULATED Kubernetes API
(``emulator.py``), whose pods an EMULATED kubelet (``kubelet.py``) runs as real runtime processes from an EMULATED
image store (``local_images.py``).

The seams, and why they are honest:

- the control plane runs in this process so that ``modelport.api.cluster_targets.builder_for`` can be replaced by
  the ``LocalImages`` store the kubelet runs from (the real builder would be podman); the workspace's
  ``config.json`` names it by ``server_url`` (the setting a remote control plane is used through), so the SDK talks
  to it over real HTTP exactly as to any other control plane;
- the front end image is PRE-SEEDED into the store under its real name (``seed_front_end_image`` says why), so
  ``ImageBuilds`` finds it; the front end's Deployment is applied to the emulator, but its pod is not what routes:
  a pod of the emulated kubelet has no in-cluster API access (no service account token, no
  ``KUBERNETES_SERVICE_HOST``) and crash-loops. The controller and Envoy run instead as local processes with a
  kubeconfig, and the tests score at that Envoy's port; the ``scoring_uri`` the control plane gives (the front end
  Service's ClusterIP) is not reachable from here.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from modelport import ComputeTarget, Environment, InferenceConfig, KubernetesCompute, Model, Workspace
from modelport.api.app import create_app
from modelport.backends.kubernetes.images import front_end_image_name
from modelport.frontend.envoy_binary import envoy_path
from modelport.runtime.supervisor import bind
from tests.conftest import register_weights
from tests.traffic import wait_until

from .emulator import ApiEmulator
from .kubelet import EmulatedKubelet
from .local_images import LocalImages
from .test_controller_emulated import PodFrontEnd

APP = Path(__file__).resolve().parents[1] / "fixtures" / "deploy_app"

TARGET = "myk8s"
NAMESPACE = "default"


class ControlPlane:
    """``create_app(workspace)`` served by uvicorn on 127.0.0.1 in a daemon thread; ``url`` once started."""

    def __init__(self, workspace: Workspace):
        self.app = create_app(workspace._dir)
        self.sock = bind("127.0.0.1", 0)
        host, port = self.sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_config=None, access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="control-plane", daemon=True)

    def start(self) -> ControlPlane:
        self.thread.start()
        assert wait_until(lambda: self.server.started or not self.thread.is_alive(), timeout=60)
        assert self.server.started, "the control plane did not start"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(60)


class FlowFrontEnd(PodFrontEnd):
    """``PodFrontEnd`` for this flow's compute target (``TARGET``), its controller passing every 0.2 s."""

    def controller_args(self, *extra: str) -> list[str]:
        args = super().controller_args(*extra)
        args[args.index("--compute-target") + 1] = TARGET
        return args


@dataclass
class Flow:
    """What the tests use: the workspace (its SDK talks to ``control_plane``), the emulator, its kubelet and
    image store, the attached target and the local front end (score at ``front.http``)."""

    ws: Workspace
    api: ApiEmulator
    kubelet: EmulatedKubelet
    images: LocalImages
    control_plane: ControlPlane
    target: KubernetesCompute
    front: FlowFrontEnd


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Flow]:
    """The attached emulated cluster ``myk8s`` of a new workspace, its front end serving; everything stopped after
    (services deleted first, so the kubelet has their pods' processes to stop). A test module's
    ``FLOW_CONTROLLER_ARGS`` (e.g. ``("--scale-down-delay", "3")``) are added to the controller's arguments."""
    root = tmp_path_factory.mktemp("flow")
    with pytest.MonkeyPatch.context() as patch, ApiEmulator() as api:
        images = LocalImages(root / "images")
        patch.setattr("modelport.api.cluster_targets.builder_for", lambda *args, **kwargs: images)
        seed_front_end_image(images, root / "front-end-context")
        kubelet = EmulatedKubelet(api, images, root / "kubelet").start()
        ws = Workspace.create("flowws", root / "ws")
        control_plane = ControlPlane(ws)
        config = json.loads(ws._dir.config_path.read_text())
        ws._dir.config_path.write_text(json.dumps({**config, "server_url": control_plane.url}))
        control_plane.start()
        front = FlowFrontEnd(_folder(root / "front"), api.kubeconfig())
        flowing: Flow | None = None
        try:
            kubeconfig = root / "kubeconfig"
            kubeconfig.write_text(api.kubeconfig())
            target = ComputeTarget.attach(ws, TARGET, KubernetesCompute.attach_configuration(
                kubeconfig=str(kubeconfig), namespace=NAMESPACE, ingress_service_type="ClusterIP"))
            front.start_controller("--interval", "0.2", *getattr(request.module, "FLOW_CONTROLLER_ARGS", ()))
            front.start_envoy()
            flowing = Flow(ws, api, kubelet, images, control_plane, target, front)
            yield flowing
        finally:
            try:
                from modelport import Webservice

                for service in Webservice.list(flowing.ws if flowing else ws):  # a test may have reconnected it
                    service.delete()
            finally:
                (flowing.control_plane if flowing else control_plane).stop()  # a test may have restarted it
                front.stop()
                kubelet.stop()
    assert not kubelet.errors, kubelet.errors


def seed_front_end_image(images: LocalImages, context: Path) -> str:
    """Put a stand-in for the front end image into the store under its real name, so ``ImageBuilds`` finds it and
    does not build it: the real one installs all of modelport's requirements (about 440 MB) on every run, and is
    built and run for real by ``test_podman_kube_play.py``. The stand-in has ``envoy`` and ``python`` on its PATH
    so that the kubelet can start the front end pod's containers; they exit (no in-cluster credentials, no
    bootstrap volume) and the pod crash-loops, which nothing here depends on: the local ``FlowFrontEnd`` routes."""
    name = front_end_image_name(None)
    bin_folder = context / "bin"
    bin_folder.mkdir(parents=True)
    (bin_folder / "envoy").symlink_to(envoy_path())
    (bin_folder / "python").symlink_to(sys.executable)
    (context / "Containerfile").write_text(
        "FROM python:3.11-slim\n"
        "COPY bin /opt/modelport/bin\n"
        "ENV PATH=/opt/modelport/bin:/usr/local/bin:/usr/bin:/bin HOME=/tmp PYTHONUNBUFFERED=1\n"
        "USER 1000\n")
    with open(context / "build.log", "w") as log:
        images.build(context, name, log)
    return name


def _folder(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


@pytest.fixture(scope="module")
def model(flow: Flow, tmp_path_factory: pytest.TempPathFactory) -> Model:
    """Model ``echo-model`` (weights ``w-1``) registered in the flow's workspace."""
    return register_weights(flow.ws, tmp_path_factory.mktemp("model"), "w-1")


def inference_config(**variables: str) -> InferenceConfig:
    """The echo app (``tests/fixtures/deploy_app``) with environment ``flow-env`` and ``variables`` in it."""
    env = Environment("flow-env")
    env.environment_variables = dict(variables)
    return InferenceConfig("score.py", source_directory=APP, environment=env)
