"""Studio's metrics history: rates, quantiles, bounds and the hour view, from a fake collector and a fake clock."""

from __future__ import annotations

import logging
import math
import threading
import time

import pytest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from modelport.studio.history import DROP_AFTER_MISSING, MetricsHistory

START = 1_700_000_040.0  # a whole minute (epoch seconds)
BOUNDS = (10.0, 25.0, 50.0, math.inf)  # ms


class Fake:
    """The collector's families from counters the test moves; ``answered=False`` is Envoy not answering (no request,
    latency or utilization figure; the replicas still come from the store)."""

    def __init__(self):
        self.now = START
        self.answered = True
        self.endpoints: dict[str, dict[str, dict]] = {}
        self.add_version("scorer", "blue")

    def add_version(self, endpoint: str, version: str, target: float | None = 70.0) -> dict:
        state = {"codes": {}, "buckets": dict.fromkeys(BOUNDS, 0), "replicas": 2, "ready": 2, "utilization": 30.0,
                 "target": target}
        self.endpoints.setdefault(endpoint, {})[version] = state
        return state

    def serve(self, count: int, bound: float, code: str = "2xx", endpoint: str = "scorer", version: str = "blue"):
        """``count`` requests answered with ``code`` that took up to ``bound`` ms (in that bucket)."""
        state = self.endpoints[endpoint][version]
        state["codes"][code] = state["codes"].get(code, 0) + count
        state["buckets"][bound] += count

    def collect(self):
        requests = CounterMetricFamily("modelport_endpoint_requests", "", labels=["endpoint", "version", "code"])
        latency = HistogramMetricFamily("modelport_endpoint_request_duration_milliseconds", "",
                                        labels=["endpoint", "version"])
        replicas = GaugeMetricFamily("modelport_endpoint_replicas", "", labels=["endpoint", "version", "state"])
        used = GaugeMetricFamily("modelport_endpoint_utilization_percent", "", labels=["endpoint", "version"])
        target = GaugeMetricFamily("modelport_endpoint_target_utilization_percent", "", labels=["endpoint", "version"])
        for endpoint, versions in self.endpoints.items():
            for version, state in versions.items():
                replicas.add_metric([endpoint, version, "desired"], state["replicas"])
                replicas.add_metric([endpoint, version, "ready"], state["ready"])
                if state["target"] is not None:
                    target.add_metric([endpoint, version], state["target"])
                if not self.answered:
                    continue
                used.add_metric([endpoint, version], state["utilization"])
                for code, total in state["codes"].items():
                    requests.add_metric([endpoint, version, code], total)
                if state["codes"]:
                    cumulative, buckets = 0, []
                    for bound in BOUNDS:
                        cumulative += state["buckets"][bound]
                        buckets.append(("+Inf" if math.isinf(bound) else str(bound), cumulative))
                    latency.add_metric([endpoint, version], buckets, sum_value=0)
        return [requests, latency, replicas, used, target]

    def clock(self) -> float:
        return self.now


@pytest.fixture
def fake() -> Fake:
    return Fake()


@pytest.fixture
def history(fake) -> MetricsHistory:
    return MetricsHistory(fake.collect, clock=fake.clock)


def step(fake: Fake, history: MetricsHistory, seconds: float = 5.0) -> None:
    fake.now += seconds
    history.sample()


def last(history: MetricsHistory, endpoint: str = "scorer", version: str = "blue") -> dict:
    return history.series(endpoint)["points"][-1]["versions"][version]


def test_rates_by_status_class_and_gauges(fake, history):
    history.sample()
    first = last(history)
    assert first["rps"] is None and first["status"] == {"2xx": None, "4xx": None, "5xx": None}  # a baseline only
    assert (first["replicas"], first["ready_replicas"], first["utilization"], first["target_utilization"]) == (
        2, 2, 30.0, 70.0)
    fake.serve(50, 10.0)
    fake.serve(10, 25.0, "4xx")
    fake.serve(5, 50.0, "5xx")
    fake.endpoints["scorer"]["blue"].update(ready=1, utilization=80.0)
    step(fake, history)
    figures = last(history)
    assert figures["rps"] == 13.0
    assert figures["status"] == {"2xx": 10.0, "4xx": 2.0, "5xx": 1.0}
    assert (figures["replicas"], figures["ready_replicas"], figures["utilization"]) == (2, 1, 80.0)


