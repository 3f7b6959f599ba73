"""What the runtime does better than the reference: limits, probes, metrics, start-up and shutdown.

A slow run() here blocks until the test creates a file (``score_hostile.py``'s "block"), so
every wait is for an observable condition (bounded), never a sleep standing in for one.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time

import httpx
import pytest

from tests.conftest import script

JSON = {"Content-Type": "application/json"}
BOUND_S = 30


def score(server, body: bytes, timeout: float = 30) -> httpx.Response:
    return httpx.post(f"{server.url}/score", content=body, headers=JSON, timeout=timeout)


def block(release) -> bytes:
    """A request whose run() returns only once the file ``release`` exists."""
    return json.dumps({"kind": "block", "file": str(release)}).encode()


def wait_for(condition, what: str):
    deadline = time.monotonic() + BOUND_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.01)


def gauge(server, name: str) -> float:
    match = re.search(rf"^{name} ([\d.]+)$", httpx.get(f"{server.url}/metrics").text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def in_background(server, body: bytes) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def send():
        result["response"] = score(server, body)

    thread = threading.Thread(target=send)
    thread.start()
    return thread, result


def test_oversize_body_is_413_and_the_server_keeps_serving(start_runtime):
    server = start_runtime("--entry-script", script("score_plain.py"), env={"MODELPORT_MAX_BODY_BYTES": "1000"})
    response = score(server, b'{"data": "' + b"x" * 5000 + b'"}')
    assert response.status_code == 413
    assert "MODELPORT_MAX_BODY_BYTES" in response.json()["message"]
    assert score(server, b'{"a": 1}').status_code == 200


def test_chunked_oversize_body_is_413(start_runtime):
    server = start_runtime("--entry-script", script("score_plain.py"), env={"MODELPORT_MAX_BODY_BYTES": "1000"})

    def chunks():
        for _ in range(10):
            yield b"x" * 500

    response = httpx.post(f"{server.url}/score", content=chunks(), headers=JSON)
    assert response.status_code == 413


def test_scoring_timeout_is_504_and_the_worker_keeps_serving(start_runtime, tmp_path):
    server = start_runtime("--entry-script", script("score_hostile.py"), env={"SCORING_TIMEOUT_MS": "300"})
    release = tmp_path / "release"
    response = score(server, block(release))  # run() cannot end by itself: the 504 is the timeout's
    assert response.status_code == 504
    assert response.json() == {"message": "Scoring timeout after 300 ms"}
    assert response.headers["x-ms-run-function-failed"] == "True"
    after = score(server, b'{"a": 1}')
    assert after.status_code == 200  # served while release does not exist: the timed-out run() did not hold it up
    assert not release.exists()


def test_busy_replica_answers_503_after_the_queue_wait(start_runtime, tmp_path):
    server = start_runtime("--entry-script", script("score_hostile.py"),
                           env={"MODELPORT_MAX_CONCURRENT_REQUESTS": "1", "MODELPORT_MAX_QUEUE_WAIT_MS": "200"})
    release = tmp_path / "release"
    slow, result = in_background(server, block(release))
    wait_for(lambda: gauge(server, "modelport_requests_in_flight") == 1, "the slow request runs")
    response = score(server, b'{"a": 1}')
    release.touch()
    slow.join()
    assert result["response"].status_code == 200
    assert response.status_code == 503
    assert "busy" in response.json()["message"]
    assert score(server, b'{"a": 1}').status_code == 200


def test_queued_request_runs_when_a_slot_frees_up(start_runtime, tmp_path):
    server = start_runtime("--entry-script", script("score_hostile.py"),
                           env={"MODELPORT_MAX_CONCURRENT_REQUESTS": "1", "MODELPORT_MAX_QUEUE_WAIT_MS": "30000"})
    release = tmp_path / "release"
    slow, _ = in_background(server, block(release))
    wait_for(lambda: gauge(server, "modelport_requests_in_flight") == 1, "the slow request runs")
    queued, result = in_background(server, b'{"a": 1}')
    wait_for(lambda: gauge(server, "modelport_requests_queued") == 1, "the second request waits in the queue")
    release.touch()
    slow.join()
    queued.join()
    assert result["response"].status_code == 200


def test_metrics_count_requests_and_failures(start_runtime):
    server = start_runtime("--entry-script", script("score_plain.py"))
    score(server, b'{"a": 1}')
    score(server, b'{"kind": "boom"}')
    text = httpx.get(f"{server.url}/metrics").text
    assert 'modelport_requests_total{route="/score",status="200"} 1.0' in text
    assert 'modelport_requests_total{route="/score",status="500"} 1.0' in text
    assert "modelport_run_failures_total 1.0" in text
    assert 'modelport_request_duration_seconds_count{route="/score"} 2.0' in text


def test_readiness_waits_for_init_and_nothing_hangs(start_runtime, tmp_path):
    release = tmp_path / "release"
    server = start_runtime("--entry-script", script("score_slow_init.py"), "--workers", "2",
                           env={"RELEASE_INIT": str(release)}, ready=False)
    server.wait_listening()
    assert httpx.get(f"{server.url}/-/live", timeout=2).status_code == 200
    not_ready = httpx.get(f"{server.url}/-/ready", timeout=2)
    assert (not_ready.status_code, not_ready.headers["retry-after"]) == (503, "5")
    assert httpx.get(f"{server.url}/", timeout=2).status_code == 503  # GET / too: clients poll it before scoring
    early = score(server, b"{}", timeout=2)
    assert early.status_code == 503
    assert "init() has not finished" in early.json()["message"]
    release.touch()
    server.wait_ready()
    assert score(server, b"{}").json() == {"ok": True}


def test_init_failure_exits_nonzero_with_traceback_and_model_tree(start_runtime, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"0")
    server = start_runtime("--entry-script", script("score_init_fail.py"), "--model", f"mymodel:2={model}",
                           ready=False)
    assert server.proc.wait(timeout=30) == 3
    log = server.log()
    assert "RuntimeError: init exploded" in log
    assert "azureml-models/mymodel/2" in log
    assert "weights.bin" in log


def test_sigterm_lets_the_request_in_flight_finish(start_runtime, tmp_path):
    server = start_runtime("--entry-script", script("score_hostile.py"))
    release = tmp_path / "release"
    client, result = in_background(server, block(release))
    wait_for(lambda: gauge(server, "modelport_requests_in_flight") == 1, "the request runs")
    server.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "Received SIGTERM" in server.log(), "the runtime saw SIGTERM")
    release.touch()  # run() finishes only after the signal
    client.join()
    assert result["response"].status_code == 200
    assert server.proc.wait(timeout=30) == 0
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/", timeout=1)


def test_dead_worker_is_replaced(start_runtime):
    server = start_runtime("--entry-script", script("score_plain.py"), "--workers", "2")
    pids = {score(server, b'{"kind": "pid"}').json()["pid"] for _ in range(20)}
    victim = pids.pop()
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    seen = set()
    while time.monotonic() < deadline and len(seen - {victim}) < 2:
        try:
            response = score(server, b'{"kind": "pid"}', timeout=5)
        except httpx.TransportError:  # a connection the dying worker had accepted
            continue
        if response.status_code == 200:
            seen.add(response.json()["pid"])
        time.sleep(0.02)
    assert victim not in seen
    assert len(seen) == 2, f"expected the survivor and a replacement, saw {seen}"
    assert "starting a replacement" in server.log()
    assert httpx.get(f"{server.url}/-/ready").status_code == 200
