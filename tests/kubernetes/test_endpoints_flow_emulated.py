"""Endpoints, auth and autoscaling on an attached cluster, as an Azure ML user runs them through the SDK: an
``AksEndpoint`` with two versions at 30/70 splits the requests that way at the front end; ``promote`` sends every
request to one version and ``rollback`` restores the split; ``delete_version`` removes that version's Deployment and
Service and nothing else; a token-auth service answers its token and refuses a request without; ``regen_key``
refuses the old key once it returned; an autoscaled version under held load is scaled up by the in-cluster
controller and back down after it.

What is real: the SDK, the control plane (in this process: ``flow.py`` says why), its reconciler, the
``KubernetesBackend`` and ``KubernetesFrontEnd``, the runtime processes that score, the front-end controller (its
autoscaler too) and Envoy (local processes), HTTP everywhere. What is EMULATED: the Kubernetes API server and
controller-manager (``emulator.py``: Deployments to ReplicaSets to Pods, EndpointSlices), the kubelet
(``kubelet.py``: pods as local processes) and the image store (``local_images.py``). Requests go to the local
Envoy the controller configures, not to the ``scoring_uri`` the control plane gives (unreachable from here).
"""

from __future__ import annotations

from collections import Counter
from functools import partial

import httpx
import pytest

from modelport import AksEndpoint, AksWebservice, ComputeTarget, Model, Webservice
from modelport.backends.kubernetes.objects import APPLIED_CONFIGMAP
from modelport.frontend.routing_state import read_applied
from tests.traffic import Traffic, answered_by, bearer
from tests.traffic import wait_until as _wait_until

from .flow import TARGET, Flow, flow, inference_config, model  # noqa: F401 - the fixtures

DEPLOY_TIMEOUT_S = 600  # the module's first deploy builds the environment and app images into the store
SCALE_TIMEOUT_S = 240  # new pods start runtime processes on a busy 2-core machine
# A queued request may wait for its replica's one run() slot longer than Azure's 500 ms on a busy 2-core machine:
# a 503 for that would say nothing about endpoints.
WAIT_MS = 10000
# Envoy picks a version at random per request by weight: over 400 requests a share strays more than 12 points from
# its percentile far less than once in a million runs (its standard deviation is about 2.3 points).
SPLIT_REQUESTS = 400
SPLIT_BOUND = 12
SCALE_DOWN_DELAY_S = 3
FLOW_CONTROLLER_ARGS = ("--scale-down-delay", str(SCALE_DOWN_DELAY_S))  # read by flow.py's fixture
wait_until = partial(_wait_until, interval=0.2)
pytestmark = pytest.mark.timeout(1800)  # the module's first test waits for the images to build (see flow.py)


def url(flow: Flow, name: str) -> str:  # noqa: F811
    """Where ``name`` is scored at the local front end."""
    return f"{flow.front.http}/api/v1/service/{name}/score"


def score(flow: Flow, name: str, key: str | None = None, body: dict | None = None) -> httpx.Response:  # noqa: F811
    return httpx.post(url(flow, name), json=body or {}, headers=bearer(key), timeout=30)


def settled(service: Webservice, timeout: float = DEPLOY_TIMEOUT_S) -> str:
    """Wait (bounded) until the service (every version of an endpoint) is Healthy or Failed; its state then. Not
    ``wait_for_deployment``: it ends at the first Unhealthy, which a new replica set briefly is (see
    ``test_deploy_flow_emulated.healthy``)."""
    def done() -> bool:
        service.update_deployment_state()
        return service.state in ("Healthy", "Failed")

    wait_until(done, timeout=timeout)
    return service.state


def split(flow: Flow, name: str, requests: int = SPLIT_REQUESTS) -> Counter[str]:  # noqa: F811
    """Who answered ``requests`` requests (or a few more) to endpoint ``name`` (4 clients at once), by
    ``answered_by``."""
    with Traffic(url(flow, name), answered_by, threads=4, request_timeout=60) as traffic:
        assert traffic.wait_for_phase(requests, timeout=300), traffic.summary()
    return traffic.phases[0]


def shares(answers: Counter[str]) -> dict[str, float]:
    total = sum(answers.values())
    return {who: 100 * n / total for who, n in answers.items()}


def applied(flow: Flow) -> dict:  # noqa: F811
    """What the controller reports it routes (the applied ConfigMap in the emulator)."""
    return read_applied(flow.api.get_object("ConfigMap", APPLIED_CONFIGMAP))


def objects(flow: Flow, kind: str) -> set[str]:  # noqa: F811
    """The names of every ``kind`` object in the emulator's namespace."""
    return {o["metadata"]["name"] for o in flow.api.list_objects(kind, "default")}


def deploy_endpoint(flow: Flow, model: Model, name: str, version: str, traffic_percentile: float,  # noqa: F811
                    **settings) -> AksEndpoint:
    """Endpoint ``name`` (no auth) whose first version ``version`` runs the deploy app answering ``version``."""
    config = AksEndpoint.deploy_configuration(auth_enabled=False, max_request_wait_time=WAIT_MS, version_name=version,
                                              traffic_percentile=traffic_percentile, **settings)
    endpoint = Model.deploy(flow.ws, name, [model], inference_config(APP_VERSION=version), config,
                            deployment_target=ComputeTarget(flow.ws, TARGET))
    assert isinstance(endpoint, AksEndpoint), endpoint
    return endpoint