def test_series_shape(fake, history):
    history.sample()
    step(fake, history)
    series = history.series("scorer")
    assert set(series) == {"endpoint", "interval_s", "window_s", "now", "points"}
    assert (series["endpoint"], series["interval_s"], series["window_s"], series["now"]) == (
        "scorer", 5.0, 3600.0, START + 5)
    assert [p["t"] for p in series["points"]] == [START, START + 5]
    assert set(series["points"][-1]["versions"]["blue"]) == {
        "rps", "status", "p50_ms", "p95_ms", "p99_ms", "replicas", "ready_replicas", "utilization",
        "target_utilization"}
    assert history.series("nobody")["points"] == []


def test_quantiles_interpolate_inside_the_bucket(fake, history):
    history.sample()
    fake.serve(100, 25.0)  # all in (10, 25]
    step(fake, history)
    figures = last(history)
    assert (figures["p50_ms"], figures["p95_ms"], figures["p99_ms"]) == (17.5, 24.25, 24.85)
    fake.serve(50, 10.0)  # (0, 10]
    fake.serve(49, 50.0)  # (25, 50]
    fake.serve(1, math.inf)  # beyond the last bound
    step(fake, history)
    figures = last(history)  # only this interval's 100 requests count, not the earlier 100
    assert figures["p50_ms"] == 10.0  # rank 50 ends the first bucket
    assert figures["p95_ms"] == pytest.approx(25 + 25 * 45 / 49, abs=1e-3)
    assert figures["p99_ms"] == 25 + 25 * 49 / 49  # rank 99 is the last finite bucket's bound
    fake.serve(2, math.inf)
    step(fake, history)
    assert last(history)["p50_ms"] == 50.0  # in +Inf: the previous bound


def test_an_interval_without_requests(fake, history):
    history.sample()
    fake.serve(20, 10.0)
    step(fake, history)
    step(fake, history)
    figures = last(history)
    assert figures["rps"] == 0 and figures["status"] == {"2xx": 0, "4xx": 0, "5xx": 0}
    assert (figures["p50_ms"], figures["p95_ms"], figures["p99_ms"]) == (None, None, None)
    assert figures["utilization"] == 30.0


def test_a_counter_that_went_down_counts_from_zero(fake, history):
    fake.serve(100, 50.0)
    history.sample()
    state = fake.endpoints["scorer"]["blue"]
    state["codes"], state["buckets"] = {}, dict.fromkeys(BOUNDS, 0)  # Envoy restarted
    fake.serve(7, 10.0)
    step(fake, history)
    figures = last(history)
    assert figures["rps"] == 1.4 and figures["status"]["2xx"] == 1.4
    assert figures["p50_ms"] == 5.0  # from the 7 new requests alone, in (0, 10]


def test_a_class_or_version_seen_for_the_first_time_counts_from_zero(fake, history):
    fake.serve(10, 10.0)
    history.sample()
    green = fake.add_version("scorer", "green", target=None)
    step(fake, history)  # green: Envoy answered, no request yet
    fake.serve(5, 25.0, "5xx")  # blue's first 5xx
    fake.serve(10, 10.0, version="green")  # green's first requests
    step(fake, history)
    versions = history.series("scorer")["points"][-1]["versions"]
    assert versions["blue"]["status"]["5xx"] == 1.0
    assert versions["green"]["rps"] == 2.0 and versions["green"]["target_utilization"] is None
    assert green["replicas"] == versions["green"]["replicas"]


def test_a_sample_without_envoy_keeps_the_baseline(fake, history):
    fake.serve(10, 10.0)
    history.sample()
    fake.answered = False
    fake.serve(30, 10.0)
    step(fake, history)
    figures = last(history)
    assert figures["rps"] is None and figures["utilization"] is None and figures["replicas"] == 2
    fake.answered = True
    step(fake, history)
    assert last(history)["rps"] == 3.0  # 30 requests over the 10 s since the last reading, not 5 s


