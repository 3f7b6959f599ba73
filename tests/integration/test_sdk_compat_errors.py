"""Azure ML's ``try: Webservice(ws, name) except WebserviceException:`` against a real control plane: a missing
service and a deployment that ends Failed raise ``modelport.WebserviceException`` and stay modelport's NotFound /
WebserviceError."""

from __future__ import annotations

import pytest

from modelport import AksWebservice, Environment, InferenceConfig, Model, Webservice, WebserviceException, Workspace
from modelport.api import server
from modelport.errors import NotFound
from modelport.sdk.webservice import WebserviceError

pytestmark = pytest.mark.timeout(600)  # the deploy builds the test environment


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ws")
    workspace = Workspace.create("compatws", folder)
    yield workspace
    for service in Webservice.list(workspace):
        service.delete()
    server.stop(workspace._dir)


def find(ws, name: str):
    """Azure ML's idiom for "the service, or None"."""
    try:
        return Webservice(ws, name)
    except WebserviceException:
        return None


def test_a_missing_service_raises_azures_exception_and_stays_not_found(ws):
    assert find(ws, "nosuch") is None
    with pytest.raises(NotFound) as raised:
        Webservice(ws, "nosuch")
    assert isinstance(raised.value, WebserviceException)
    assert raised.value.status_code == 404 and "nosuch" in raised.value.message


def test_a_failed_deployment_raises_azures_exception(ws, tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "score.py").write_text("def init():\n    raise RuntimeError('the weights are corrupt')\n"
                                               "def run(data):\n    return data\n")
    (tmp_path / "weights.txt").write_text("w")
    model = Model.register(ws, tmp_path / "weights.txt", "weights")
    config = InferenceConfig(entry_script="score.py", source_directory=tmp_path / "app",
                             environment=Environment("compat-env"))
    service = Model.deploy(ws, "failing-svc", [model], config,
                           AksWebservice.deploy_configuration(num_replicas=1, auth_enabled=False))
    with pytest.raises(WebserviceException) as raised:
        service.wait_for_deployment()
    assert isinstance(raised.value, WebserviceError) and raised.value.status_code is None
    assert raised.value.message.startswith("service failing-svc is Failed: ")
    assert "RuntimeError: the weights are corrupt" in raised.value.message
    assert find(ws, "failing-svc").state == "Failed"
