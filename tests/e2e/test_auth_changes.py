"""Key regeneration and auth updates hold the moment the SDK call returns (no window with the old key)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from modelport import AksWebservice, Environment, InferenceConfig, Model, Webservice
from tests.conftest import register_weights

APP = Path(__file__).resolve().parents[1] / "fixtures" / "deploy_app"


@pytest.fixture(scope="module")
def service(new_workspace, tmp_path_factory):
    ws = new_workspace("authws")
    model = register_weights(ws, tmp_path_factory.mktemp("model"))
    config = InferenceConfig("score.py", source_directory=APP, environment=Environment("auth-env"))
    deployed = Model.deploy(ws, "auth-svc", [model], config, AksWebservice.deploy_configuration(num_replicas=1))
    deployed.wait_for_deployment(timeout_sec=120)
    return deployed


def status_with(service, key: str | None) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(service.scoring_uri, json={}, headers=headers, timeout=30).status_code


def test_a_regenerated_key_replaces_the_old_one_when_regen_key_returns(service):
    for which in ("Primary", "Secondary", "Primary"):
        old = dict(zip(("Primary", "Secondary"), service.get_keys(), strict=True))[which]
        service.regen_key(which)
        new = dict(zip(("Primary", "Secondary"), service.get_keys(), strict=True))[which]
        assert new != old
        assert (status_with(service, old), status_with(service, new)) == (401, 200)


def test_turning_auth_off_and_on_holds_when_update_returns(service):
    service.update(auth_enabled=False)
    assert status_with(service, None) == 200
    service.update(auth_enabled=True)
    assert status_with(service, None) == 401
    assert status_with(service, service.get_keys()[0]) == 200


def test_a_web_service_cannot_be_turned_into_an_endpoint(service):
    from modelport.errors import InvalidInput
    from modelport.sdk.deploy_config import DeploymentConfig

    settings = DeploymentConfig(compute_type="AKSENDPOINT", version_name="v1", traffic_percentile=20).to_settings()
    with pytest.raises(InvalidInput, match="'auth-svc' is a web service and stays one"):
        service.workspace._client.json("PATCH", f"/services/{service.name}", json={"deploy": settings})
    assert Webservice(service.workspace, service.name).serialize()["deploy"]["compute_type"] == "aks"


def test_cors_origins_set_by_update_let_a_browser_preflight_without_a_key(service):
    origin = "https://app.example.com"
    service.update(cors_origins=[origin])
    preflight = httpx.options(service.scoring_uri, timeout=30, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"})
    assert (preflight.status_code, preflight.headers["access-control-allow-origin"]) == (200, origin)
    scored = httpx.post(service.scoring_uri, json={}, timeout=30,
                        headers={"Origin": origin, "Authorization": f"Bearer {service.get_keys()[0]}"})
    assert (scored.status_code, scored.headers["access-control-allow-origin"]) == (200, origin)
    assert status_with(service, None) == 401  # CORS opens the browser's door, not the key check
    service.update(cors_origins=[])
    assert "access-control-allow-origin" not in httpx.options(service.scoring_uri, timeout=30, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST"}).headers


def test_keys_given_at_deploy_time_are_shown_by_get_keys_only_and_a_regenerated_one_survives_update(new_workspace,
                                                                                                     tmp_path):
    ws = new_workspace("authkeysws")
    model = register_weights(ws, tmp_path)
    config = InferenceConfig("score.py", source_directory=APP, environment=Environment("auth-env"))
    chosen = AksWebservice.deploy_configuration(num_replicas=1, primary_key="chosen-primary-key-0123456789",
                                                secondary_key="chosen-secondary-key-0123456789")
    service = Model.deploy(ws, "keyed-svc", [model], config, chosen)
    service.wait_for_deployment(timeout_sec=120)
    assert service.get_keys() == ("chosen-primary-key-0123456789", "chosen-secondary-key-0123456789")
    shown = httpx.get(f"{service.workspace._client._http.base_url}/services/keyed-svc",
                      headers={"Authorization": f"Bearer {ws._dir.token()}"}, timeout=30).text
    assert "chosen-primary-key" not in shown and "chosen-secondary-key" not in shown  # the view: no key
    service.regen_key("Primary")
    regenerated = service.get_keys()[0]
    service.update(description="after a regenerated key")  # sends the view's settings back: the chosen key is gone
    assert service.get_keys()[0] == regenerated
    assert (status_with(service, "chosen-primary-key-0123456789"), status_with(service, regenerated)) == (401, 200)
    service.delete()
