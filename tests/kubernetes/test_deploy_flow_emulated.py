"""The whole deploy flow on an attached cluster, as an Azure ML user runs it through the SDK: attach, deploy, wait
for Healthy, score with the service's key, read the replica's log, update to a new model version while a client
scores, delete; and a service whose ``init()`` fails.

What is real: the SDK, the control plane (in this process: ``flow.py`` says why), its reconciler, the
``KubernetesBackend`` and ``KubernetesFrontEnd``, the image build contexts, the runtime processes that score, the
front-end controller and Envoy (local processes), HTTP everywhere. What is EMULATED: the Kubernetes API server
and controller-manager (``emulator.py``), the kubelet (``kubelet.py``: pods as local processes at loopback pod
addresses) and the image store (``local_images.py``: images as folders). Scoring goes to the local Envoy, not to
the ``scoring_uri`` the control plane gives (the front end Service's ClusterIP, unreachable from here).
"""

from __future__ import annotations

import json
from functools import partial

import httpx
import pytest

from modelport import AksWebservice, ComputeTarget, Model, Webservice, Workspace
from modelport.backends.kubernetes.objects import target_labels
from modelport.sdk.webservice import WebserviceError
from tests.conftest import register_weights
from tests.traffic import Traffic, bearer
from tests.traffic import wait_until as _wait_until

from .flow import TARGET, ControlPlane, Flow, flow, inference_config, model  # noqa: F401 - the fixtures

DEPLOY_TIMEOUT_S = 600  # the first deploy builds the environment, app and front end images into the store
wait_until = partial(_wait_until, interval=0.2)
pytestmark = pytest.mark.timeout(1200)  # the module's first test waits for the images to build (see flow.py)


def deploy(flow: Flow, name: str, model: Model, **variables: str) -> Webservice:  # noqa: F811
    config = AksWebservice.deploy_configuration(num_replicas=1)
    return Model.deploy(flow.ws, name, [model], inference_config(**variables), config,
                        deployment_target=ComputeTarget(flow.ws, TARGET))


def score(flow: Flow, name: str, key: str | None, body: dict | None = None) -> httpx.Response:  # noqa: F811
    return httpx.post(f"{flow.front.http}/api/v1/service/{name}/score", json=body or {}, headers=bearer(key),
                      timeout=30)


def healthy(service: Webservice, timeout: float = DEPLOY_TIMEOUT_S) -> bool:
    """``wait_for_deployment`` as a user waits (it ends at the first Unhealthy or Failed, raising): True when the
    service is Healthy."""
    service.wait_for_deployment(timeout_sec=timeout)
    return service.state == "Healthy"


def objects_of(flow: Flow, kind: str, service: str) -> list[str]:  # noqa: F811
    """The names of the emulator's ``kind`` objects that belong to ``service`` (its replica sets are
    ``<service>-<replica set>``)."""
    return [o["metadata"]["name"] for o in flow.api.list_objects(kind, "default")
            if o["metadata"]["name"].startswith(f"{service}-")]


