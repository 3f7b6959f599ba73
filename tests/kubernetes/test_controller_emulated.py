"""The in-cluster front-end controller for real, against the API emulator: the pod's two containers as local
processes (``python -m modelport.frontend.controller`` with ``--kubeconfig``, and Envoy started from the bootstrap
and command the front end's Deployment gives it), routing REAL replica processes that EndpointSlices in the
emulator point at, scored over real HTTP and HTTPS.

What the emulator cannot say: that a real API server, EndpointSlice controller or kubelet behave as emulated.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import re
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from modelport.backends.kubernetes.frontend_manifests import envoy_command
from modelport.backends.kubernetes.objects import (
    APPLIED_CONFIGMAP,
    COMPONENT,
    ROUTES_CONFIGMAP,
    SCORING,
    target_labels,
)
from modelport.backends.kubernetes.rbac import CONTROLLER_RULES, verbs
from modelport.frontend.addresses import free_port
from modelport.frontend.changes import to_json, write_atomic
from modelport.frontend.config import VERSION_HEADER, bootstrap
from modelport.frontend.envoy_binary import envoy_path
from modelport.frontend.routes import ServiceRoute, VersionRoute
from modelport.frontend.routing_state import auth_secret, read_applied, routes_configmap
from modelport.reconcile.autoscale import AutoscaleSettings
from tests.kubernetes.emulator import ApiEmulator
from tests.traffic import wait_until

WORKSPACE = "ws1"
TARGET = "aks1"
NAMESPACE = "default"
KEYS = ["primary-key-0001", "secondary-key-0002"]
SERVICE = "scorer"

# Says which version answered. A request {"gate": name} waits in run() until the test opens that gate, after
# leaving a file that says it arrived: how long a request stays in flight is decided by the test, not by a sleep.
GATED_SCRIPT = """
import json, os, time, uuid
from pathlib import Path

GATES = Path(os.environ["GATE_DIR"])


def init():
    pass


def run(data):
    body = json.loads(data) if data else {}
    gate = body.get("gate") if isinstance(body, dict) else None
    if gate:
        (GATES / f"entered-{gate}-{uuid.uuid4().hex}").touch()
        deadline = time.monotonic() + 60
        while not (GATES / f"open-{gate}").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    return {"version": os.environ["VERSION"]}
