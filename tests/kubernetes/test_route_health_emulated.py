"""Issue 10, failure mode 9: the in-cluster controller checks each service's route through its own Envoy and
reports, in the applied ConfigMap, the layer that fails (replicas, Service, route, TLS) or that a request
succeeded. Against the API emulator with the pod's two containers as local processes, as in
``test_controller_emulated``, routing a REAL replica process.

What the emulator cannot say: that a real EndpointSlice controller or kubelet behave as emulated.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import threading

import pytest

from modelport.backends.kubernetes.objects import (
    APPLIED_CONFIGMAP,
    AUTH_SECRET,
    COMPONENT,
    ROUTES_CONFIGMAP,
    SCORING,
    target_labels,
)
from modelport.frontend.route_health import RouteChecker
from modelport.frontend.routes import ServiceRoute, VersionRoute
from modelport.frontend.routing_state import RoutingState, read_state
from tests.conftest import script
from tests.kubernetes.emulator import ApiEmulator
from tests.kubernetes.test_controller_emulated import (
    KEYS,
    NAMESPACE,
    SERVICE,
    TARGET,
    WORKSPACE,
    PodFrontEnd,
    address,
    applied,
    controller_api,
    endpoint_slice,
    publish,
    scorer,
    self_signed,
)
from tests.traffic import wait_until


@pytest.fixture(scope="module")
def api():
    """The emulator with the controller's rights alone."""
    with controller_api() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def blue(start_runtime):
    """A ready replica of version blue."""
    return start_runtime("--entry-script", script("score_version.py"), env={"VERSION": "blue"})


@pytest.fixture(scope="module")
def pod(api, tmp_path_factory, blue):
    """The front end pod (HTTP and HTTPS), its controller passing every 0.2 s, serving revision 1: all traffic to
    blue, with key auth."""
    front = PodFrontEnd(tmp_path_factory.mktemp("pod"), api.kubeconfig(),
                        tls_dir=self_signed(tmp_path_factory.mktemp("tls")))
    api.put(endpoint_slice("scorer-blue-1", [address(blue)]))
    publish(api, 1, [scorer(100, 0)])
    front.start_controller("--interval", "0.2")
    front.start_envoy()
    assert wait_until(lambda: applied(api)["revision"] == 1, timeout=60), front.log()
    yield front
    front.stop()
    assert KEYS[0] not in front.log() and KEYS[1] not in front.log(), "the controller logged a key"


def test_emulated_route_health_says_the_route_answered_through_envoy(pod, api, blue):
    """Revision 1's route was checked by a request through the pod's own Envoy (with the service's key), and
    the check's result is in the applied ConfigMap, without the key, with the ready replicas it was checked
    with (a check made with other replicas than the control plane routes now is stale)."""
    health = applied(api)["route_health"]
    host, port = address(blue)
    assert health == {SERVICE: {"layer": None,
                                "reason": f"GET /api/v1/service/{SERVICE} answered 200 through the front end "
                                          "(version blue)", "endpoints": [f"{host}:{port}"]}}
    text = json.dumps(api.get_object("ConfigMap", APPLIED_CONFIGMAP))
    assert KEYS[0] not in text and KEYS[1] not in text


def route_health(api: ApiEmulator) -> dict:
    return applied(api)["route_health"].get(SERVICE) or {}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_emulated_route_whose_envoy_answers_503_is_reported_at_the_route_layer(pod, api, blue):
    """A ready endpoint nothing listens on: Envoy answers the check 503, reported as the route layer with Envoy's
    message; once the endpoint is a replica again the route answers."""
    api.put(endpoint_slice("scorer-blue-1", [("127.0.0.1", closed_port())]))
    try:
        failed = wait_until(lambda: (h := route_health(api)).get("layer") == "route" and h, timeout=30)
        assert failed, pod.log()
        assert failed["reason"].startswith(f"GET /api/v1/service/{SERVICE} through the front end answered 503: the "
                                           f"front end could not get an answer from a replica (service {SERVICE} has "
                                           "no reachable replica")
        assert f"{SERVICE}: route check failed at the route layer: " in pod.log()
    finally:
        api.put(endpoint_slice("scorer-blue-1", [address(blue)]))
    assert wait_until(lambda: route_health(api).get("layer", "none yet") is None, timeout=30), pod.log()


