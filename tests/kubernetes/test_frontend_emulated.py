"""The control plane's ``KubernetesFrontEnd`` against the API emulator, answered by the real controller run
``--once`` in the test (with a real Envoy, as the front end pod runs them): the front end's objects are created
once, ``apply`` returns when the controller reports the revision, and fails naming why when it does not."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelport.backends.kubernetes.cluster import Cluster
from modelport.backends.kubernetes.frontend import KubernetesFrontEnd
from modelport.backends.kubernetes.frontend_manifests import front_end_objects
from modelport.backends.kubernetes.objects import (
    APPLIED_CONFIGMAP,
    AUTH_SECRET,
    COMPONENT,
    FRONT_END_NAME,
    ROUTES_CONFIGMAP,
    SCORING,
    target_labels,
)
from modelport.frontend.envoy import FrontEndError
from modelport.frontend.pod_envoy import PodEnvoy
from modelport.frontend.routes import ServiceRoute, VersionRoute
from modelport.frontend.routing_state import applied_configmap, read_applied, revision_of
from modelport.frontend.tokens import TokenSigner
from modelport.spec.compute import KubernetesTarget
from tests.kubernetes.emulator import ApiEmulator
from tests.kubernetes.test_controller_emulated import KEYS, NAMESPACE, SERVICE, TARGET, WORKSPACE, PodFrontEnd
from tests.traffic import wait_until

IMAGE = "registry.example.com/modelport:0.1.0"


class Applying:
    """``front.apply(routes)`` in a thread: ``done`` once it returned or raised (``error``)."""

    def __init__(self, front: KubernetesFrontEnd, routes: list[ServiceRoute]):
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(front, routes), daemon=True)
        self.thread.start()

    def _run(self, front: KubernetesFrontEnd, routes: list[ServiceRoute]) -> None:
        try:
            front.apply(routes)
        except BaseException as error:  # handed to the test
            self.error = error

    def wait(self) -> BaseException | None:
        self.thread.join(120)
        assert not self.thread.is_alive(), "apply() did not return"
        return self.error


def target(**settings) -> KubernetesTarget:
    return KubernetesTarget(TARGET, server="https://aks1.example.com:443", **settings)


def front_end(cluster: Cluster, tmp_path: Path, **settings) -> KubernetesFrontEnd:
    signer = TokenSigner(tmp_path / "keys")
    return KubernetesFrontEnd(cluster, WORKSPACE, target(**settings), IMAGE, signer.jwks, apply_timeout_s=60)


def scorer(blue: float, green: float) -> ServiceRoute:
    return ServiceRoute(SERVICE, [VersionRoute("blue", blue, replica_set="blue-1"),
                                  VersionRoute("green", green, replica_set="green-1")], auth="key", keys=KEYS)


def tokened() -> ServiceRoute:
    return ServiceRoute("tokened", [VersionRoute("v1", 100, replica_set="v1-1")], auth="token")


def published(api: ApiEmulator) -> int:
    configmap = api.get_object("ConfigMap", ROUTES_CONFIGMAP)
    return revision_of(configmap) if configmap else 0


@pytest.fixture
def pod(api_emulator, tmp_path) -> Iterator[PodFrontEnd]:
    """The front end pod's Envoy running (from the empty configuration its controller writes first); the test
    runs the controller with ``pod.controller_once()``."""
    (tmp_path / "pod").mkdir()
    front = PodFrontEnd(tmp_path / "pod", api_emulator.kubeconfig())
    PodEnvoy(front.xds_dir, front.admin_socket, front.port, "127.0.0.1").write_initial()
    front.start_envoy()
    yield front
    front.stop()


def controller_answers(pod: PodFrontEnd) -> Callable[[], None]:
    def once() -> None:
        result = pod.controller_once()
        assert result.returncode == 0, result.stderr
    return once


def test_emulated_ensure_running_creates_the_front_end_once(api_emulator, emulated_cluster, tmp_path):
    front = front_end(emulated_cluster, tmp_path)
    assert front.ensure_running() is True
    deployment = api_emulator.get_object("Deployment", FRONT_END_NAME)
    assert {c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]} == {IMAGE}
    for kind in ("Service", "ServiceAccount", "Role", "RoleBinding"):
        assert api_emulator.get_object(kind, FRONT_END_NAME) is not None, kind
    assert published(api_emulator) == 0
    writes = [r for r in api_emulator.requests if r.method == "PATCH"]
    assert front.ensure_running() is False
    assert [r for r in api_emulator.requests if r.method == "PATCH"] == writes  # nothing written again


def test_emulated_ensure_running_rolls_a_new_image_and_keeps_the_published_routes(api_emulator, emulated_cluster,
                                                                                  tmp_path, pod):
    front = front_end(emulated_cluster, tmp_path)
    front.ensure_running()
    applying = Applying(front, [scorer(100, 0)])
    assert wait_until(lambda: published(api_emulator) == 1, timeout=30)
    controller_answers(pod)()
    assert applying.wait() is None
    upgraded = KubernetesFrontEnd(emulated_cluster, WORKSPACE, target(), "registry.example.com/modelport:0.2.0",
                                  front.signer_jwks)
    assert upgraded.ensure_running() is False  # running: a rolling update, not a start
    containers = api_emulator.get_object("Deployment", FRONT_END_NAME)["spec"]["template"]["spec"]["containers"]
    assert {c["image"] for c in containers} == {"registry.example.com/modelport:0.2.0"}
    assert published(api_emulator) == 1


def test_emulated_apply_returns_once_the_controller_applied_the_revision(api_emulator, emulated_cluster, tmp_path,
                                                                         pod):
    front = front_end(emulated_cluster, tmp_path)
    front.ensure_running()
    applying = Applying(front, [scorer(90, 10), tokened()])
    assert wait_until(lambda: published(api_emulator) == 1, timeout=30)
    assert applying.thread.is_alive()  # no controller has answered: apply() still waits
    controller_answers(pod)()
    assert applying.wait() is None
    report = read_applied(api_emulator.get_object("ConfigMap", APPLIED_CONFIGMAP))
    assert report["revision"] == 1
    assert report["services"] == {SERVICE: {"blue": 90, "green": 10}, "tokened": {"v1": 100}}
    routes_text = json.dumps(api_emulator.get_object("ConfigMap", ROUTES_CONFIGMAP))
    assert KEYS[0] not in routes_text and KEYS[1] not in routes_text  # keys live in the Secret only
    assert api_emulator.get_object("Secret", AUTH_SECRET)["type"] == "Opaque"
    moved = scorer(90, 10)  # replicas moved: the controller follows EndpointSlices, nothing is published
    moved = dataclasses.replace(moved, versions=[dataclasses.replace(v, endpoints=[("10.244.0.9", 5001)])
                                                 for v in moved.versions])
    front.apply([moved, tokened()])  # no controller runs: returns only because nothing is waited for
    assert published(api_emulator) == 1
    restarted = front_end(emulated_cluster, tmp_path)  # a restarted control plane goes on counting
    applying = Applying(restarted, [scorer(50, 50)])
    assert wait_until(lambda: published(api_emulator) == 2, timeout=30)
    controller_answers(pod)()
    assert applying.wait() is None


def test_emulated_apply_raises_naming_expected_and_applied_weights(api_emulator, emulated_cluster, tmp_path, pod):
    front = front_end(emulated_cluster, tmp_path)
    front.ensure_running()
    applying = Applying(front, [scorer(90, 10)])
    assert wait_until(lambda: published(api_emulator) == 1, timeout=30)
    configmap = api_emulator.get_object("ConfigMap", ROUTES_CONFIGMAP)  # the controller is given other weights
    document = json.loads(configmap["data"]["routes.json"])
    for version in document["services"][0]["versions"]:
        version["weight"] = 50
    configmap["data"]["routes.json"] = json.dumps(document)
    api_emulator.put(configmap)
    controller_answers(pod)()
    error = applying.wait()
    assert isinstance(error, FrontEndError)
    assert f"expected {SERVICE}: blue 90%, green 10%, applied {SERVICE}: blue 50%, green 50%" in str(error)


def test_emulated_apply_raises_the_controllers_reason_for_a_refused_revision(api_emulator, emulated_cluster,
                                                                             tmp_path, pod):
    front = front_end(emulated_cluster, tmp_path)
    front.ensure_running()
    applying = Applying(front, [scorer(60, 30)])
    assert wait_until(lambda: published(api_emulator) == 1, timeout=30)
    controller_answers(pod)()
    error = applying.wait()
    assert isinstance(error, FrontEndError)
    assert str(error).startswith("the front end in namespace default refused routing revision 1: ")
    assert "weights add up to 90" in str(error)


def test_emulated_apply_without_a_controller_fails_naming_the_revision_and_where_to_look(emulated_cluster, tmp_path):
    front = KubernetesFrontEnd(emulated_cluster, WORKSPACE, target(), IMAGE, lambda: {}, apply_timeout_s=1)
    front.ensure_running()
    with pytest.raises(FrontEndError) as raised:
        front.apply([scorer(100, 0)])
    message = str(raised.value)
    assert "did not apply routing revision 1 within 1 s (it serves revision 0; Transitioning: " in message
    assert f"kubectl -n default logs deployment/{FRONT_END_NAME} -c controller" in message


def test_emulated_route_problems_name_the_layer_that_fails(api_emulator, emulated_cluster, tmp_path, pod):
    """Blue's Deployment runs a ready pod its Service's selector does not match (the emulator's EndpointSlice
    controller lists no endpoint): the service layer; the token service's Deployment does not exist: the
    replicas layer. What the controller checked, read back from the applied ConfigMap."""
    labels = {**target_labels(WORKSPACE, TARGET), COMPONENT: SCORING}
    api_emulator.put({"apiVersion": "apps/v1", "kind": "Deployment",
                      "metadata": {"name": "scorer-blue-1", "namespace": NAMESPACE, "labels": labels},
                      "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "blue"}}, "template": {
                          "metadata": {"labels": {"app": "blue"}}, "spec": {"containers": [{"name": "scorer"}]}}}})
    api_emulator.put({"apiVersion": "v1", "kind": "Service",
                      "metadata": {"name": "scorer-blue-1", "namespace": NAMESPACE, "labels": labels},
                      "spec": {"selector": {"app": "bleu"}, "ports": [{"name": "http", "port": 5001}]}})
    api_emulator.settle()
    front = front_end(emulated_cluster, tmp_path)
    front.ensure_running()
    assert front.route_problems() == {}  # nothing checked yet
    applying = Applying(front, [scorer(100, 0), tokened()])
    assert wait_until(lambda: published(api_emulator) == 1, timeout=30)
    controller_answers(pod)()
    assert applying.wait() is None
    assert front.route_problems() == {
        SERVICE: "service layer: version blue: Deployment scorer-blue-1 has 1 ready pod(s) but Service "
                 "scorer-blue-1's EndpointSlices list no ready endpoint: check the Service's selector and target port "
                 "(kubectl describe service scorer-blue-1)",
        "tokened": "replicas layer: version v1 has no ready replica: its Deployment tokened-v1-1 does not exist"}
    # blue's replica became ready since (only an address changed: nothing is published): until the controller
    # checks again, its check of no ready replica says nothing about the route now
    ready_blue = ServiceRoute(SERVICE, [VersionRoute("blue", 100, [("10.244.0.9", 5001)], replica_set="blue-1"),
                                        VersionRoute("green", 0, replica_set="green-1")], auth="key", keys=KEYS)
    front.apply([ready_blue, tokened()])
    assert published(api_emulator) == 1
    assert list(front.route_problems()) == ["tokened"]


def test_emulated_route_problems_are_empty_when_every_route_answered_or_none_was_checked(api_emulator,
                                                                                      emulated_cluster, tmp_path):
    front = front_end(emulated_cluster, tmp_path)
    labels = target_labels(WORKSPACE, TARGET)
    answered = {SERVICE: {"layer": None, "reason": "GET /api/v1/service/scorer answered 200 through the front end"}}
    api_emulator.put(applied_configmap(1, {SERVICE: {"blue": 100}}, "2026-01-01T00:00:00+00:00", None, NAMESPACE,
                                       labels, answered))
    assert front.route_problems() == {}
    earlier = applied_configmap(1, {SERVICE: {"blue": 100}}, "2026-01-01T00:00:00+00:00", None, NAMESPACE, labels)
    document = json.loads(earlier["data"]["applied.json"])
    del document["route_health"]  # as a controller from before route checks wrote it
    earlier["data"]["applied.json"] = json.dumps(document)
    api_emulator.put(earlier)
    assert front.route_problems() == {}
    failing = {SERVICE: {"layer": "tls", "reason": "the handshake failed"}}
    api_emulator.put(applied_configmap(1, {SERVICE: {"blue": 100}}, "2026-01-01T00:00:00+00:00", None, NAMESPACE,
                                       labels, failing))
    assert front.route_problems() == {SERVICE: "tls layer: the handshake failed"}


def test_emulated_url_from_the_front_end_service(api_emulator, emulated_cluster, tmp_path):
    assert front_end(emulated_cluster, tmp_path).url() is None  # no Service yet
    api_emulator.load_balancer_ip = None
    balanced = front_end(emulated_cluster, tmp_path)
    balanced.ensure_running()
    api_emulator.settle()
    assert balanced.url() is None  # the load balancer has no address yet
    api_emulator.load_balancer_ip = "203.0.113.10"
    api_emulator.settle()
    assert balanced.url() == "http://203.0.113.10"

    node_port = front_end(emulated_cluster, tmp_path, ingress_service_type="NodePort")
    node_port.cluster.apply(_service_of(node_port))
    service = api_emulator.get_object("Service", FRONT_END_NAME)
    node = api_emulator.nodes[0]["status"]["addresses"][0]["address"]
    assert node_port.url() == f"http://{node}:{service['spec']['ports'][0]['nodePort']}"

    cluster_ip = front_end(emulated_cluster, tmp_path, ingress_service_type="ClusterIP")
    cluster_ip.cluster.apply(_service_of(cluster_ip))
    assert cluster_ip.url() == f"http://{api_emulator.get_object('Service', FRONT_END_NAME)['spec']['clusterIP']}"

    secure = front_end(emulated_cluster, tmp_path, has_tls=True, ssl_cname="scoring.example.com")
    secure.cluster.apply(_service_of(secure))
    api_emulator.settle()
    assert secure.url() == "https://scoring.example.com"


def test_emulated_health_follows_the_front_end_deployment(api_emulator, emulated_cluster, tmp_path):
    front = front_end(emulated_cluster, tmp_path)
    assert front.health().startswith(f"Unhealthy: the front end's Deployment {FRONT_END_NAME} does not exist")
    front.ensure_running()
    assert front.health().startswith("Transitioning: 0 of 1 front-end pod(s) ready")
    api_emulator.settle()
    assert front.health() == "Healthy"


def _service_of(front: KubernetesFrontEnd) -> dict:
    return next(o for o in front_end_objects(front.spec) if o["kind"] == "Service")


def test_emulated_a_front_end_whose_pod_was_never_ready_is_starting_and_holds_a_pass_only_briefly(
        api_emulator, emulated_cluster, tmp_path, monkeypatch):
    """Its image is pulled, its pod starts: services wait in Transitioning saying so (FrontEndStarting), and a
    pass waits STARTING_APPLY_S for it, not the whole apply timeout; once it was ready, a lost one is an error."""
    from modelport.api import cluster_targets
    from modelport.reconcile.reconciler import FrontEndStarting

    monkeypatch.setattr(cluster_targets, "STARTING_APPLY_S", 0.5)
    front = front_end(emulated_cluster, tmp_path)
    front.ensure_running()
    api_emulator.settle(lambda deployment, index: {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}]})
    once_built = cluster_targets.FrontEndOnceBuilt(front, images=None)
    with pytest.raises(FrontEndStarting, match=r"^the front end is starting: 0 of 1 front-end pod\(s\) ready"):
        once_built.apply([scorer(100, 0)])
    assert front.apply_timeout_s > cluster_targets.STARTING_APPLY_S  # only that pass waited briefly