@pytest.fixture(scope="module")
def split_endpoint(flow: Flow, model: Model) -> AksEndpoint:  # noqa: F811
    """Endpoint ``split-k8s``: ``blue`` (default, control) at 30 %, ``green`` at 70 %, one replica each, Healthy."""
    endpoint = deploy_endpoint(flow, model, "split-k8s", "blue", 30, num_replicas=1)
    assert settled(endpoint) == "Healthy", endpoint.serialize()
    endpoint.create_version("green", inference_config=inference_config(APP_VERSION="green"), traffic_percentile=70)
    assert settled(endpoint) == "Healthy", endpoint.serialize()
    return endpoint


def test_emulated_endpoint_splits_30_70_as_asked(flow: Flow, split_endpoint: AksEndpoint):  # noqa: F811
    versions = Webservice(flow.ws, "split-k8s").versions
    assert {name: (v.traffic_percentile, v.effective_percentile, v.is_default, v.state)
            for name, v in versions.items()} == {"blue": (30, 30, True, "Healthy"),
                                                 "green": (70, 70, False, "Healthy")}
    # create_version returned once the controller reported these weights (KubernetesFrontEnd raises otherwise)
    assert applied(flow)["services"]["split-k8s"] == {"blue": 30, "green": 70}, applied(flow)
    # a version's share is routed once its replicas are ready: wait until green answers before counting
    assert wait_until(lambda: answered_by(score(flow, "split-k8s")) == "green", timeout=120)
    answers = split(flow, "split-k8s")
    assert set(answers) == {"blue", "green"}, answers  # nothing failed, every answer named its version
    for version, expected in (("blue", 30), ("green", 70)):
        assert abs(shares(answers)[version] - expected) <= SPLIT_BOUND, (shares(answers), answers)


def of_version(names: set[str], service: str, version: str) -> set[str]:
    """The names among ``names`` that belong to ``version`` of ``service`` (``<service>-<version>-...``)."""
    return {name for name in names if name.startswith(f"{service}-{version}-")}


def test_emulated_promote_rollback_and_delete_version(flow: Flow, split_endpoint: AksEndpoint):  # noqa: F811
    endpoint = split_endpoint
    endpoint.promote("green")  # returns once the front end sends green every request
    assert applied(flow)["services"]["split-k8s"] == {"blue": 0, "green": 100}, applied(flow)
    assert {name: (v.traffic_percentile, v.is_default, v.version_type) for name, v in endpoint.versions.items()} == {
        "blue": (0, False, "Treatment"), "green": (100, True, "Control")}
    assert set(answers := split(flow, "split-k8s", 100)) == {"green"}, answers

    endpoint.rollback()
    assert applied(flow)["services"]["split-k8s"] == {"blue": 30, "green": 70}, applied(flow)
    assert {name: (v.traffic_percentile, v.is_default, v.version_type) for name, v in endpoint.versions.items()} == {
        "blue": (30, True, "Control"), "green": (70, False, "Treatment")}
    answers = split(flow, "split-k8s")
    assert set(answers) == {"blue", "green"}, answers
    for version, expected in (("blue", 30), ("green", 70)):
        assert abs(shares(answers)[version] - expected) <= SPLIT_BOUND, (shares(answers), answers)

    kinds = ("Deployment", "Service", "ReplicaSet", "Pod")
    before = {kind: objects(flow, kind) for kind in kinds}
    green = {kind: of_version(before[kind], "split-k8s", "green") for kind in kinds}
    blue = {kind: of_version(before[kind], "split-k8s", "blue") for kind in kinds}
    assert all(green[kind] and blue[kind] for kind in kinds), before
    endpoint.delete_version("green")
    assert list(endpoint.versions) == ["blue"]
    assert applied(flow)["services"]["split-k8s"] == {"blue": 100}, applied(flow)
    for kind in kinds:  # green's objects go; every other one (blue's, the front end's) stays as it was
        assert wait_until(lambda kind=kind: objects(flow, kind) == before[kind] - green[kind], timeout=120), \
            (kind, sorted(objects(flow, kind)), sorted(before[kind]))
    assert set(answers := split(flow, "split-k8s", 50)) == {"blue"}, answers
    assert settled(endpoint, 60) == "Healthy", endpoint.serialize()


def deploy_service(flow: Flow, model: Model, name: str, **auth: bool) -> AksWebservice:  # noqa: F811
    config = AksWebservice.deploy_configuration(num_replicas=1, **auth)
    service = Model.deploy(flow.ws, name, [model], inference_config(), config,
                           deployment_target=ComputeTarget(flow.ws, TARGET))
    assert settled(service) == "Healthy", service.serialize()
    return service


