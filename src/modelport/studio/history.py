"""The last hour of per-endpoint, per-version figures for Studio's plots, kept by the control plane in memory.

``MetricsHistory`` reads the control plane's own collector (``api.metrics.EndpointMetrics.collect``) once every
``interval_s`` seconds: one store query and one Envoy admin call, nothing counted on the request path. Each sample
keeps, per endpoint, one point of what changed since the version's previous reading: Δrequests by status class, Δ of
each latency bucket, and the gauges as read. Points are rendered into figures when asked for (``series``):

* ``rps`` and ``status`` ({"2xx", "4xx", "5xx", and any other class seen}): requests per second over the interval;
* ``p50_ms``, ``p95_ms``, ``p99_ms``: from the interval's Δbuckets as Prometheus' ``histogram_quantile`` does
  (linear inside the bucket; the highest finite bound for the +Inf bucket); None without a request;
* ``replicas``, ``ready_replicas``, ``utilization``, ``target_utilization`` (percent): as read; None when absent.

Counters: one that went down (Envoy restarted) counts from zero, as Prometheus' ``rate()``; one the previous reading
lacked counts from zero too (Envoy reports a status class, a cluster, only once used). A version's first reading (a
new version, the history's start, or after Envoy did not answer: no ``utilization`` and no counter of it) is only
a baseline: its rates are None there. A sample where Envoy does not answer keeps the last baseline, so the next
rates cover the whole gap, divided by its real length.

Bounded whatever the traffic: at most ``window_s / interval_s`` points per endpoint (720 at the defaults) and points
older than ``window_s`` dropped; an endpoint missing from ``DROP_AFTER_MISSING`` samples in a row (deleted) loses its
history (one missing from fewer has a gap). For the hour view,
points older than ``FINE_S`` (10 minutes; whole minutes only) are merged into 1-minute points when returned, stamped
with the end of their minute: rates over the summed Δcounts and time, quantiles from the summed Δbuckets (true
quantiles of the minute, not a max of the points'), replicas and target the last value read, utilization the mean.
Latency is Envoy's histogram, merged on its stats flush (every 5 s), so it may trail the request counts by a sample.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from prometheus_client.core import Metric

logger = logging.getLogger("modelport.studio.history")

REQUESTS = "modelport_endpoint_requests"
LATENCY = "modelport_endpoint_request_duration_milliseconds"
REPLICAS = "modelport_endpoint_replicas"
GAUGES = {"modelport_endpoint_utilization_percent": "utilization",
          "modelport_endpoint_target_utilization_percent": "target_utilization"}
CLASSES = ("2xx", "4xx", "5xx")  # always in ``status``
QUANTILES = {"p50_ms": 0.50, "p95_ms": 0.95, "p99_ms": 0.99}
FINE_S = 600.0  # the last 10 minutes at full resolution; older points in 1-minute ones
COARSE_S = 60.0
LOG_EVERY_S = 60.0  # a failing sample is logged at most this often
# Samples an endpoint may be missing from before its history is dropped as deleted: a service whose status lost its
# versions for a pass (a failed reconcile) and that has had no traffic must not lose the hour.
DROP_AFTER_MISSING = 3


class MetricsHistory:
    """The last hour of per-endpoint, per-version figures for Studio's plots, sampled from the
    control plane's own collector every ``interval_s`` seconds and kept in memory (bounded).

    ``collect``: a function yielding prometheus_client metric families (``EndpointMetrics(store, frontend).collect``);
    ``interval_s``, ``window_s``: seconds between samples and seconds kept; ``clock``: epoch seconds now."""

    def __init__(self, collect: Callable[[], Iterable[Metric]], interval_s: float = 5.0,
                 window_s: float = 3600.0, clock: Callable[[], float] = time.time):
        self.collect, self.interval_s, self.window_s, self.clock = collect, interval_s, window_s, clock
        self.max_points = max(1, math.ceil(window_s / interval_s))
        self._points: dict[str, deque[tuple[float, dict[str, dict]]]] = {}  # endpoint -> (t, {version: raw})
        self._baselines: dict[tuple[str, str], tuple[float, dict]] = {}  # (endpoint, version) -> (t, reading)
        self._missing: dict[str, int] = {}  # endpoint -> consecutive samples it was missing from
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failed_at = -math.inf

    def sample(self) -> None:
        """Read the collector once and add one point per endpoint (time: ``clock()``, epoch seconds)."""
        readings = _read(self.collect())
        now = round(self.clock(), 3)
        with self._lock:
            for endpoint in set(self._points) - set(readings):
                self._missing[endpoint] = self._missing.get(endpoint, 0) + 1
                if self._missing[endpoint] >= DROP_AFTER_MISSING:
                    del self._points[endpoint], self._missing[endpoint]
            for endpoint in readings:
                self._missing.pop(endpoint, None)
            self._baselines = {key: base for key, base in self._baselines.items()
                               if key[1] in readings.get(key[0], ())}
            for endpoint, versions in readings.items():
                points = self._points.setdefault(endpoint, deque(maxlen=self.max_points))
                points.append((now, {name: self._raw(endpoint, name, reading, now)
                                     for name, reading in versions.items()}))
                while points[0][0] <= now - self.window_s:
                    points.popleft()

    def start(self) -> None:
        """Sample now and then every ``interval_s`` seconds in a daemon thread; a failing sample is logged (at most
        once a minute), never raised. A second start() while running does nothing."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="metrics-history", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling (waits for a sample in progress, a few seconds at most); the history is kept."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval_s + 10)
            self._thread = None

    def series(self, endpoint: str, since: float | None = None) -> dict:
        """The plot data of ``endpoint``: ``{"endpoint", "interval_s", "window_s", "now" (epoch s), "points"}``, each
        point ``{"t": epoch s, "versions": {version: figures}}``, oldest first; with ``since`` (epoch s) only the
        points with ``t > since``. An unknown endpoint has no points."""
        now = self.clock()
        with self._lock:
            points = [p for p in self._points.get(endpoint, ())
                      if p[0] > now - self.window_s and (since is None or p[0] > since)]
        boundary = math.floor((now - FINE_S) / COARSE_S) * COARSE_S
        minutes: dict[float, list[dict[str, dict]]] = {}
        for t, versions in points:
            if t <= boundary:
                minutes.setdefault(math.ceil(t / COARSE_S) * COARSE_S, []).append(versions)
        shown = [{"t": end, "versions": _merged(group)} for end, group in minutes.items()]
        shown += [{"t": t, "versions": {name: _figures([raw]) for name, raw in versions.items()}}
                  for t, versions in points if t > boundary]
        return {"endpoint": endpoint, "interval_s": self.interval_s, "window_s": self.window_s,
                "now": round(now, 3), "points": shown}

    def _raw(self, endpoint: str, version: str, reading: dict, now: float) -> dict:
        """What changed for one version since its baseline: ``dt`` (s; None without a baseline), Δrequests by
        class, Δ of each cumulative bucket, and the gauges. Updates the baseline when Envoy was read."""
        raw = {"dt": None, "codes": {}, "buckets": {}, "gauges": reading["gauges"]}
        if not (reading["codes"] or reading["buckets"] or "utilization" in reading["gauges"]):
            return raw  # Envoy was not read: no rate; the baseline stays for the next sample
        base = self._baselines.get((endpoint, version))
        self._baselines[(endpoint, version)] = (now, reading)
        if base is None or now <= base[0]:
            return raw
        before = base[1]
        raw["dt"] = now - base[0]
        raw["codes"] = {code: _delta(value, before["codes"].get(code, 0.0)) for code, value in reading["codes"].items()}
        reset = any(value < before["buckets"].get(le, 0.0) for le, value in reading["buckets"].items())
        raw["buckets"] = {le: value - (0.0 if reset else before["buckets"].get(le, 0.0))
                          for le, value in reading["buckets"].items()}
        if not raw["buckets"].get(math.inf):
            raw["buckets"] = {}  # no request in the interval: nothing to keep
        return raw

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.sample()
            except Exception:
                if started - self._failed_at >= LOG_EVERY_S:
                    self._failed_at = started
                    logger.exception("sampling the endpoint metrics for Studio failed (said at most once a minute)")
            self._stop.wait(started + self.interval_s - time.monotonic())  # never more often; no catching up