def test_emulated_empty_endpoint_slice_of_a_ready_deployment_is_the_service_layer(pod, api, blue):
    """No ready endpoint: the service layer while the Deployment says its pods are ready (the Service finds
    none of them), the replicas layer once it says none is ready."""
    def deployment(ready: int) -> dict:
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "scorer-blue-1", "namespace": NAMESPACE,
                             "labels": {**target_labels(WORKSPACE, TARGET), COMPONENT: SCORING}},
                "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "blue"}},
                         "template": {"metadata": {"labels": {"app": "blue"}}, "spec": {"containers": []}}},
                "status": {"replicas": 2, "readyReplicas": ready}}

    api.put(deployment(ready=2))
    api.put(endpoint_slice("scorer-blue-1", []))
    try:
        assert wait_until(lambda: route_health(api).get("layer") == "service", timeout=30), pod.log()
        assert route_health(api)["reason"] == (
            "version blue: Deployment scorer-blue-1 has 2 ready pod(s) but Service scorer-blue-1's EndpointSlices "
            "list no ready endpoint: check the Service's selector and target port "
            "(kubectl describe service scorer-blue-1)")
        api.put(deployment(ready=0))
        assert wait_until(lambda: route_health(api).get("layer") == "replicas", timeout=30), pod.log()
        assert route_health(api)["reason"] == ("version blue has no ready replica: 0 of 2 pod(s) of Deployment "
                                               "scorer-blue-1 are ready (kubectl describe deployment scorer-blue-1)")
    finally:
        api.remove("Deployment", "scorer-blue-1")
        api.put(endpoint_slice("scorer-blue-1", [address(blue)]))
    assert wait_until(lambda: route_health(api).get("layer", "none yet") is None, timeout=30), pod.log()


def test_emulated_tls_listener_that_fails_its_handshake_is_the_tls_layer(pod, api, blue):
    """The route check's TLS handshake against the pod's Envoy: its HTTPS listener completes one; its HTTP port,
    which speaks no TLS, is reported as the tls layer for a service whose route answers."""
    state = read_state(api.get_object("ConfigMap", ROUTES_CONFIGMAP), api.get_object("Secret", AUTH_SECRET))
    assert state is not None
    ready = {"scorer-blue-1": [address(blue)]}
    secure = RouteChecker("127.0.0.1", pod.port, pod.tls_port).check(state, ready, dict)
    assert {health.layer for health in secure.values()} == {None}
    broken = RouteChecker("127.0.0.1", pod.port, tls_port=pod.port).check(state, ready, dict)
    assert {health.layer for health in broken.values()} == {"tls"}
    assert next(iter(broken.values())).reason.startswith(
        f"the front end's HTTPS listener 127.0.0.1:{pod.port} failed the TLS handshake (")


def test_an_expired_certificate_is_the_tls_layer(tmp_path):
    """The handshake completes with an expired certificate (the check verifies no CA); its date is checked."""
    folder = self_signed(tmp_path, valid_days=-1)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "tls.crt", folder / "tls.key")
    with socket.create_server(("127.0.0.1", 0)) as server:
        def serve_one() -> None:
            connection, _ = server.accept()
            try:
                with context.wrap_socket(connection, server_side=True) as secured:
                    secured.recv(1)
            except (OSError, ssl.SSLError):
                pass

        thread = threading.Thread(target=serve_one, daemon=True)
        thread.start()
        health = RouteChecker("127.0.0.1", 1, server.getsockname()[1]).handshake()
        thread.join(10)
    assert health.layer == "tls"
    assert re.fullmatch(r"the front end's HTTPS listener 127\.0\.0\.1:\d+ serves a certificate that expired on "
                        r"\d{4}-\d\d-\d\d \d\d:\d\d UTC: attach a renewed certificate", health.reason)


def test_a_listener_that_refuses_connections_is_the_route_layer_for_every_service(blue):
    """Nothing listens where the check expects Envoy: every service is the route layer, after one connection."""
    versions = [VersionRoute("blue", 100, replica_set="blue-1")]
    services = [ServiceRoute(SERVICE, versions, auth="key", keys=KEYS), ServiceRoute("other", versions, auth="none")]
    deployments = {(SERVICE, "blue"): "scorer-blue-1", ("other", "blue"): "scorer-blue-1"}
    state = RoutingState(1, services, deployments, dict.fromkeys(deployments))
    port = closed_port()
    health = RouteChecker("127.0.0.1", port).check(state, {"scorer-blue-1": [address(blue)]}, dict)
    assert {name: h.layer for name, h in health.items()} == {SERVICE: "route", "other": "route"}
    assert health[SERVICE].reason.startswith(f"the front end's listener 127.0.0.1:{port} refused the connection (")
    assert health[SERVICE].reason.endswith(": Envoy is not listening; see the envoy container's log")
    assert health["other"] == health[SERVICE]
