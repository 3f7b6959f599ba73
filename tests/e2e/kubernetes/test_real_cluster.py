"""The whole Kubernetes flow on a real cluster: attach, deploy, score, update, logs, delete, detach.

No Kubernetes API server can run on CI's machines, so this module skips unless ``MODELPORT_TEST_KUBECONFIG``
names a kubeconfig (a kind or k3d cluster on a laptop, or any cluster you may deploy to). Optional:
``MODELPORT_TEST_KUBE_CONTEXT`` (default: the kubeconfig's current context), ``MODELPORT_TEST_NAMESPACE``
(default ``modelport-e2e``, which must exist), ``MODELPORT_TEST_IMAGE_REGISTRY`` (where images are pushed; without
one, the cluster must share the builder's image store, as a kind cluster loaded by hand does not),
``MODELPORT_TEST_SCORING_BASE`` (the front end as reachable from here, e.g. after
``kubectl port-forward svc/modelport-frontend 8080:80``; default: the service's scoring URI). For example::

    kind create cluster && kubectl create namespace modelport-e2e
    MODELPORT_TEST_KUBECONFIG=~/.kube/config MODELPORT_TEST_IMAGE_REGISTRY=localhost:5001 \\
        .venv/bin/python -m pytest tests/e2e/kubernetes -v
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from modelport import AksWebservice, ComputeTarget, Environment, InferenceConfig, KubernetesCompute, Model
from modelport.sdk.compute import ClusterPurpose
from tests.conftest import register_weights

KUBECONFIG = os.environ.get("MODELPORT_TEST_KUBECONFIG")
APP = Path(__file__).resolve().parents[2] / "fixtures" / "deploy_app"
pytestmark = pytest.mark.skipif(not KUBECONFIG, reason="no Kubernetes cluster configured: set "
                                "MODELPORT_TEST_KUBECONFIG to a kubeconfig (see this module's docstring)")


@pytest.fixture(scope="module")
def target(new_workspace):
    ws = new_workspace("k8se2e")
    config = KubernetesCompute.attach_configuration(
        kubeconfig=os.path.expanduser(KUBECONFIG), context=os.environ.get("MODELPORT_TEST_KUBE_CONTEXT"),
        namespace=os.environ.get("MODELPORT_TEST_NAMESPACE", "modelport-e2e"), cluster_purpose=ClusterPurpose.DEV_TEST,
        ingress_service_type="NodePort", image_registry=os.environ.get("MODELPORT_TEST_IMAGE_REGISTRY"))
    attached = ComputeTarget.attach(ws, "e2ek8s", config)
    attached.wait_for_completion(show_output=True)
    yield ws, attached
    attached.detach(force=True)


def test_a_model_deployed_to_a_real_cluster_answers_through_its_front_end_and_leaves_nothing_behind(target,
                                                                                                   tmp_path):
    ws, attached = target
    model = register_weights(ws, tmp_path, "w-real")
    inference = InferenceConfig("score.py", source_directory=APP, environment=Environment("k8s-e2e-env"))
    service = Model.deploy(ws, "k8s-e2e", [model], inference,
                           AksWebservice.deploy_configuration(cpu_cores=0.1, memory_gb=0.5, num_replicas=1),
                           deployment_target=attached)
    try:
        service.wait_for_deployment(show_output=True, timeout_sec=1200)
        assert service.state == "Healthy", service.error
        base = os.environ.get("MODELPORT_TEST_SCORING_BASE")
        uri = f"{base}/api/v1/service/k8s-e2e/score" if base else service.scoring_uri
        key = service.get_keys()[0]
        answer = httpx.post(uri, json={"echo": 1}, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        assert answer.status_code == 200 and answer.json()["weights"] == "w-real", answer.text
        assert httpx.post(uri, json={"echo": 1}, timeout=60).status_code == 401
        assert "Calling init()" in service.get_logs()
    finally:
        service.delete()
