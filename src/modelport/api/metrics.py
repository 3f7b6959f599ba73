"""Prometheus metrics per endpoint and version on the control plane's ``GET /metrics``.

Gathered when scraped: requests by status class and latency from Envoy's per-cluster stats (one
cluster per endpoint version, ``<endpoint>_<version>``; a mirrored version's copies count in its
own cluster), desired and ready replicas from what the reconciler last observed, and each version's
utilization as the autoscaler measures it (``reconcile.autoscale.utilization``: requests in flight
and queued in Envoy over the desired replicas' capacity) with, for a version that autoscales, its
target. Nothing is counted in Python on the request path.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

from ..errors import ModelportError
from ..frontend.envoy import FrontEnd
from ..frontend.routes import cluster_name
from ..reconcile.autoscale import AutoscaleSettings, utilization
from ..store.db import Store

CLUSTER_LABEL = "envoy_cluster_name"
LOAD_GAUGES = {"envoy_cluster_upstream_rq_active": 0, "envoy_cluster_upstream_rq_pending_active": 1}


class EndpointMetrics:
    """A prometheus_client collector: ``registry.register(EndpointMetrics(store, frontend))``."""

    def __init__(self, store: Store, frontend: FrontEnd):
        self.store = store
        self.frontend = frontend

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily("modelport_endpoint_requests", "Requests answered, by endpoint, version "
                                       "and status class (2xx, 4xx, 5xx), mirrored copies included",
                                       labels=["endpoint", "version", "code"])
        latency = HistogramMetricFamily("modelport_endpoint_request_duration_milliseconds",
                                        "Time from the front end to the replica's last byte, in ms",
                                        labels=["endpoint", "version"])
        replicas = GaugeMetricFamily("modelport_endpoint_replicas", "Replicas of each version: desired and ready",
                                     labels=["endpoint", "version", "state"])
        utilized = GaugeMetricFamily("modelport_endpoint_utilization_percent", "Requests in flight and queued in "
                                     "the front end over the desired replicas' capacity (replicas × "
                                     "replica_max_concurrent_requests; one replica's when none), in percent",
                                     labels=["endpoint", "version"])
        targets = GaugeMetricFamily("modelport_endpoint_target_utilization_percent", "The utilization the "
                                    "autoscaler keeps each autoscaled version at, in percent",
                                    labels=["endpoint", "version"])
        families = self._envoy_families()
        load: dict[str, list[float]] = {}  # cluster -> [in flight, queued]
        for family in families or ():
            self._add_envoy(family, requests, latency, load)
        for record in self.store.list_services():
            observed = record.status.get("versions", {})
            for version, seen in observed.items():
                for state in ("replicas", "ready_replicas"):
                    if state in seen:
                        replicas.add_metric([record.name, version, "ready" if state == "ready_replicas" else "desired"],
                                            seen[state])
            for version in record.endpoint.versions:
                try:
                    autoscaled, settings = AutoscaleSettings.of(version.deploy)
                except (KeyError, TypeError, ValueError):
                    continue  # settings the autoscaler cannot read either (the reconciler reports them)
                if autoscaled:
                    targets.add_metric([record.name, version.name], settings.target_utilization)
                desired = observed.get(version.name, {}).get("replicas")
                if families is not None and desired is not None:  # Envoy answered; a gauge it lacks was never used
                    in_flight, queued = load.get(cluster_name(record.name, version.name), (0, 0))
                    utilized.add_metric([record.name, version.name],
                                        100 * utilization(desired, in_flight, queued, settings.max_concurrent))
        yield from (requests, latency, replicas, utilized, targets)

    def _envoy_families(self) -> list[Metric] | None:
        """Envoy's per-cluster stats; None when it is not running or does not answer (no load is known then)."""
        if not self.frontend.pid:
            return None
        try:
            text = self.frontend.prometheus_stats()
        except ModelportError:
            return None  # the front end is down: the reconciler restarts it; replicas are still reported
        return list(text_string_to_metric_families(text))

    @staticmethod
    def _add_envoy(family: Metric, requests: CounterMetricFamily, latency: HistogramMetricFamily,
                   load: dict[str, list[float]]) -> None:
        if family.name in LOAD_GAUGES:  # with ``usedonly`` Envoy leaves out a gauge never used: 0 then
            for sample in family.samples:
                cluster = sample.labels.get(CLUSTER_LABEL, "")
                load.setdefault(cluster, [0, 0])[LOAD_GAUGES[family.name]] = sample.value
        elif family.name == "envoy_cluster_upstream_rq_xx":
            for sample in family.samples:
                endpoint, version = _endpoint_version(sample.labels.get(CLUSTER_LABEL, ""))
                if endpoint and sample.name.endswith("_total"):
                    requests.add_metric([endpoint, version, f"{sample.labels['envoy_response_code_class']}xx"],
                                        sample.value)
        elif family.name == "envoy_cluster_upstream_rq_time":
            by_cluster: dict[str, dict] = {}
            for sample in family.samples:
                cluster = sample.labels.get(CLUSTER_LABEL, "")
                entry = by_cluster.setdefault(cluster, {"buckets": [], "sum": 0.0})
                if sample.name.endswith("_bucket"):
                    entry["buckets"].append((sample.labels["le"], sample.value))
                elif sample.name.endswith("_sum"):
                    entry["sum"] = sample.value
            for cluster, entry in by_cluster.items():
                endpoint, version = _endpoint_version(cluster)
                if endpoint and entry["buckets"]:
                    latency.add_metric([endpoint, version], entry["buckets"], entry["sum"])


def _endpoint_version(cluster: str) -> tuple[str, str]:
    """``scorer_blue`` → ``("scorer", "blue")`` (neither name may contain ``_``); ``("", "")`` otherwise."""
    endpoint, _, version = cluster.partition("_")
    return (endpoint, version) if version else ("", "")