def test_emulated_token_auth_and_regen_key(flow: Flow, model: Model):  # noqa: F811
    tokened = deploy_service(flow, model, "token-k8s", auth_enabled=False, token_auth_enabled=True)
    token, _ = tokened.get_token()
    answer = wait_until(lambda: (r := score(flow, "token-k8s", token)).status_code == 200 and r, timeout=60)
    assert answer and answer.json()["weights"] == "w-1", score(flow, "token-k8s", token).text
    assert score(flow, "token-k8s").status_code == 401
    assert score(flow, "token-k8s", token[:-4] + "AAAA").status_code == 401  # a token with a forged signature
    assert score(flow, "token-k8s", "not-a-token").status_code == 401

    keyed = deploy_service(flow, model, "key-k8s")  # AKS services use keys by default
    old_primary, secondary = keyed.get_keys()
    assert wait_until(lambda: score(flow, "key-k8s", old_primary).status_code == 200, timeout=60)
    keyed.regen_key("Primary")
    new_primary, still_secondary = keyed.get_keys()
    assert new_primary != old_primary and still_secondary == secondary
    # no wait: the call returned, so the front end enforces the new key
    assert score(flow, "key-k8s", old_primary).status_code == 401
    assert score(flow, "key-k8s", new_primary).status_code == 200
    assert score(flow, "key-k8s", secondary).status_code == 200
    assert score(flow, "key-k8s").status_code == 401
    tokened.delete()
    keyed.delete()


def running_pods(flow: Flow, deployment: str) -> set[str]:  # noqa: F811
    """The Running, Ready pods of ``deployment`` (its ReplicaSets' pods are named ``<deployment>-<hash>-...``)."""
    return {pod["metadata"]["name"] for pod in flow.api.list_objects("Pod", "default")
            if pod["metadata"]["name"].startswith(f"{deployment}-") and pod.get("status", {}).get("phase") == "Running"
            and any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))}


def test_emulated_autoscaled_version_scales_up_under_load_and_back_down(flow: Flow, model: Model):  # noqa: F811
    endpoint = deploy_endpoint(flow, model, "elastic-k8s", "steady", 0, num_replicas=1)
    assert settled(endpoint) == "Healthy", endpoint.serialize()
    endpoint.create_version("elastic", inference_config=inference_config(APP_VERSION="elastic"),
                            traffic_percentile=100, autoscale_enabled=True, autoscale_min_replicas=1,
                            autoscale_max_replicas=3, autoscale_target_utilization=50, autoscale_refresh_seconds=1)
    assert settled(endpoint) == "Healthy", endpoint.serialize()
    elastic = endpoint.versions["elastic"]
    assert (elastic.num_replicas, elastic.deploy_config.autoscale_enabled) == (None, True), elastic
    deployments = of_version(objects(flow, "Deployment"), "elastic-k8s", "elastic")
    assert len(deployments) == 1, sorted(objects(flow, "Deployment"))
    deployment = deployments.pop()

    def replicas() -> int:
        return int(flow.api.get_object("Deployment", deployment)["spec"].get("replicas", 1))

    def status(count: int) -> bool:
        version = Webservice(flow.ws, "elastic-k8s").versions["elastic"]
        return version.replicas == count and version.ready_replicas == count

    assert wait_until(lambda: answered_by(score(flow, "elastic-k8s")) == "elastic", timeout=120)
    assert (replicas(), len(running_pods(flow, deployment))) == (1, 1)
    pids: set[int] = set()

    def outcome(response: httpx.Response) -> str:
        if answered_by(response) != "elastic":
            return answered_by(response)
        pids.add(response.json()["pid"])
        return "ok"

    # 4 clients each holding a request in run() for 0.5 s: about 4 requests in flight or queued for a replica
    # that runs one at a time, a utilization of 400 % against a target of 50 %: the controller asks for the maximum
    with Traffic(url(flow, "elastic-k8s"), outcome, threads=4, body={"sleep": 0.5}, request_timeout=60) as traffic:
        assert wait_until(lambda: replicas() == 3, timeout=SCALE_TIMEOUT_S), (replicas(), flow.front.log()[-3000:])
        assert wait_until(lambda: len(running_pods(flow, deployment)) == 3, timeout=SCALE_TIMEOUT_S), \
            sorted(running_pods(flow, deployment))
        assert wait_until(lambda: status(3), timeout=SCALE_TIMEOUT_S), endpoint.serialize()
        assert wait_until(lambda: len(pids) == 3, timeout=SCALE_TIMEOUT_S), pids  # each of the 3 replicas answers
        assert replicas() == 3  # never above the maximum
    assert traffic.counts["ok"] > 0, traffic.summary()

    # no load: every decision is the minimum; after the scale-down delay the controller scales down to it
    assert wait_until(lambda: replicas() == 1, timeout=SCALE_TIMEOUT_S), (replicas(), flow.front.log()[-3000:])
    assert wait_until(lambda: len(running_pods(flow, deployment)) == 1, timeout=SCALE_TIMEOUT_S), \
        sorted(running_pods(flow, deployment))
    assert wait_until(lambda: status(1), timeout=SCALE_TIMEOUT_S), endpoint.serialize()
    assert answered_by(score(flow, "elastic-k8s")) == "elastic"
    assert "scaled Deployment " + deployment in flow.front.log()
    endpoint.delete()
