"""Replica counts for the reconciler: fixed ``num_replicas``, or azureml-fe autoscaling on live load.

Load is read from the replicas' own ``/metrics`` (``modelport_requests_in_flight`` and
``modelport_requests_queued``, summed over the workers of each replica), which the runtime
keeps answering while ``run()`` is busy. Decisions come from ``reconcile.autoscale``.
"""

from __future__ import annotations

import os
import re
import time

import httpx

from ..spec import Endpoint, EndpointVersion
from .autoscale import Autoscaler, AutoscaleSettings
from .backend import Backend

GAUGE = re.compile(rb"^modelport_requests_(in_flight|queued)(?:\{[^}]*\})? ([0-9.eE+-]+)$", re.MULTILINE)
SCALE_DOWN_DELAY_S = float(os.environ.get("MODELPORT_SCALE_DOWN_DELAY_S", "60"))


class ReplicaAutoscaler:
    """Keeps one ``Autoscaler`` per service version and the count it last chose."""

    def __init__(self, backend: Backend, scale_down_delay_s: float = SCALE_DOWN_DELAY_S):
        self.backend = backend
        self.scale_down_delay_s = scale_down_delay_s
        self._scalers: dict[str, tuple[Autoscaler, int]] = {}
        self._http = httpx.Client(timeout=0.5)

    def replicas(self, endpoint: Endpoint, version: EndpointVersion) -> int:
        """How many replicas ``version`` of ``endpoint`` should run now: its fixed ``num_replicas``, or the
        autoscaler's decision from the load on its replica set (azureml-fe's rules, ``reconcile.autoscale``)."""
        enabled, settings = AutoscaleSettings.of(version.deploy)
        if not enabled:
            return settings.min_replicas
        key = f"{endpoint.name}/{version.replica_set}"
        scaler, current = self._scalers.get(key) or (Autoscaler(settings, self.scale_down_delay_s),
                                                     settings.min_replicas)
        scaler.settings = settings
        in_flight, queued = self._load(endpoint.name, version.replica_set)
        decision = scaler.observe(time.monotonic(), current, in_flight, queued)
        current = decision if decision is not None else current
        self._scalers[key] = (scaler, current)
        return current

    def forget(self, service: str) -> None:
        for key in [k for k in self._scalers if k.startswith(f"{service}/")]:
            del self._scalers[key]

    def _load(self, service: str, version: str) -> tuple[float, float]:
        in_flight = queued = 0.0
        for replica in self.backend.observe(service, version):
            if not replica.ready:
                continue
            host, port = replica.address
            try:
                text = self._http.get(f"http://{host}:{port}/metrics").content
            except httpx.HTTPError:
                continue
            for name, value in GAUGE.findall(text):
                if name == b"in_flight":
                    in_flight += float(value)
                else:
                    queued += float(value)
        return in_flight, queued
