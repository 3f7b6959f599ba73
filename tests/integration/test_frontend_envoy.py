"""The front end for real: one Envoy process, real replica processes, real HTTP through both."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from modelport.errors import Conflict, InvalidInput
from modelport.frontend.config import VERSION_HEADER, ServiceRoute, VersionRoute, validation_bootstrap
from modelport.frontend.envoy import FrontEnd, FrontEndError, validate_config
from modelport.frontend.tokens import TokenSigner
from tests.conftest import script

KEYS = ["primary-key-0001", "secondary-key-0002"]


@pytest.fixture(scope="module")
def replicas(start_runtime):
    """Ready replicas started side by side: a, c and d serve version "v1", b serves "v2"; d gets killed."""
    started = {name: start_runtime("--entry-script", script("score_version.py"), env={"VERSION": version},
                                   ready=False)
               for name, version in (("a", "v1"), ("b", "v2"), ("c", "v1"), ("d", "v1"))}
    for replica in started.values():
        replica.wait_ready()
    return started


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    front_end = FrontEnd(tmp_path_factory.mktemp("frontend"))
    front_end.start()
    yield front_end
    front_end.stop()


def endpoint(replica) -> tuple[str, int]:
    host, port = replica.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def service(name: str, *versions: VersionRoute, auth: str = "none", keys: list[str] | None = None,
            timeout_ms: int = 60000) -> ServiceRoute:
    return ServiceRoute(name, list(versions), auth, keys or [], timeout_ms)  # type: ignore[arg-type]


def only(name: str, *replicas, auth: str = "none", keys: list[str] | None = None) -> ServiceRoute:
    return service(name, VersionRoute("v1", 100, [endpoint(r) for r in replicas]), auth=auth, keys=keys)


def score(front: FrontEnd, name: str, body: dict | None = None, token: str | None = None,
          timeout: float = 30) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{front.url}/api/v1/service/{name}/score", json=body or {}, headers=headers, timeout=timeout)


def test_scores_swagger_and_health_through_envoy(front, replicas):
    front.apply([only("plain", replicas["a"])])
    response = score(front, "plain", {"x": 1})
    assert response.status_code == 200
    assert response.json()["version"] == "v1"
    assert response.headers[VERSION_HEADER] == "v1"
    swagger = httpx.get(f"{front.url}/api/v1/service/plain/swagger.json", params={"version": 3})
    assert swagger.status_code == 200
    assert swagger.json()["openapi"].startswith("3.")
    health = httpx.get(f"{front.url}/api/v1/service/plain")
    assert (health.status_code, health.text) == (200, "Healthy")


def test_unknown_service_is_a_json_404(front, replicas):
    front.apply([only("plain", replicas["a"])])
    for path in ("/api/v1/service/nope/score", "/api/v1/service/plain/metrics", "/"):
        response = httpx.post(f"{front.url}{path}")
        assert response.status_code == 404
        assert response.json()["message"].startswith(f"no service at {path}")
        assert VERSION_HEADER not in response.headers


def test_key_auth_takes_either_key_and_a_new_key_stops_the_old_one_at_once(front, replicas):
    front.apply([only("keyed", replicas["a"], auth="key", keys=KEYS)])
    missing = score(front, "keyed")
    assert missing.status_code == 401
    assert "Authorization: Bearer <key>" in missing.json()["message"]
    assert VERSION_HEADER not in missing.headers
    assert score(front, "keyed", token="wrong-key-00000").status_code == 401
    for key in KEYS:
        response = score(front, "keyed", token=key)
        assert response.status_code == 200
        assert response.json()["authorization"] is None  # the key is not passed on to the replica
    front.apply([only("keyed", replicas["a"], auth="key", keys=["new-primary-0003", KEYS[1]])])
    assert score(front, "keyed", token=KEYS[0]).status_code == 401
    assert score(front, "keyed", token="new-primary-0003").status_code == 200
    assert score(front, "keyed", token=KEYS[1]).status_code == 200


def test_token_auth_takes_a_valid_token_only(front, replicas, tmp_path):
    front.apply([only("tokened", replicas["a"], auth="token"), only("keyed", replicas["a"], auth="key", keys=KEYS)])
    token, refresh_by = front.signer.issue("tokened", 600)
    assert time.time() < refresh_by < time.time() + 600
    assert score(front, "tokened", token=token).status_code == 200
    expired, _ = front.signer.issue("tokened", 60, now=time.time() - 3600)
    other_signer, _ = TokenSigner(tmp_path).issue("tokened", 600)
    claims = {"iss": "modelport", "aud": "tokened", "iat": int(time.time()), "exp": int(time.time()) + 600}
    forged = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), "ES256", headers={"kid": front.signer.kid})
    for_other_service, _ = front.signer.issue("keyed", 600)
    refusals = [(None, "Jwt is missing"), (expired, "Jwt is expired"), (forged, "Jwt verification fails"),
                (other_signer, "Jwks doesn't have key"), (for_other_service, "Audiences in Jwt are not allowed"),
                (KEYS[0], "Jwt is not in the form")]
    for bad, reason in refusals:
        response = score(front, "tokened", token=bad)
        assert response.status_code == 401, reason
        message = response.json()["message"]
        assert "Authorization: Bearer <token>" in message and reason in message
    assert score(front, "keyed", token=token).status_code == 401  # a token is not a key


def test_auth_off_needs_no_header(front, replicas):
    front.apply([only("open", replicas["a"])])
    response = score(front, "open")
    assert response.status_code == 200
    assert response.json()["auth_kind"] is None  # the front end's internal header does not reach the replica


def test_weights_split_traffic_and_the_header_names_the_version(front, replicas):
    a, b = endpoint(replicas["a"]), endpoint(replicas["b"])
    front.apply([service("split", VersionRoute("v1", 100, [a]), VersionRoute("v2", 0, [b]))])
    assert {score(front, "split").json()["version"] for _ in range(30)} == {"v1"}
    front.apply([service("split", VersionRoute("v1", 50, [a]), VersionRoute("v2", 50, [b]))])
    seen: Counter[str] = Counter()
    for _ in range(100):
        response = score(front, "split")
        assert response.headers[VERSION_HEADER] == response.json()["version"]
        seen[response.json()["version"]] += 1
    assert seen["v1"] >= 20 and seen["v2"] >= 20, seen


def test_replacing_a_version_under_load_fails_no_request(front, replicas):
    a, b = endpoint(replicas["a"]), endpoint(replicas["b"])
    front.apply([service("rolling", VersionRoute("v1", 100, [a]))])
    stop = threading.Event()
    statuses: list[int] = []

    def load() -> None:
        with httpx.Client() as client:
            while not stop.is_set():
                statuses.append(client.post(f"{front.url}/api/v1/service/rolling/score", json={}).status_code)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(3):  # each switch adds one cluster and removes the other
            front.apply([service("rolling", VersionRoute("v2", 100, [b]))])
            front.apply([service("rolling", VersionRoute("v1", 100, [a]))])
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert statuses and set(statuses) == {200}, Counter(statuses)


def test_least_request_uses_both_replicas_and_stats_count_in_flight(front, replicas):
    front.apply([only("pair", replicas["a"], replicas["c"])])
    with ThreadPoolExecutor(4) as pool:
        slow = []
        for _ in range(4):  # each replica runs one at a time and queues one for at most 500 ms
            slow.append(pool.submit(score, front, "pair", {"sleep": 0.4}))
            time.sleep(0.05)
        in_flight = front.stats("pair")["v1"]
        responses = [future.result() for future in slow]
    assert [response.status_code for response in responses] == [200] * 4
    assert len({response.json()["pid"] for response in responses}) == 2
    assert in_flight["upstream_rq_active"] == 4, in_flight


def test_a_removed_replica_gets_no_more_traffic(front, replicas):
    front.apply([only("pair", replicas["a"], replicas["c"])])
    front.apply([only("pair", replicas["a"])])
    worker_of_a = httpx.post(f"{replicas['a'].url}/score", json={}).json()["pid"]
    assert {score(front, "pair").json()["pid"] for _ in range(20)} == {worker_of_a}


def test_a_replica_that_refuses_connections_is_retried_elsewhere(front, replicas):
    dead = ("127.0.0.1", _closed_port())
    front.apply([service("retry", VersionRoute("v1", 100, [dead, endpoint(replicas["a"])]))])
    assert [score(front, "retry").status_code for _ in range(10)] == [200] * 10


def test_replica_killed_mid_request_is_a_json_502_then_503(front, replicas):
    victim = replicas["d"]
    front.apply([only("fragile", victim)])
    worker_pid = score(front, "fragile").json()["pid"]
    result: dict[str, httpx.Response] = {}
    request = threading.Thread(target=lambda: result.update(r=score(front, "fragile", {"sleep": 10})))
    request.start()
    _wait_for(lambda: front.stats("fragile")["v1"]["upstream_rq_active"] == 1)
    victim.proc.send_signal(signal.SIGKILL)
    os.kill(worker_pid, signal.SIGKILL)
    request.join(10)
    assert result["r"].status_code == 502
    assert "closed the connection before answering" in result["r"].json()["message"]
    gone = score(front, "fragile")  # still listed, but nothing listens: every try is refused
    assert gone.status_code == 503
    assert "no reachable replica" in gone.json()["message"]
    front.apply([only("fragile")])
    empty = score(front, "fragile")
    assert empty.status_code == 503
    assert empty.json() == {"message": "service fragile has no ready replica"}


def test_route_timeout_is_a_json_504(front, replicas):
    front.apply([service("slow", VersionRoute("v1", 100, [endpoint(replicas["b"])]), timeout_ms=100)])
    started = time.monotonic()
    response = score(front, "slow", {"sleep": 2.5})
    assert response.status_code == 504
    assert time.monotonic() - started < 2.4  # scoring_timeout_ms + the front end's margin
    assert response.json() == {"message": "service slow did not answer in time"}
    _wait_for(lambda: httpx.post(f"{replicas['b'].url}/score", json={}).status_code == 200)  # run() finished


def test_invalid_config_is_refused_and_the_old_one_keeps_serving(front, replicas):
    front.apply([only("steady", replicas["a"])])
    rds = (front.xds_dir / "rds.yaml").read_text()
    bad_weights = service("steady", VersionRoute("v1", 60, [endpoint(replicas["a"])]))
    with pytest.raises(InvalidInput, match="add up to 60"):
        front.apply([bad_weights])
    with pytest.raises(InvalidInput, match="endpoint"):
        front.apply([service("steady", VersionRoute("v1", 100, [("localhost", 80)]))])
    assert (front.xds_dir / "rds.yaml").read_text() == rds
    assert score(front, "steady").status_code == 200


def test_only_what_changed_is_written(front, replicas):
    front.apply([only("steady", replicas["a"])])
    written = {path: path.read_text() for path in front.xds_dir.rglob("*.yaml")}
    front.apply([only("steady", replicas["a"])])
    assert {path: path.read_text() for path in front.xds_dir.rglob("*.yaml")} == written
    front.apply([only("steady", replicas["a"], replicas["c"])])  # a new replica: its endpoints file only
    changed = {path.name for path in front.xds_dir.rglob("*.yaml") if path.read_text() != written[path]}
    assert changed == {"steady_v1.yaml"}


def test_envoy_validation_accepts_generated_configs_and_refuses_a_broken_one(tmp_path):
    jwks = TokenSigner(tmp_path).jwks()
    services = [only("keyed", auth="key", keys=KEYS), only("tokened", auth="token"), only("open")]
    config = validation_bootstrap(services, 8080, jwks)
    validate_config(config, tmp_path / "ok.yaml")
    config["static_resources"]["clusters"][0]["lb_policy"] = "NO_SUCH_POLICY"
    with pytest.raises(FrontEndError, match="envoy refused the configuration:.*NO_SUCH_POLICY"):
        validate_config(config, tmp_path / "bad.yaml")


def test_a_restarted_controller_adopts_the_running_envoy(front, replicas):
    front.apply([only("plain", replicas["a"])])
    again = FrontEnd(front.state_dir)
    again.start()
    assert (again.pid, again.url, again.admin_socket) == (front.pid, front.url, front.admin_socket)
    again.apply([only("plain", replicas["a"]), only("other", replicas["b"])])
    assert score(front, "other").json()["version"] == "v2"


def test_a_crashed_envoy_is_named_and_restarts_on_the_same_port(front, replicas):
    front.apply([only("plain", replicas["a"])])
    port, pid = front.port, front.pid
    os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: front._process.poll() is not None)
    with pytest.raises(FrontEndError, match=f"envoy \\(pid {pid}\\) does not answer.*call start\\(\\) again"):
        front.apply([only("plain", replicas["b"])])
    front.start()
    assert (front.port, front.pid != pid) == (port, True)
    front.apply([only("plain", replicas["b"])])
    assert score(front, "plain").json()["version"] == "v2"


def test_a_port_in_use_is_a_clear_error_and_a_stopped_front_end_keeps_its_port(front, tmp_path):
    blocked = FrontEnd(tmp_path / "blocked", port=front.port)
    try:
        with pytest.raises(Conflict, match=f"port {front.port} .* already in use"):
            blocked.start()
    finally:
        blocked.stop()  # should it have started after all
    second = FrontEnd(tmp_path / "second")
    second.start()
    port = second.port
    second.stop()
    assert second.pid == 0
    again = FrontEnd(tmp_path / "second")
    again.start()
    try:
        assert again.port == port
        assert httpx.get(f"{again.url}/api/v1/service/none/score").status_code == 404
    finally:
        again.stop()


def _closed_port() -> int:
    """A port nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
