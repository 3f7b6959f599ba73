"""The front end's own 401 replies, for real through Envoy: a missing key and a wrong key say which."""

from __future__ import annotations

import httpx
import pytest

from modelport.frontend.config import ServiceRoute, VersionRoute
from modelport.frontend.envoy import FrontEnd
from tests.conftest import script

KEYS = ["primary-key-0001", "secondary-key-0002"]


@pytest.fixture(scope="module")
def front(tmp_path_factory, start_runtime):
    replica = start_runtime("--entry-script", script("score_version.py"), env={"VERSION": "v1"})
    host, port = replica.url.removeprefix("http://").rsplit(":", 1)
    front_end = FrontEnd(tmp_path_factory.mktemp("frontend"))
    front_end.start([ServiceRoute("keyed", [VersionRoute("v1", 100, [(host, int(port))])], "key", KEYS)])
    yield front_end
    front_end.stop()


def score(front: FrontEnd, authorization: str | None) -> httpx.Response:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return httpx.post(f"{front.url}/api/v1/service/keyed/score", json={}, headers=headers, timeout=30)


def test_a_missing_key_asks_for_one(front):
    response = score(front, None)
    assert response.status_code == 401
    assert response.json()["message"] == ("service keyed needs a key: send 'Authorization: Bearer <key>' with its "
                                          "primary or secondary key")


@pytest.mark.parametrize("sent", ["Bearer wrong-key-00000", "Bearer " + KEYS[0] + "x", "wrong-key-00000"])
def test_a_wrong_key_is_named_as_wrong_and_never_echoed(front, sent):
    response = score(front, sent)
    assert response.status_code == 401
    message = response.json()["message"]
    assert message.startswith("service keyed did not accept the key in the Authorization header: send its current "
                              "primary or secondary key")
    assert sent.removeprefix("Bearer ") not in response.text


def test_the_right_key_passes_after_the_started_routes(front):
    assert score(front, f"Bearer {KEYS[1]}").status_code == 200