def test_emulated_deploy_score_logs_update_and_delete(flow: Flow, model: Model, tmp_path):  # noqa: F811
    service = deploy(flow, "echo-k8s", model)
    assert healthy(service), service.serialize()
    primary, secondary = service.get_keys()

    answer = wait_until(lambda: (r := score(flow, "echo-k8s", primary, {"echo": "hi"})).status_code == 200 and r,
                        timeout=60)
    assert answer, score(flow, "echo-k8s", primary).text
    assert (answer.json()["weights"], answer.json()["echo"]) == ("w-1", "hi")
    assert score(flow, "echo-k8s", secondary).status_code == 200
    assert score(flow, "echo-k8s", "not-the-key").status_code == 401
    assert score(flow, "echo-k8s", None).status_code == 401

    logs = service.get_logs()
    assert "Calling init() of" in logs and "score.py" in logs, logs

    labels = target_labels(flow.ws.name, TARGET)
    assert objects_of(flow, "Deployment", "echo-k8s"), flow.api.list_objects("Deployment", "default")
    assert all(flow.api.get_object("Deployment", name)["metadata"]["labels"].items() >= labels.items()
               for name in objects_of(flow, "Deployment", "echo-k8s"))

    model_2 = register_weights(flow.ws, tmp_path, "w-2")
    first = service.serialize()["status"]["serving_version"]
    with Traffic(f"{flow.front.http}/api/v1/service/echo-k8s/score", headers=bearer(primary), threads=2) as traffic:
        assert traffic.wait_for_ok(5), traffic.summary()
        with traffic.change():
            service.update(models=[model_2])
            assert wait_until(lambda: score(flow, "echo-k8s", primary).json().get("weights") == "w-2",
                              timeout=DEPLOY_TIMEOUT_S), service.serialize()
            assert healthy(service), service.serialize()
            assert wait_until(lambda: len(objects_of(flow, "Deployment", "echo-k8s")) == 1, timeout=120), \
                objects_of(flow, "Deployment", "echo-k8s")
        assert traffic.wait_for_ok(5), traffic.summary()
    assert traffic.failed == 0, (traffic.summary(), traffic.failure_log[:5])
    status = service.serialize()["status"]
    assert status["serving_version"] == status["desired_version"] != first, status
    assert [f"echo-k8s-{status['serving_version']}"] == objects_of(flow, "Deployment", "echo-k8s")

    service.delete()
    assert "echo-k8s" not in flow.ws.webservices
    for kind in ("Deployment", "Service", "ReplicaSet", "Pod"):
        assert wait_until(lambda kind=kind: not objects_of(flow, kind, "echo-k8s"), timeout=120), \
            (kind, objects_of(flow, kind, "echo-k8s"))
    assert wait_until(lambda: score(flow, "echo-k8s", primary).status_code == 404, timeout=60), \
        score(flow, "echo-k8s", primary).text


def test_emulated_init_failure_is_failed_with_the_traceback(flow: Flow, model: Model):  # noqa: F811
    service = deploy(flow, "broken-k8s", model, FAIL_INIT="1")
    assert wait_until(lambda: service.update_deployment_state() or service.state == "Failed",
                      timeout=DEPLOY_TIMEOUT_S), service.serialize()
    error = service.serialize()["error"]
    assert "Traceback (most recent call last)" in error and "RuntimeError: init exploded on purpose" in error, error
    with pytest.raises(WebserviceError, match="init exploded on purpose"):
        service.wait_for_deployment(timeout_sec=60)
    service.delete()
    assert wait_until(lambda: not objects_of(flow, "Deployment", "broken-k8s"), timeout=60)


def test_emulated_the_cluster_keeps_serving_while_the_control_plane_is_offline(flow: Flow, model: Model):  # noqa: F811
    """The front end (controller + Envoy) and the kubelet need no control plane: with it stopped, requests are
    answered and a killed replica is restarted and routed again; a new control plane re-adopts the service."""
    service = deploy(flow, "offline-k8s", model)
    assert healthy(service), service.serialize()
    key = service.get_keys()[0]
    flow.control_plane.stop()
    try:
        assert [score(flow, "offline-k8s", key).status_code for _ in range(20)] == [200] * 20
        [pod] = objects_of(flow, "Pod", "offline-k8s")
        killed = flow.kubelet.pid(pod)
        flow.kubelet.kill(pod)
        assert wait_until(lambda: flow.kubelet.pid(pod) not in (None, killed)
                          and score(flow, "offline-k8s", key).status_code == 200, timeout=120)
    finally:
        restarted = ControlPlane(flow.ws)
        config = json.loads(flow.ws._dir.config_path.read_text())
        flow.ws._dir.config_path.write_text(json.dumps({**config, "server_url": restarted.url}))
        flow.control_plane = restarted.start()
        flow.ws = Workspace.get(flow.ws.name, flow.ws.path)  # a client of the new control plane
    again = Webservice(flow.ws, "offline-k8s")

    def readopted() -> bool:  # polled, not wait_for_deployment: a readiness probe that times out on a loaded
        again.update_deployment_state()  # machine makes the one replica briefly unready, which is reported as such
        return again.state == "Healthy"

    assert wait_until(readopted, timeout=120), again.serialize()
    again.delete()
