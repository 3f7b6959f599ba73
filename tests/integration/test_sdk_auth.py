"""Keys and tokens through the SDK and the CLI, as Azure ML gives them, against real services.

``get_access_token()`` is Azure's ``AksServiceAccessToken`` (naive local datetimes, ``Bearer``),
``get_token()`` its ``(str, datetime)`` form; keys of a token-auth or no-auth service and tokens of a
key-auth service are refused by the control plane, so the SDK and the CLI say the same line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import httpx
import jwt
import pytest

from modelport import AksServiceAccessToken, AksWebservice, Environment, InferenceConfig, Model
from modelport.errors import InvalidInput
from tests.conftest import register_weights

APP = Path(__file__).resolve().parents[1] / "fixtures" / "deploy_app"


@pytest.fixture(scope="module")
def ws(new_workspace):
    return new_workspace("authws")


@pytest.fixture(scope="module")
def services(ws, tmp_path_factory):
    """One service per auth mode: token, key, none (deployed together, waited for together)."""
    model = register_weights(ws, tmp_path_factory.mktemp("model"), "w")
    config = InferenceConfig("score.py", source_directory=APP, environment=Environment("auth-test-env"))
    settings = {"token-svc": {"auth_enabled": False, "token_auth_enabled": True}, "key-svc": {},
                "open-svc": {"auth_enabled": False}}
    deployed = {name: Model.deploy(ws, name, [model], config, AksWebservice.deploy_configuration(
        num_replicas=1, **extra)) for name, extra in settings.items()}
    for service in deployed.values():
        service.wait_for_deployment(timeout_sec=300)
    return deployed


def modelport(ws, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modelport.cli.main", *args, "-w", str(ws.path)],
                          capture_output=True, text=True, timeout=120)


def score(service, token: str) -> int:
    return httpx.post(service.scoring_uri, json={"echo": 1}, headers={"Authorization": f"Bearer {token}"},
                      timeout=30).status_code


def test_get_access_token_is_azures_token_object(services):
    service = services["token-svc"]
    token = service.get_access_token()
    claims = jwt.decode(token.access_token, options={"verify_signature": False})
    assert isinstance(token, AksServiceAccessToken)
    assert token.token_type == "Bearer"
    assert token.expiry_on == datetime.fromtimestamp(claims["exp"])
    assert token.expiry_on.tzinfo is None and token.refresh_after.tzinfo is None  # naive local, as Azure's
    assert datetime.fromtimestamp(claims["iat"]) < token.refresh_after < token.expiry_on
    assert score(service, token.access_token) == 200


def test_get_token_returns_the_token_and_a_refresh_datetime(services):
    access_token, refresh_by = services["token-svc"].get_token()
    assert isinstance(refresh_by, datetime) and refresh_by.tzinfo is None
    assert refresh_by > datetime.now()
    assert score(services["token-svc"], access_token) == 200


def test_cli_get_access_token_prints_the_same_fields(ws, services):
    result = modelport(ws, "service", "get-access-token", "-n", "token-svc", "-o", "json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert list(printed) == ["accessToken", "tokenType", "refreshAfter", "expiryOn"]
    assert printed["tokenType"] == "Bearer"
    claims = jwt.decode(printed["accessToken"], options={"verify_signature": False})
    assert datetime.fromisoformat(printed["expiryOn"]) == datetime.fromtimestamp(claims["exp"])
    assert datetime.fromisoformat(printed["refreshAfter"]) < datetime.fromisoformat(printed["expiryOn"])
    assert score(services["token-svc"], printed["accessToken"]) == 200


KEYS_OF_TOKEN_SERVICE = ("keys are not enabled for service 'token-svc': it uses token auth; get a token with "
                         "get_access_token() (or modelport service get-access-token -n token-svc), or update it "
                         "with auth_enabled=True, token_auth_enabled=False")


def test_keys_of_a_token_auth_service_are_refused_alike_in_sdk_and_cli(ws, services):
    with pytest.raises(InvalidInput) as refused:
        services["token-svc"].get_keys()
    assert str(refused.value) == KEYS_OF_TOKEN_SERVICE
    with pytest.raises(InvalidInput, match="keys are not enabled for service 'token-svc'"):
        services["token-svc"].regen_key("Primary")
    result = modelport(ws, "service", "keys", "-n", "token-svc")
    assert (result.returncode, result.stdout, result.stderr) == (1, "", f"Error: {KEYS_OF_TOKEN_SERVICE}\n")


def test_keys_of_a_service_without_auth_are_refused(services):
    with pytest.raises(InvalidInput) as refused:
        services["open-svc"].get_keys()
    assert str(refused.value) == ("keys are not enabled for service 'open-svc': it has auth disabled "
                                  "(auth_enabled=False); update it with auth_enabled=True to require keys")


def test_tokens_of_a_key_auth_service_are_refused_alike_in_sdk_and_cli(ws, services):
    message = ("tokens are not enabled for service 'key-svc': it uses key auth; use its keys (get_keys(), or "
               "modelport service keys), or update it with token_auth_enabled=True, auth_enabled=False")
    for call in (services["key-svc"].get_token, services["key-svc"].get_access_token):
        with pytest.raises(InvalidInput) as refused:
            call()
        assert str(refused.value) == message
    result = modelport(ws, "service", "get-access-token", "-n", "key-svc")
    assert (result.returncode, result.stderr) == (1, f"Error: {message}\n")


def test_key_auth_service_keys_still_work(services):
    primary, secondary = services["key-svc"].get_keys()
    assert (score(services["key-svc"], primary), score(services["key-svc"], secondary)) == (200, 200)
