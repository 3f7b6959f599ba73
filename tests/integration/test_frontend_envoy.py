"""The front end for real: one Envoy process, real replica processes, real HTTP through both."""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from modelport.errors import Conflict, InvalidInput
from modelport.frontend.config import VERSION_HEADER, validation_bootstrap
from modelport.frontend.envoy import FrontEnd, FrontEndError, validate_config
from modelport.frontend.routes import ServiceRoute, VersionRoute
from modelport.frontend.tokens import TokenSigner
from tests.traffic import Traffic, wait_until

KEYS = ["primary-key-0001", "secondary-key-0002"]
HELD_AT_MOST = 12  # requests held at once in the least-request test (each replica runs up to 16 at once)

# Says which version and process answered and which credentials reached it. A request {"gate": name}
# waits in run() until the test opens that gate, after leaving a file that says which worker holds it:
# a request's place and lifetime are decided by the test, not by a sleep.
GATED_SCRIPT = """
import json, os, time, uuid
from pathlib import Path

GATES = Path(os.environ["GATE_DIR"])


def init():
    pass


def run(data, request_headers):
    body = json.loads(data) if data else {}
    gate = body.get("gate") if isinstance(body, dict) else None
    if gate:
        (GATES / f"entered-{gate}-{os.getpid()}-{uuid.uuid4().hex}").touch()
        deadline = time.monotonic() + 60
        while not (GATES / f"open-{gate}").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    return {"version": os.environ.get("VERSION"), "pid": os.getpid(),
            "authorization": request_headers.get("Authorization"),
            "auth_kind": request_headers.get("X-Modelport-Auth")}
"""


class Gate:
    """One gate of the replicas' ``run()``: which workers hold a request at it, and opening it."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.name = uuid.uuid4().hex[:12]

    def body(self) -> dict:
        return {"gate": self.name}

    def held_by(self) -> list[int]:
        """The worker pid of each request that reached ``run()`` at this gate."""
        return sorted(int(p.name.split("-")[2]) for p in self.directory.glob(f"entered-{self.name}-*"))

    def open(self) -> None:
        (self.directory / f"open-{self.name}").touch()


@pytest.fixture(scope="module")
def gate_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("gates")


@pytest.fixture
def gate(gate_dir):
    opened = Gate(gate_dir)
    yield opened
    opened.open()  # nothing stays held in a replica after the test


@pytest.fixture(scope="module")
def replicas(start_runtime, gate_dir):
    """Ready replicas started side by side: a, c and d serve version "v1", b serves "v2"; d gets killed."""
    entry = gate_dir / "score_gated.py"
    entry.write_text(GATED_SCRIPT)
    started = {name: start_runtime("--entry-script", str(entry), ready=False,
                                   env={"VERSION": version, "GATE_DIR": str(gate_dir),
                                        "MODELPORT_MAX_CONCURRENT_REQUESTS": "16"})
               for name, version in (("a", "v1"), ("b", "v2"), ("c", "v1"), ("d", "v1"))}
    for replica in started.values():
        replica.wait_ready()
    return started


def worker_of(replica) -> int:
    """The pid of the worker that runs ``run()`` in ``replica`` (asked directly, not through Envoy)."""
    return httpx.post(f"{replica.url}/score", json={}, timeout=10).json()["pid"]


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

    def outcome(response: httpx.Response) -> str:
        if response.status_code != 200:
            return f"{response.status_code} {response.text[:100]}"
        named, answered = response.headers.get(VERSION_HEADER), response.json()["version"]
        return "ok" if named == answered else f"{VERSION_HEADER} {named!r} from a {answered!r} replica"

    with Traffic(f"{front.url}/api/v1/service/rolling/score", outcome, threads=2) as traffic:
        assert traffic.wait_for_ok(20)
        for _ in range(3):  # each switch adds one cluster and removes the other
            front.apply([service("rolling", VersionRoute("v2", 100, [b]))])
            assert traffic.wait_for_ok(20)
            front.apply([service("rolling", VersionRoute("v1", 100, [a]))])
            assert traffic.wait_for_ok(20)
    assert traffic.failures() == {}, traffic.failures()


def test_least_request_uses_both_replicas_and_stats_count_in_flight(front, replicas, gate):
    """Envoy's least-request picks the less busy of two replicas drawn at random (the same one may be drawn
    twice): a replica holding requests still gets some, the idle one most. Requests are held in ``run()``
    until every one is counted, so the in-flight figure is exact, whatever the machine's load."""
    front.apply([only("pair", replicas["a"], replicas["c"])])
    workers = {worker_of(replicas["a"]), worker_of(replicas["c"])}
    held = []
    with ThreadPoolExecutor(HELD_AT_MOST) as pool:
        try:
            # hold requests one after another until both replicas hold one: each new request goes to the
            # idle replica with probability 3/4, so 12 all on one replica would be a 1-in-4-million draw
            while len(set(gate.held_by())) < 2 and len(held) < HELD_AT_MOST:
                held.append(pool.submit(score, front, "pair", gate.body()))
                _wait_for(lambda: len(gate.held_by()) == len(held))
            in_flight = front.load("pair", "v1")
        finally:
            gate.open()
        responses = [future.result() for future in held]
    assert set(gate.held_by()) == workers, f"{len(held)} requests held by {Counter(gate.held_by())}"
    assert in_flight == (len(held), 0), in_flight  # (sent to replicas, waiting in Envoy)
    assert [response.status_code for response in responses] == [200] * len(held)
    assert sorted(response.json()["pid"] for response in responses) == gate.held_by()
    _wait_for(lambda: front.load("pair", "v1") == (0, 0))


