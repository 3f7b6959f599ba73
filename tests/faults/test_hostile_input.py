"""Hostile clients and bodies, failing services and what lies on disk: none may take a service down or leak."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from modelport import Webservice
from tests.processes import process_group, replica_states
from tests.traffic import wait_until

from .conftest import deploy, status


@pytest.fixture(scope="module")
def svc(ws, model):
    service = deploy(ws, model, "hostile-svc", replicas=1)
    yield service
    service.delete()


def score(service, body: bytes | None = None, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {service.get_keys()[0]}", "Content-Type": "application/json"}
    return httpx.post(service.scoring_uri, content=body if body is not None else b"{}", headers=headers,
                      timeout=30, **kwargs)


def test_a_deeply_nested_body_fails_alone_and_the_replica_keeps_serving(svc):
    """This app's run() parses the body itself (json.loads raises RecursionError): a 500 for that request,
    and the run thread lives on. (Where the runtime parses the JSON, the same body is a 400 naming the
    nesting limit: tests/integration.)"""
    nested = b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for _ in range(3):  # one such request once disabled the replica's run thread for good
        refused = score(svc, nested)
        assert (refused.status_code, refused.headers["x-ms-run-function-failed"]) == (500, "True"), refused.text
    assert score(svc).status_code == 200


def test_an_oversized_body_is_always_a_413_naming_the_limit(svc, figures):
    limit = 104857600
    body = b"x" * (limit * 2)
    outcomes = []
    for _ in range(4):
        try:
            response = score(svc, body)
            outcomes.append((response.status_code, response.json()["message"]))
        except httpx.TransportError as err:  # the front end may close the connection after its answer
            outcomes.append((type(err).__name__, ""))
    figures(f"4 x 200 MB bodies: {[o[0] for o in outcomes]}")
    assert [o[0] for o in outcomes] == [413] * 4, outcomes
    assert all(f"{limit} bytes" in message for _, message in outcomes)
    assert score(svc).status_code == 200


def _open(service) -> socket.socket:
    url = urlparse(service.scoring_uri)
    return socket.create_connection((url.hostname, url.port), timeout=20)


def _closed_within(sock: socket.socket, timeout: float) -> tuple[bool, bytes]:
    """Whether the server ended the connection (EOF, maybe after a reply) within ``timeout`` s, and its reply."""
    sock.settimeout(timeout)
    received = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(4096)
            if not chunk:
                return True, received
            received += chunk
    except ConnectionResetError:
        return True, received
    except TimeoutError:
        return False, received
    return False, received


def test_slow_clients_are_cut_off_by_the_front_end(svc, figures):
    """Headers must arrive within 2 s and the whole request within 3 s here (the fault workspace's limits)."""
    path = urlparse(svc.scoring_uri).path
    slow_headers = [_open(svc) for _ in range(5)]
    for sock in slow_headers:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\n".encode())  # never finishes the headers
    slow_bodies = [_open(svc) for _ in range(5)]
    for sock in slow_bodies:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     f"Authorization: Bearer {svc.get_keys()[0]}\r\nContent-Length: 1000\r\n\r\n{{".encode())
    started = time.monotonic()
    results = [_closed_within(sock, 15) for sock in slow_headers + slow_bodies]
    figures(f"10 slow connections closed after {time.monotonic() - started:.1f} s")
    assert all(closed for closed, _ in results), results
    assert all(b" 408 " in reply.split(b"\r\n")[0] for _, reply in results if reply), results
    for sock in slow_headers + slow_bodies:
        sock.close()
    assert score(svc).status_code == 200


def test_secrets_on_disk_are_readable_by_their_owner_only(ws, svc, model):
    token_svc = deploy(ws, model, "token-modes", replicas=1, auth_enabled=False, token_auth_enabled=True)
    try:
        root = ws._dir.root
        secrets = [svc.get_keys()[0].encode(), b"PRIVATE KEY", ws._dir.token().encode()]
        holders = []
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink() and path.stat().st_size < 50_000_000:
                content = path.read_bytes()
                if any(secret in content for secret in secrets):
                    holders.append(path)
        names = {p.relative_to(root).as_posix() for p in holders}
        assert {"token", "frontend/xds/rds.json", "frontend/keys/token-signing-key.pem"} <= names, names
        assert any(name.startswith("workspace.db") for name in names), names
        for path in holders:
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path} is {oct(path.stat().st_mode)}"
            for folder in path.relative_to(root).parents:
                mode = stat.S_IMODE((root / folder).stat().st_mode)
                assert mode & 0o077 == 0, f"{root / folder} is {oct(mode)}"
    finally:
        token_svc.delete()


def test_replicas_listen_on_loopback_only(ws, svc):
    port = replica_states(ws, svc.name)["default-1/replica-0"]["port"]
    listeners = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                 if line.split()[3] == "0A" and int(line.split()[1].split(":")[1], 16) == port]
    assert [fields[1].split(":")[0] for fields in listeners] == ["0100007F"]  # 127.0.0.1
    assert not [line for line in Path("/proc/net/tcp6").read_text().splitlines()[1:]
                if line.split()[3] == "0A" and int(line.split()[1].split(":")[1], 16) == port]


def test_a_service_whose_init_fails_is_not_restarted(ws, model):
    service = deploy_failing(ws, model)
    try:
        first = replica_states(ws, service.name)["default-1/replica-0"]
        assert not wait_until(lambda: replica_states(ws, service.name)["default-1/replica-0"]["pid"] != first["pid"],
                              timeout=4)  # a crashed replica would have been restarted after 0.5 s
        assert status(ws, service.name)["restarts"] == 0
        assert "not restarted until the service is updated" in Webservice(ws, service.name).serialize()["error"]
    finally:
        service.delete()


def deploy_failing(ws, model) -> Webservice:
    from modelport.sdk.webservice import WebserviceError

    with contextlib.suppress(WebserviceError):
        deploy(ws, model, "init-fails", replicas=1, variables={"FAIL_INIT": "1"})
    service = Webservice(ws, "init-fails")
    assert service.state == "Failed"
    return service


def test_deleting_a_service_with_a_stuck_request_leaves_no_process(ws, model):
    service = deploy(ws, model, "stuck-svc", replicas=1, auth_enabled=False)
    replica = replica_states(ws, service.name)["default-1/replica-0"]
    stuck = threading.Thread(target=lambda: _ignore(httpx.post, service.scoring_uri, json={"sleep": 600},
                                                    timeout=120), daemon=True)
    stuck.start()
    assert wait_until(lambda: b"modelport_requests_in_flight 1.0" in httpx.get(
        f"http://127.0.0.1:{replica['port']}/metrics", timeout=5).content, timeout=20)
    service.delete()
    # the stuck worker died with its replica (SIGKILLed with its group; gone once the kernel has reaped it)
    assert wait_until(lambda: process_group(replica["pid"]) == [], timeout=10), process_group(replica["pid"])
    with pytest.raises(httpx.TransportError):
        httpx.post(f"http://127.0.0.1:{replica['port']}/score", json={}, timeout=2)


def _ignore(call, *args, **kwargs) -> None:
    with contextlib.suppress(httpx.HTTPError):
        call(*args, **kwargs)


def test_the_workspace_folder_is_private(ws):
    assert stat.S_IMODE(ws._dir.root.stat().st_mode) == 0o700
    assert os.stat(ws._dir.token_path).st_mode & 0o077 == 0