def _read(families: Iterable[Metric]) -> dict[str, dict[str, dict]]:
    """The collector's families as ``{endpoint: {version: {"codes": {class: total}, "buckets": {le: cumulative},
    "gauges": {name: value}}}}``."""
    readings: dict[str, dict[str, dict]] = {}
    for family in families:
        if family.name not in (REQUESTS, LATENCY, REPLICAS, *GAUGES):
            continue
        for sample in family.samples:
            labels = sample.labels
            if not labels.get("endpoint") or not labels.get("version"):
                continue
            reading = readings.setdefault(labels["endpoint"], {}).setdefault(
                labels["version"], {"codes": {}, "buckets": {}, "gauges": {}})
            if family.name == REQUESTS and sample.name.endswith("_total"):
                reading["codes"][labels["code"]] = sample.value
            elif family.name == LATENCY and sample.name.endswith("_bucket"):
                reading["buckets"][float(labels["le"])] = sample.value
            elif family.name == REPLICAS and labels.get("state") in ("desired", "ready"):
                reading["gauges"]["replicas" if labels["state"] == "desired" else "ready_replicas"] = sample.value
            elif family.name in GAUGES:
                reading["gauges"][GAUGES[family.name]] = sample.value
    return readings


def _delta(value: float, before: float) -> float:
    """A counter's increase; from zero when it went down (restarted)."""
    return value if value < before else value - before


