"""The front end's own replies, for real through Envoy: a missing key and a wrong key say which; a 503 says its
cause with Retry-After (no ready replica, or the replica's own queue wait, issue 10 failure mode 7); a replica
killed mid-request is a 502 that says so (failure mode 6)."""

from __future__ import annotations

import re
import threading

import httpx
import pytest

from modelport.frontend.envoy import FrontEnd
from modelport.frontend.replies import NO_REPLICA_RETRY_AFTER_S
from modelport.frontend.routes import ServiceRoute, VersionRoute
from modelport.runtime.run_pool import BUSY_RETRY_AFTER_S
from tests.conftest import script
from tests.traffic import wait_until

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


ORIGIN = "https://app.example.com"


@pytest.fixture(scope="module")
def cors_front(tmp_path_factory, start_runtime):
    replica = start_runtime("--entry-script", script("score_version.py"), env={"VERSION": "v1"})
    host, port = replica.url.removeprefix("http://").rsplit(":", 1)
    front_end = FrontEnd(tmp_path_factory.mktemp("frontend"))
    front_end.start([ServiceRoute("browsed", [VersionRoute("v1", 100, [(host, int(port))])], "key", KEYS,
                                  cors_origins=(ORIGIN,))])
    yield front_end
    front_end.stop()


def test_a_browsers_preflight_from_an_allowed_origin_is_answered_without_a_key(cors_front):
    preflight = httpx.options(f"{cors_front.url}/api/v1/service/browsed/score", timeout=30, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"]


def test_only_allowed_origins_get_cors_headers_and_the_key_is_still_required(cors_front):
    url = f"{cors_front.url}/api/v1/service/browsed/score"
    allowed = httpx.post(url, json={}, timeout=30, headers={"Origin": ORIGIN, "Authorization": f"Bearer {KEYS[0]}"})
    assert (allowed.status_code, allowed.headers["access-control-allow-origin"]) == (200, ORIGIN)
    other = httpx.post(url, json={}, timeout=30, headers={"Origin": "https://evil.example",
                                                          "Authorization": f"Bearer {KEYS[0]}"})
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
    keyless = httpx.post(url, json={}, timeout=30, headers={"Origin": ORIGIN})
    assert keyless.status_code == 401
    foreign_preflight = httpx.options(url, timeout=30, headers={"Origin": "https://evil.example",
                                                                "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in foreign_preflight.headers


def test_a_malformed_origin_is_refused_with_the_fix():
    from modelport.errors import InvalidInput
    from modelport.frontend.routes import check_services

    with pytest.raises(InvalidInput, match="CORS origin 'app.example.com' is not an origin: use 'scheme://host"):
        check_services([ServiceRoute("browsed", [VersionRoute("v1", 100, [])], "none",
                                     cors_origins=("app.example.com",))])


def test_a_change_is_validated_for_the_services_it_changes_only(tmp_path, start_runtime):
    """Validation (``envoy --mode validate``) costs time that grows with the config: a change validates
    the services whose routing changed, and replicas coming and going validate nothing."""
    import json as json_module

    replica = start_runtime("--entry-script", script("score_version.py"), env={"VERSION": "v1"})
    host, port = replica.url.removeprefix("http://").rsplit(":", 1)
    ready = [(host, int(port))]
    front_end = FrontEnd(tmp_path / "frontend")
    front_end.start([ServiceRoute("first", [VersionRoute("v1", 100, ready)], "none")])
    try:
        validated = tmp_path / "frontend" / "validate.json"

        def validated_services() -> set[str]:
            config = json_module.loads(validated.read_text())
            return {c["name"] for c in config["static_resources"]["clusters"]}

        front_end.apply([ServiceRoute("first", [VersionRoute("v1", 100, ready)], "none"),
                         ServiceRoute("second", [VersionRoute("v1", 100, ready)], "none")])
        assert validated_services() == {"second_v1"}
        before = validated.stat().st_mtime_ns
        front_end.apply([ServiceRoute("first", [VersionRoute("v1", 100, [])], "none"),
                         ServiceRoute("second", [VersionRoute("v1", 100, ready)], "none")])
        assert validated.stat().st_mtime_ns == before  # only a replica went: nothing validated
        assert httpx.post(f"{front_end.url}/api/v1/service/second/score", json={}, timeout=30).status_code == 200
    finally:
        front_end.stop()


# run() kills its own process as the kernel's OOM killer would (SIGKILL), with the request unanswered.
KILLED_SCRIPT = """
import os
import signal


def init():
    pass


def run(data):
    os.kill(os.getpid(), signal.SIGKILL)
"""


def endpoint(replica) -> tuple[str, int]:
    host, port = replica.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


@pytest.fixture(scope="module")
def failing(tmp_path_factory, start_runtime):
    """Services that fail: ``empty`` (no ready replica), ``busy`` (one replica, one run() at a time, 200 ms queue
    wait) and ``killed`` (its run() is killed); ``front.busy`` is the busy replica."""
    killer = tmp_path_factory.mktemp("scripts") / "score_killed.py"
    killer.write_text(KILLED_SCRIPT)
    busy = start_runtime("--entry-script", script("score_hostile.py"),
                         env={"MODELPORT_MAX_CONCURRENT_REQUESTS": "1", "MODELPORT_MAX_QUEUE_WAIT_MS": "200"})
    killed = start_runtime("--entry-script", str(killer))
    front_end = FrontEnd(tmp_path_factory.mktemp("frontend"))
    front_end.start([ServiceRoute("empty", [VersionRoute("v1", 100, [])], "none"),
                     ServiceRoute("busy", [VersionRoute("v1", 100, [endpoint(busy)])], "none"),
                     ServiceRoute("killed", [VersionRoute("v1", 100, [endpoint(killed)])], "none")])
    front_end.busy = busy  # type: ignore[attr-defined]
    front_end.killed = killed  # type: ignore[attr-defined]
    yield front_end
    front_end.stop()


def post(front: FrontEnd, service: str, body: dict) -> httpx.Response:
    return httpx.post(f"{front.url}/api/v1/service/{service}/score", json=body, timeout=30)


def test_no_ready_replica_is_a_503_naming_the_cause_with_retry_after(failing):
    response = post(failing, "empty", {})
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(NO_REPLICA_RETRY_AFTER_S)
    message = response.json()["message"]
    assert message.startswith("service empty has no ready replica: 0 ready replicas for the version its request "
                              "was routed to (cluster empty_v1); it is starting, being updated, or its replicas failed")
    assert message.endswith(f"retry after {NO_REPLICA_RETRY_AFTER_S} s")


def test_the_replicas_queue_wait_503_names_its_limits_with_retry_after_through_the_front_end(failing, tmp_path):
    release = tmp_path / "release"
    held: dict[str, httpx.Response] = {}
    slow = threading.Thread(target=lambda: held.update(response=post(
        failing, "busy", {"kind": "block", "file": str(release)})))
    slow.start()
    try:
        assert wait_until(lambda: re.search(r"^modelport_requests_in_flight 1\.0$", httpx.get(
            f"{failing.busy.url}/metrics", timeout=5).text, re.MULTILINE), timeout=30), "the slow request never ran"
        response = post(failing, "busy", {"a": 1})
    finally:
        release.touch()
        slow.join(60)
    assert held["response"].status_code == 200
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(BUSY_RETRY_AFTER_S)
    assert response.json()["message"] == (
        "The replica is busy: no run() slot freed up within max_request_wait_time=200 ms "
        "(MODELPORT_MAX_QUEUE_WAIT_MS); each worker runs at most replica_max_concurrent_requests=1 request(s) at once "
        f"(MODELPORT_MAX_CONCURRENT_REQUESTS). Retry after {BUSY_RETRY_AFTER_S} s, or raise max_request_wait_time, "
        "replica_max_concurrent_requests or the number of replicas.")
    assert "x-ms-run-function-failed" in response.headers  # still the runtime's reply, not Envoy's


def test_a_replica_killed_mid_request_is_a_502_that_says_it_may_have_run_out_of_memory(failing):
    host, port = endpoint(failing.killed)
    response = post(failing, "killed", {})
    assert response.status_code == 502
    assert "retry-after" not in response.headers
    assert response.json()["message"] == (
        f"the replica of service killed at {host}:{port} (version cluster killed_v1) closed the connection before "
        "answering: it may have crashed or been killed for running out of memory; modelport service show -n killed "
        "names the cause, and its log the last lines before; retry the request")