def test_a_removed_replica_gets_no_more_traffic(front, replicas):
    front.apply([only("pair", replicas["a"], replicas["c"])])
    front.apply([only("pair", replicas["a"])])
    worker_of_a = httpx.post(f"{replicas['a'].url}/score", json={}).json()["pid"]
    assert {score(front, "pair").json()["pid"] for _ in range(20)} == {worker_of_a}


def test_a_replica_that_refuses_connections_is_retried_elsewhere(front, replicas):
    dead = ("127.0.0.1", _closed_port())
    front.apply([service("retry", VersionRoute("v1", 100, [dead, endpoint(replicas["a"])]))])
    assert [score(front, "retry").status_code for _ in range(10)] == [200] * 10


def test_replica_killed_mid_request_is_a_json_502_then_503(front, replicas, gate):
    victim = replicas["d"]
    front.apply([only("fragile", victim)])
    worker_pid = worker_of(victim)
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(score, front, "fragile", gate.body())
        _wait_for(lambda: gate.held_by() == [worker_pid])  # the request is inside run()
        assert front.load("fragile", "v1")[0] == 1
        victim.proc.send_signal(signal.SIGKILL)
        os.kill(worker_pid, signal.SIGKILL)
        answer = held.result(timeout=30)
    assert answer.status_code == 502
    assert "closed the connection before answering" in answer.json()["message"]
    gone = score(front, "fragile")  # still listed, but nothing listens: every try is refused
    assert gone.status_code == 503
    assert "no reachable replica" in gone.json()["message"]
    front.apply([only("fragile")])
    empty = score(front, "fragile")
    assert empty.status_code == 503
    assert empty.json() == {"message": "service fragile has no ready replica: 0 ready replicas for the version its "
                                       "request was routed to (cluster fragile_v1); it is starting, being updated, or "
                                       "its replicas failed (modelport service show -n fragile says which); retry "
                                       "after 10 s"}
    assert empty.headers["retry-after"] == "10"


def test_route_timeout_is_a_json_504(front, replicas, gate):
    front.apply([service("slow", VersionRoute("v1", 100, [endpoint(replicas["b"])]), timeout_ms=100)])
    response = score(front, "slow", gate.body())  # run() cannot finish: its gate opens only after the test
    assert response.status_code == 504
    assert response.json() == {"message": "service slow did not answer in time"}
    assert gate.held_by() == [worker_of(replicas["b"])]  # the replica had it; the front end stopped waiting


def test_invalid_config_is_refused_and_the_old_one_keeps_serving(front, replicas):
    front.apply([only("steady", replicas["a"])])
    rds = (front.xds_dir / "rds.json").read_text()
    bad_weights = service("steady", VersionRoute("v1", 60, [endpoint(replicas["a"])]))
    with pytest.raises(InvalidInput, match="add up to 60"):
        front.apply([bad_weights])
    with pytest.raises(InvalidInput, match="endpoint"):
        front.apply([service("steady", VersionRoute("v1", 100, [("localhost", 80)]))])
    assert (front.xds_dir / "rds.json").read_text() == rds
    assert score(front, "steady").status_code == 200


def test_only_what_changed_is_written(front, replicas):
    front.apply([only("steady", replicas["a"])])
    written = {path: path.read_text() for path in front.xds_dir.rglob("*.json")}
    front.apply([only("steady", replicas["a"])])
    assert {path: path.read_text() for path in front.xds_dir.rglob("*.json")} == written
    front.apply([only("steady", replicas["a"], replicas["c"])])  # a new replica: its endpoints file only
    changed = {path.name for path in front.xds_dir.rglob("*.json") if path.read_text() != written[path]}
    assert changed == {"steady_v1.json"}


def test_envoy_validation_accepts_generated_configs_and_refuses_a_broken_one(tmp_path):
    jwks = TokenSigner(tmp_path).jwks()
    services = [only("keyed", auth="key", keys=KEYS), only("tokened", auth="token"), only("open")]
    config = validation_bootstrap(services, 8080, jwks)
    validate_config(config, tmp_path / "ok.json")
    config["static_resources"]["clusters"][0]["lb_policy"] = "NO_SUCH_POLICY"
    with pytest.raises(FrontEndError, match="envoy refused the configuration:.*NO_SUCH_POLICY"):
        validate_config(config, tmp_path / "bad.json")


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
    assert wait_until(condition, timeout, interval=0.02), "condition not met in time"