def test_memory_is_bounded(fake, history):
    history.sample()
    for _ in range(3 * 720):  # three hours at 5 s
        fake.serve(1000, 25.0)
        step(fake, history)
    assert history.max_points == 720
    assert len(history._points["scorer"]) == 720
    points = history.series("scorer")["points"]
    assert points[0]["t"] > fake.now - 3600 and len(points) == 50 + 120  # 50 minutes, then 10 min of 5 s points
    for _ in range(7200):  # sampled more often than interval_s (each second): still 720 points at most
        fake.serve(1000, 25.0)
        step(fake, history, 1.0)
    assert len(history._points["scorer"]) == 720
    for _ in range(120):  # sampled less often (each minute): only the last hour's
        step(fake, history, 60.0)
    assert len(history._points["scorer"]) == 60


def test_since_returns_only_newer_points(fake, history):
    history.sample()
    for _ in range(4):
        step(fake, history)
    times = [p["t"] for p in history.series("scorer")["points"]]
    assert [p["t"] for p in history.series("scorer", since=times[2])["points"]] == times[3:]
    assert history.series("scorer", since=fake.now)["points"] == []


def test_a_deleted_endpoint_is_dropped_one_missing_briefly_keeps_its_history(fake, history):
    fake.add_version("other", "default")
    history.sample()
    step(fake, history)
    gone = fake.endpoints.pop("other")
    for _ in range(DROP_AFTER_MISSING - 1):  # missing for a pass or two (its status lost its versions): a gap
        step(fake, history)
    assert len(history.series("other")["points"]) == 2
    fake.endpoints["other"] = gone
    step(fake, history)
    assert len(history.series("other")["points"]) == 3
    del fake.endpoints["other"]
    for _ in range(DROP_AFTER_MISSING):
        step(fake, history)
    assert history.series("other")["points"] == []
    assert len(history.series("scorer")["points"]) == 2 + 2 * DROP_AFTER_MISSING  # every sample taken
    fake.add_version("other", "default")  # created again: a new history, its first point a baseline
    step(fake, history)
    assert [p["versions"]["default"]["rps"] for p in history.series("other")["points"]] == [None]


def test_the_hour_view_merges_minutes_from_the_summed_buckets(fake, history):
    history.sample()
    state = fake.endpoints["scorer"]["blue"]
    for i in range(1, 2 * 720 + 1):  # two hours at 5 s
        fast = i % 2
        fake.serve(10, 10.0 if fast else 50.0)  # alternately 10 requests in (0, 10] and in (25, 50]
        state.update(utilization=20.0 if fast else 40.0, replicas=1 + i % 12)
        step(fake, history)
    now = fake.now
    assert now % 60 == 0
    points = history.series("scorer")["points"]
    coarse = [p for p in points if p["t"] <= now - 600]
    fine = [p for p in points if p["t"] > now - 600]
    assert [p["t"] for p in coarse] == [now - 3600 + 60 * k for k in range(1, 51)]  # ends of minutes
    assert [p["t"] for p in fine] == [now - 600 + 5 * k for k in range(1, 121)]
    for point in coarse:
        figures = point["versions"]["blue"]
        # each minute: 60 requests in (0, 10] and 60 in (25, 50]; p50 = rank 60 of 120 = 10 ms, where each point's
        # own p50 is 5 or 37.5
        assert (figures["p50_ms"], figures["p95_ms"], figures["p99_ms"]) == (
            10.0, 25 + 25 * (114 - 60) / 60, 25 + 25 * (118.8 - 60) / 60)
        assert figures["rps"] == 2.0 and figures["status"]["2xx"] == 2.0
        assert figures["utilization"] == 30.0 and figures["replicas"] == 1  # mean; last of the minute (i % 12 == 0)
    assert {p["versions"]["blue"]["p50_ms"] for p in fine} == {5.0, 37.5}


def test_the_thread_samples_at_the_interval_and_survives_errors(caplog):
    calls = []
    sampled = threading.Event()

    def collect():
        calls.append(time.monotonic())
        if len(calls) >= 3:
            sampled.set()
        raise RuntimeError("the store is gone")

    history = MetricsHistory(collect, interval_s=0.05)
    with caplog.at_level(logging.ERROR, logger="modelport.studio.history"):
        history.start()
        history.start()  # a second start does not add a thread
        assert sampled.wait(5)
        history.stop()
    count = len(calls)
    time.sleep(0.15)
    assert len(calls) == count  # stopped
    assert all(b - a >= 0.04 for a, b in zip(calls, calls[1:], strict=False))  # never more often than interval_s
    failures = [r for r in caplog.records if "sampling" in r.getMessage()]
    assert len(failures) == 1  # logged once, though it failed every time
