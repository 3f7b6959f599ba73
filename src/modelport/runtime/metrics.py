"""Prometheus metrics of a replica, aggregated over its worker processes.

The supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` before any worker imports this module,
so every worker writes its samples to shared files and ``/metrics`` on any worker shows the sum.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

MULTIPROC = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
LIVE = {"multiprocess_mode": "livesum"} if MULTIPROC else {}

REQUESTS = Counter("modelport_requests", "Requests answered, by route and status code.", ["route", "status"])
LATENCY = Histogram(
    "modelport_request_duration_seconds",
    "Time from request start to response, by route.",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
IN_FLIGHT = Gauge("modelport_requests_in_flight", "Scoring requests running run() now.", **LIVE)
QUEUED = Gauge("modelport_requests_queued", "Scoring requests waiting for a free run() slot.", **LIVE)
RUN_FAILURES = Counter("modelport_run_failures", "run() calls that raised, timed out or returned a 5xx.")
CONTENT_TYPE = CONTENT_TYPE_LATEST.encode()


def render() -> bytes:
    """The metrics page: all workers' samples when several share this replica."""
    if MULTIPROC:
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()


def worker_exited(pid: int) -> None:
    """Drop the live gauges of a worker that is gone (called by the supervisor)."""
    if MULTIPROC:
        _multiprocess.mark_process_dead(pid)
