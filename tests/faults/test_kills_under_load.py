"""Replicas, Envoy and the control plane killed under load: how many requests fail, and how fast it heals."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from modelport import Webservice
from modelport.api import server
from tests.processes import process_group, replica_states
from tests.traffic import Traffic, bearer, status_code, wait_until

from .conftest import deploy, inference_config, status

CONCURRENCY = 4


def load_on(service, key: str) -> Traffic:
    """``CONCURRENCY`` threads scoring ``service`` with ``key``; outcomes by status code, "200" the good one."""
    return Traffic(service.scoring_uri, status_code, ok="200", threads=CONCURRENCY, headers=bearer(key),
                   body={"sleep": 0.01})


@pytest.fixture(scope="module")
def svc(ws, model):
    """Two replicas with a slow init() (1 s), so a replica routed before its init() finished would show."""
    service = deploy(ws, model, "fault-svc", replicas=2, variables={"INIT_DELAY_S": "1"})
    yield service
    service.delete()


def test_replicas_killed_repeatedly_lose_only_their_in_flight_requests(ws, svc, figures):
    key = svc.get_keys()[0]
    kills, recoveries = 3, []
    with load_on(svc, key) as load:
        assert load.wait_for_ok(50)
        for round_ in range(kills):
            victim = replica_states(ws, svc.name)[f"default-1/replica-{round_ % 2}"]
            os.kill(victim["pid"], signal.SIGKILL)
            killed_at = time.monotonic()
            # the replica's forked workers die with it: nothing keeps serving on its port
            assert wait_until(lambda v=victim: not process_group(v["pid"]), timeout=10), process_group(victim["pid"])
            with pytest.raises(httpx.TransportError):
                httpx.post(f"http://127.0.0.1:{victim['port']}/score", json={}, timeout=2)

            def replaced(v=victim, r=round_) -> bool:
                state = replica_states(ws, svc.name)[f"default-1/replica-{r % 2}"]
                return state["pid"] != v["pid"] and status(ws, svc.name).get("ready_replicas") == 2

            assert wait_until(replaced, timeout=30), status(ws, svc.name)
            recoveries.append(time.monotonic() - killed_at)
            assert load.wait_for_ok(50)
    figures(f"{kills} replica SIGKILLs at concurrency {CONCURRENCY}: {load.summary()}; "
            f"back to 2 ready replicas in {', '.join(f'{s:.1f}' for s in recoveries)} s")
    assert "404" not in load.counts, load.failure_log[:5]
    assert load.failed <= kills * CONCURRENCY, (load.summary(), load.failure_log[:10])
    assert status(ws, svc.name)["restarts"] == kills
    assert Webservice(ws, svc.name).state == "Healthy"


def test_a_killed_envoy_is_restarted_on_its_port_with_its_routes(ws, svc, figures):
    key = svc.get_keys()[0]
    frontend = ws._dir.root / "frontend"
    before = json.loads((frontend / "frontend.json").read_text())
    with load_on(svc, key) as load:
        assert load.wait_for_ok(50)
        os.kill(before["pid"], signal.SIGKILL)
        killed_at = time.monotonic()
        assert load.wait_for_ok(1, timeout=20), load.summary()
        recovered_s = time.monotonic() - killed_at
        assert load.wait_for_ok(50)
    after = json.loads((frontend / "frontend.json").read_text())
    figures(f"Envoy SIGKILL at concurrency {CONCURRENCY}: {load.summary()}; scoring again after {recovered_s:.1f} s")
    assert after["port"] == before["port"] and after["pid"] != before["pid"]
    assert set(load.counts) - {"200"} <= {"ConnectError", "RemoteProtocolError", "ReadError"}, load.failure_log[:5]
    assert wait_until(lambda: status(ws, svc.name).get("front_end") == "serving", timeout=10)


def test_the_front_end_cannot_be_stopped_or_reconfigured_by_others(ws, svc):
    frontend = ws._dir.root / "frontend"
    state = json.loads((frontend / "frontend.json").read_text())
    admin = frontend / "admin.sock"
    assert admin.is_socket() and admin.stat().st_mode & 0o777 == 0o600
    assert frontend.stat().st_mode & 0o777 == 0o700
    answer = httpx.post(f"http://127.0.0.1:{state['port']}/quitquitquit", timeout=5)
    assert answer.status_code == 404  # the listener serves the services only, no admin endpoint
    listening = {int(line.split()[1].split(":")[1], 16) for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                 if line.split()[3] == "0A" and line.split()[7] == str(os.getuid())}
    envoy_ports = {port for port in listening if _owned_by(state["pid"], port)}
    assert envoy_ports == {state["port"]}  # no TCP admin listener
    assert httpx.post(svc.scoring_uri, json={}, headers={"Authorization": f"Bearer {svc.get_keys()[0]}"},
                      timeout=10).status_code == 200


def _owned_by(pid: int, port: int) -> bool:
    """Whether ``pid`` holds the listening socket of TCP ``port`` (through /proc/<pid>/fd)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
            inodes.add(fields[9])
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def test_rolling_update_under_load_fails_no_request(ws, svc, figures):
    key = svc.get_keys()[0]
    with load_on(svc, key) as load:
        assert load.wait_for_ok(50)
        started = time.monotonic()
        svc.update(inference_config=inference_config(INIT_DELAY_S="1", APP_VERSION="2"))
        svc.wait_for_deployment(timeout_sec=120)

        def answers_v2() -> bool:
            response = httpx.post(svc.scoring_uri, json={}, headers={"Authorization": f"Bearer {key}"}, timeout=10)
            return response.json()["version"] == "2"

        assert wait_until(answers_v2, timeout=30)
        switched_s = time.monotonic() - started
        only_new = {"default-2/replica-0", "default-2/replica-1"}
        assert wait_until(lambda: set(replica_states(ws, svc.name)) == only_new, timeout=30)
        assert load.wait_for_ok(50)
    figures(f"rolling update at concurrency {CONCURRENCY}: {load.summary()}; new version answering after "
            f"{switched_s:.1f} s")
    assert load.failed == 0, (load.summary(), load.failure_log[:5])


def test_control_plane_killed_under_load_fails_no_request_and_is_re_adopted(ws, svc, figures):
    key = svc.get_keys()[0]
    replicas_before = replica_states(ws, svc.name)
    with load_on(svc, key) as load:
        assert load.wait_for_ok(50)
        old = server.read_info(ws._dir)["pid"]
        os.kill(old, signal.SIGKILL)
        assert load.wait_for_ok(100)  # Envoy and the replicas serve without a control plane
        started = time.monotonic()
        assert Webservice(ws, svc.name).state == "Healthy"  # the client starts a new control plane
        adopted_s = time.monotonic() - started
        assert server.read_info(ws._dir)["pid"] != old
        assert load.wait_for_ok(100)
    figures(f"control plane SIGKILL at concurrency {CONCURRENCY}: {load.summary()}; new control plane answering "
            f"in {adopted_s:.1f} s")
    assert load.failed == 0, (load.summary(), load.failure_log[:5])
    replicas_after = replica_states(ws, svc.name)
    assert {k: (v["pid"], v["port"]) for k, v in replicas_after.items()} == \
        {k: (v["pid"], v["port"]) for k, v in replicas_before.items()}  # re-adopted, not started again
