"""The control plane's /metrics: requests, latency and replicas per endpoint and version, from Envoy's stats."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelport import AksWebservice, Environment, InferenceConfig, Model
from modelport.api import server
from tests.conftest import register_weights
from tests.traffic import Traffic, ok_if_200, wait_until

APP = Path(__file__).resolve().parents[1] / "fixtures" / "deploy_app"


@pytest.fixture(scope="module")
def model(new_workspace, tmp_path_factory):
    ws = new_workspace("metricsws")
    return register_weights(ws, tmp_path_factory.mktemp("model"), "w")


@pytest.fixture(scope="module")
def service(model):
    config = InferenceConfig("score.py", source_directory=APP, environment=Environment("metrics-env"))
    deployed = Model.deploy(model.workspace, "metered", [model], config,
                            AksWebservice.deploy_configuration(num_replicas=2, auth_enabled=False))
    deployed.wait_for_deployment(timeout_sec=120)
    return deployed


def scrape(service, token: str | None) -> httpx.Response:
    base = server.read_info(service.workspace._dir)["url"]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{base}/metrics", headers=headers, timeout=30)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_requests_latency_and_replicas_per_version(service):
    statuses = [httpx.post(service.scoring_uri, json={}, timeout=30).status_code for _ in range(25)]
    statuses += [httpx.get(service.scoring_uri.replace("/score", "/nope"), timeout=30).status_code]
    assert statuses.count(200) == 25
    token = service.workspace._dir.token()
    version = (("endpoint", "metered"), ("version", "default"))
    count = ("modelport_endpoint_request_duration_milliseconds_count", version)
    # Envoy merges latency histograms on its stats flush (every 5 s): wait for it, bounded
    deadline = time.monotonic() + 20
    while (metrics := samples(scrape(service, token).text)).get(count) != 25 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert metrics.get(count) == 25
    labels = (("code", "2xx"), ("endpoint", "metered"), ("version", "default"))
    assert metrics[("modelport_endpoint_requests_total", labels)] == 25
    for state in ("desired", "ready"):
        key = ("modelport_endpoint_replicas", (("endpoint", "metered"), ("state", state), ("version", "default")))
        assert metrics[key] == 2


def test_metrics_need_the_workspace_token(service):
    assert scrape(service, None).status_code == 401
    assert scrape(service, "not-the-token").status_code == 401


@pytest.fixture(scope="module")
def autoscaled(model):
    """An autoscaled version held at one replica (minimum = maximum) that runs 2 requests at a time, and queues
    more (up to 10 s): its utilization is (in flight + queued) / (1 × 2)."""
    config = InferenceConfig("score.py", source_directory=APP, environment=Environment("metrics-env"))
    deployed = Model.deploy(model.workspace, "busy", [model], config, AksWebservice.deploy_configuration(
        autoscale_min_replicas=1, autoscale_max_replicas=1, autoscale_target_utilization=60,
        replica_max_concurrent_requests=2, max_request_wait_time=10000, auth_enabled=False))
    deployed.wait_for_deployment(timeout_sec=120)
    return deployed


def test_utilization_against_the_autoscale_target(service, autoscaled):
    token = service.workspace._dir.token()
    busy = (("endpoint", "busy"), ("version", "default"))
    use, target = "modelport_endpoint_utilization_percent", "modelport_endpoint_target_utilization_percent"
    seen: list[float] = []

    def utilization() -> float:
        seen.append(samples(scrape(service, token).text)[(use, busy)])
        return seen[-1]

    assert wait_until(lambda: utilization() == 0, timeout=10), seen  # idle
    with Traffic(autoscaled.scoring_uri, ok_if_200, threads=3, body={"sleep": 1}) as traffic:
        # 3 requests held: 2 running, 1 queued in the replica, all in flight for the front end: 3 / (1 × 2)
        assert wait_until(lambda: utilization() == 150, timeout=20), seen
    assert traffic.failures() == {}, traffic.failures()
    assert set(seen) <= {0, 50, 100, 150}, seen  # k requests in flight over 1 replica × 2
    assert wait_until(lambda: utilization() == 0, timeout=20), seen  # idle again
    metrics = samples(scrape(service, token).text)
    assert metrics[(target, busy)] == 60
    metered = (("endpoint", "metered"), ("version", "default"))
    assert metrics[(use, metered)] == 0  # a fixed replica count has a utilization but no target
    assert (target, metered) not in metrics