def _merged(group: list[dict[str, dict]]) -> dict[str, dict]:
    """One minute's points (oldest first) as one: each version's figures over all its raws in the minute."""
    by_version: dict[str, list[dict]] = {}
    for versions in group:
        for name, raw in versions.items():
            by_version.setdefault(name, []).append(raw)
    return {name: _figures(raws) for name, raws in by_version.items()}


def _figures(raws: list[dict]) -> dict:
    """The plotted figures of one version over consecutive raws (one for a fine point, a minute's for a merged
    one): rates per second, quantiles in ms, replicas, utilization and target in percent."""
    timed = [raw for raw in raws if raw["dt"] is not None]
    dt = sum(raw["dt"] for raw in timed)
    codes: dict[str, float] = dict.fromkeys(CLASSES, 0.0)
    buckets: dict[float, float] = {}
    for raw in timed:
        for code, count in raw["codes"].items():
            codes[code] = codes.get(code, 0.0) + count
        for le, count in raw["buckets"].items():
            buckets[le] = buckets.get(le, 0.0) + count
    figures: dict = {"rps": round(sum(codes.values()) / dt, 3) if dt else None,
                     "status": {code: round(count / dt, 3) if dt else None for code, count in sorted(codes.items())}}
    for key, q in QUANTILES.items():
        figures[key] = _quantile(q, buckets)
    for key in ("replicas", "ready_replicas", "target_utilization"):
        figures[key] = next((raw["gauges"][key] for raw in reversed(raws) if key in raw["gauges"]), None)
    used = [raw["gauges"]["utilization"] for raw in raws if "utilization" in raw["gauges"]]
    figures["utilization"] = round(sum(used) / len(used), 3) if used else None
    return figures


def _quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' ``histogram_quantile`` over cumulative bucket counts ``{upper bound: count}`` (ms): linear inside
    the bucket holding the rank (from 0 for the first), the highest finite bound for +Inf; None without a count."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    below_bound, below_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return round(below_bound, 3)
            return round(below_bound + (bound - below_bound) * (rank - below_count) / (count - below_count), 3)
        below_bound, below_count = bound, count
    return round(below_bound, 3)