"""


class PodFrontEnd:
    """The front end pod's containers as local processes: the controller (``start_controller`` in the background
    as in the pod, or ``controller_once``) and Envoy (``start_envoy``, once the controller wrote its first files,
    as the pod's postStart hook orders them), sharing ``folder``. ``http`` and ``https`` are Envoy's listeners."""

    def __init__(self, folder: Path, kubeconfig: str, tls_dir: Path | None = None):
        self.folder = folder
        self.xds_dir = folder / "xds"
        self.admin_socket = folder / "admin.sock"
        self.kubeconfig = folder / "kubeconfig"
        fd = os.open(self.kubeconfig, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # a credential: 0600
        with os.fdopen(fd, "w") as handle:
            handle.write(kubeconfig)
        self.port, self.tls_port = free_port(), free_port()
        self.tls_dir = tls_dir
        self.controller_log = folder / "controller.log"
        self.envoy: subprocess.Popen[bytes] | None = None
        self.controller: subprocess.Popen[bytes] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.tls_port}"

    def controller_args(self, *extra: str) -> list[str]:
        args = [sys.executable, "-m", "modelport.frontend.controller", "--namespace", NAMESPACE,
                "--compute-target", TARGET, "--xds-dir", str(self.xds_dir), "--admin-socket", str(self.admin_socket),
                "--port", str(self.port), "--listen-address", "127.0.0.1", "--kubeconfig", str(self.kubeconfig),
                *extra]
        if self.tls_dir is not None:
            args += ["--tls-dir", str(self.tls_dir), "--tls-port", str(self.tls_port)]
        return args

    def start_controller(self, *extra: str) -> None:
        with open(self.controller_log, "ab") as log:
            self.controller = subprocess.Popen(self.controller_args(*extra), stdout=log, stderr=subprocess.STDOUT)

    def controller_once(self) -> subprocess.CompletedProcess[str]:
        """One controller pass (``--once``), as a process; Envoy must run (or start meanwhile)."""
        return subprocess.run(self.controller_args("--once"), capture_output=True, text=True, timeout=90)

    def start_envoy(self) -> None:
        """Envoy as the front end's Deployment runs it (its command, this machine's binary), once the controller
        wrote the files it reads at start; returns when it answers on its admin socket."""
        assert wait_until(lambda: (self.xds_dir / "lds.json").exists(), timeout=60), self.log()
        bootstrap_path = self.folder / "bootstrap.json"
        write_atomic(bootstrap_path, to_json(bootstrap(self.xds_dir, self.admin_socket)))
        command = envoy_command()
        command[0] = str(envoy_path())
        command[command.index("-c") + 1] = str(bootstrap_path)
        with open(self.folder / "envoy.log", "ab") as log:
            self.envoy = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        assert wait_until(lambda: self.admin_socket.exists(), timeout=30), (self.folder / "envoy.log").read_text()

    def log(self) -> str:
        return self.controller_log.read_text(errors="replace") if self.controller_log.exists() else ""

    def stop(self) -> None:
        for process in (self.controller, self.envoy):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(10)


def endpoint_slice(service: str, addresses: list[tuple[str, int]], ready: bool = True) -> dict:
    """The EndpointSlice the EndpointSlice controller keeps for a scoring Service: its labels (the Service's, and
    ``kubernetes.io/service-name``), one port, an endpoint per replica."""
    labels = {**target_labels(WORKSPACE, TARGET), COMPONENT: SCORING, "kubernetes.io/service-name": service,
              "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    ports = sorted({port for _, port in addresses})
    assert len(ports) <= 1, "a Service's slice has one port"
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": f"{service}-abcde", "namespace": NAMESPACE, "labels": labels},
            "ports": [{"name": "http", "port": ports[0] if ports else 5001, "protocol": "TCP"}],
            "endpoints": [{"addresses": [host], "conditions": {"ready": ready}} for host, _ in addresses]}


def publish(api: ApiEmulator, revision: int, services: list[ServiceRoute],
            autoscale: dict[tuple[str, str], AutoscaleSettings] | None = None) -> None:
    """What the control plane writes: the auth Secret, then the routes ConfigMap of ``revision``."""
    labels = target_labels(WORKSPACE, TARGET)
    deployments = {(s.name, v.name): f"{s.name}-{v.replica_set}" for s in services for v in s.versions}
    api.put(auth_secret(revision, services, None, NAMESPACE, labels))
    api.put(routes_configmap(revision, services, deployments, dict.fromkeys(deployments) | (autoscale or {}),
                             NAMESPACE, labels))


def applied(api: ApiEmulator) -> dict:
    return read_applied(api.get_object("ConfigMap", APPLIED_CONFIGMAP))


def scorer(blue: float, green: float, keys: list[str] | None = None) -> ServiceRoute:
    return ServiceRoute(SERVICE, [VersionRoute("blue", blue, replica_set="blue-1"),
                                  VersionRoute("green", green, replica_set="green-1")],
                        auth="key", keys=KEYS if keys is None else keys)


def address(replica) -> tuple[str, int]:
    host, port = replica.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def score(url: str, key: str | None = KEYS[0], body: dict | None = None, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{url}/api/v1/service/{SERVICE}/score", json=body or {}, headers=headers, timeout=30,
                      **kwargs)


def self_signed(folder: Path, valid_days: float = 1) -> Path:
    """``folder/tls.crt`` and ``folder/tls.key`` (a kubernetes.io/tls Secret's files) for 127.0.0.1, valid from two
    days ago for ``valid_days`` days (under 2: already expired)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    since = now - datetime.timedelta(days=2)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(since)
                   .not_valid_after(since + datetime.timedelta(days=2 + valid_days))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .sign(key, hashes.SHA256()))
    (folder / "tls.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "tls.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    (folder / "tls.key").chmod(0o600)
    return folder


@pytest.fixture(scope="module")
def gate_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gates")


@pytest.fixture(scope="module")
def replicas(start_runtime, gate_dir):
    """A ready replica of each version: "blue" and "green"."""
    entry = gate_dir / "score_gated.py"
    entry.write_text(GATED_SCRIPT)
    started = {version: start_runtime("--entry-script", str(entry), ready=False,
                                      env={"VERSION": version, "GATE_DIR": str(gate_dir),
                                           "MODELPORT_MAX_CONCURRENT_REQUESTS": "16"})
               for version in ("blue", "green")}
    for replica in started.values():
        replica.wait_ready()
    return started


@contextlib.contextmanager
def controller_api() -> Iterator[ApiEmulator]:
    """The emulator, refusing what the controller's Role does not grant (``rbac.CONTROLLER_RULES``; the emulator
    does not check its resource names): the controller works with its ServiceAccount's rights alone."""
    granted = set(verbs(CONTROLLER_RULES))
    resources = [("", "configmaps"), ("", "secrets"), ("", "pods"), ("", "services"), ("", "events"),
                 ("discovery.k8s.io", "endpointslices"), ("apps", "deployments"), ("apps", "deployments/scale"),
                 ("apps", "replicasets")]
    with ApiEmulator() as emulator:
        for group, resource in resources:
            for verb in ("get", "list", "watch", "create", "update", "patch", "delete"):
                if (group, resource, verb) not in granted:
                    emulator.deny(group, resource, verb)
        yield emulator


@pytest.fixture(scope="module")
def api():
    """The emulator with the controller's rights alone (``controller_api``)."""
    with controller_api() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def pod(api, tmp_path_factory, replicas):
    """The front end pod, its controller passing every 0.2 s and scaling down without delay, serving revision 1:
    all traffic to blue."""
    folder = tmp_path_factory.mktemp("pod")
    front = PodFrontEnd(folder, api.kubeconfig(), tls_dir=self_signed(tmp_path_factory.mktemp("tls")))
    api.put(endpoint_slice("scorer-blue-1", [address(replicas["blue"])]))
    api.put(endpoint_slice("scorer-green-1", [address(replicas["green"])]))
    publish(api, 1, [scorer(100, 0)])
    front.start_controller("--interval", "0.2", "--scale-down-delay", "0")
    front.start_envoy()
    assert wait_until(lambda: applied(api)["revision"] == 1, timeout=60), front.log()
    yield front
    front.stop()
    assert KEYS[0] not in front.log() and KEYS[1] not in front.log(), "the controller logged a key"


def test_emulated_controller_routes_a_replica_with_key_auth(pod, api):
    response = score(pod.http)
    assert response.status_code == 200, response.text
    assert response.json()["version"] == "blue"
    assert response.headers[VERSION_HEADER] == "blue"
    assert score(pod.http, key=KEYS[1]).status_code == 200
    wrong = score(pod.http, key="wrong-key-00000")
    assert wrong.status_code == 401
    assert "did not accept the key" in wrong.json()["message"]
    assert score(pod.http, key=None).status_code == 401
    report = applied(api)
    assert report["services"] == {SERVICE: {"blue": 100, "green": 0}}
    configmap = api.get_object("ConfigMap", APPLIED_CONFIGMAP)
    assert configmap["metadata"]["labels"] == api.get_object("ConfigMap", ROUTES_CONFIGMAP)["metadata"]["labels"]


def test_emulated_controller_serves_https_from_the_tls_folder(pod):
    response = score(pod.https, verify=ssl.create_default_context(cafile=pod.tls_dir / "tls.crt"))
    assert response.status_code == 200, response.text
    assert response.json()["version"] == "blue"


def test_emulated_weight_change_is_applied_and_reported(pod, api):
    revision = applied(api)["revision"] + 1
    publish(api, revision, [scorer(0, 100)])
    assert wait_until(lambda: applied(api)["revision"] == revision, timeout=30), pod.log()
    assert applied(api)["services"] == {SERVICE: {"blue": 0, "green": 100}}
    assert {score(pod.http).json()["version"] for _ in range(5)} == {"green"}
    publish(api, revision + 1, [scorer(100, 0)])
    assert wait_until(lambda: applied(api)["revision"] == revision + 1, timeout=30), pod.log()
    assert score(pod.http).json()["version"] == "blue"


def test_emulated_revision_envoy_cannot_serve_is_reported_and_the_last_one_kept(pod, api):
    served = applied(api)["revision"]
    publish(api, served + 1, [scorer(100, 0, keys=[])])  # key auth without keys: refused by the route checks
    assert wait_until(lambda: (applied(api)["failed"] or {}).get("revision") == served + 1, timeout=30), pod.log()
    report = applied(api)
    assert report["revision"] == served
    assert "uses key auth: give its primary and secondary key" in report["failed"]["reason"]
    assert score(pod.http).status_code == 200  # still revision `served`, keys and all
    publish(api, served + 2, [scorer(100, 0)])
    assert wait_until(lambda: applied(api)["revision"] == served + 2, timeout=30), pod.log()
    assert applied(api)["failed"] is None


def test_emulated_endpoint_gone_from_its_slice_is_a_503_with_its_message(pod, api, replicas):
    api.put(endpoint_slice("scorer-blue-1", [address(replicas["blue"])], ready=False))
    try:
        gone = wait_until(lambda: (r := score(pod.http)).status_code == 503 and r, timeout=30)
        assert gone, pod.log()
        assert gone.json()["message"].startswith(f"service {SERVICE} has no ready replica")
    finally:
        api.put(endpoint_slice("scorer-blue-1", [address(replicas["blue"])]))
    assert wait_until(lambda: score(pod.http).status_code == 200, timeout=30), pod.log()


def test_emulated_autoscaler_scales_the_deployment_on_requests_held_in_flight(pod, api, gate_dir):
    """Two requests held in the one green replica (max 1 concurrent, target 70 %) ask for ceil(2 / 0.7) = 3
    replicas; once they are answered the count goes back to the minimum (no scale-down delay in this pod)."""
    api.put({"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "scorer-green-1", "namespace": NAMESPACE,
                          "labels": {**target_labels(WORKSPACE, TARGET), COMPONENT: SCORING}},
             "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "green"}},
                      "template": {"metadata": {"labels": {"app": "green"}}, "spec": {"containers": []}}}})
    settings = AutoscaleSettings(min_replicas=1, max_replicas=4, target_utilization=70, refresh_seconds=1,
                                 max_concurrent=1)
    revision = applied(api)["revision"] + 1
    publish(api, revision, [scorer(0, 100)], {(SERVICE, "green"): settings})
    assert wait_until(lambda: applied(api)["revision"] == revision, timeout=30), pod.log()
    gate = uuid.uuid4().hex[:12]
    with httpx.Client(timeout=60) as client, ThreadPoolExecutor(2) as pool:
        held = [pool.submit(client.post, f"{pod.http}/api/v1/service/{SERVICE}/score", json={"gate": gate},
                            headers={"Authorization": f"Bearer {KEYS[0]}"}) for _ in range(2)]
        try:
            assert wait_until(lambda: len(list(gate_dir.glob(f"entered-{gate}-*"))) == 2, timeout=30)
            assert wait_until(lambda: replicas_of(api, "scorer-green-1") == 3, timeout=30), pod.log()
        finally:
            (gate_dir / f"open-{gate}").touch()
        assert [f.result().status_code for f in held] == [200, 200]
    assert wait_until(lambda: replicas_of(api, "scorer-green-1") == 1, timeout=30), pod.log()
    scale_patches = [r for r in api.requests if r.method == "PATCH"
                     and r.path.endswith("/deployments/scorer-green-1/scale")]
    assert len(scale_patches) >= 2  # up, then down: through the scale subresource
    assert re.search(r"scorer/green: scaled Deployment scorer-green-1 from \d to 3 replicas", pod.log())


def replicas_of(api: ApiEmulator, deployment: str) -> int:
    return api.get_object("Deployment", deployment)["spec"]["replicas"]


def test_emulated_controller_once_exits_with_the_reason_when_the_api_refuses(api, tmp_path):
    front = PodFrontEnd(tmp_path, api.kubeconfig(token="not-the-token"))
    result = front.controller_once()
    assert result.returncode == 1
    assert (front.xds_dir / "lds.json").exists()  # written first: Envoy can start even while the API cannot be used
    assert "not-the-token" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("Error: ")
