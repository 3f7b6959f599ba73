"""Replica counts for the reconciler: fixed ``num_replicas``, or azureml-fe autoscaling on live load.

Load is what the front end sees of each version (``load(endpoint, version)``: requests sent to its
replicas and not answered yet, and requests waiting for a connection), read from Envoy's
per-cluster statistics in one admin call per version, not by polling every replica. Decisions
come from ``reconcile.autoscale``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from ..errors import ModelportError
from ..spec import Endpoint, EndpointVersion
from .autoscale import Autoscaler, AutoscaleSettings

logger = logging.getLogger("modelport.autoscaling")
SCALE_DOWN_DELAY_S = float(os.environ.get("MODELPORT_SCALE_DOWN_DELAY_S", "60"))


class ReplicaAutoscaler:
    """Keeps one ``Autoscaler`` per service version and the count it last chose."""

    def __init__(self, load: Callable[[str, str], tuple[int, int]], scale_down_delay_s: float = SCALE_DOWN_DELAY_S):
        self.load = load
        self.scale_down_delay_s = scale_down_delay_s
        self._scalers: dict[str, tuple[Autoscaler, int]] = {}

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
        try:
            in_flight, queued = self.load(endpoint.name, version.name)
        except ModelportError as err:  # the front end is down (being restarted): keep the count
            logger.warning("no load figures for %s/%s (%s); keeping %d replicas", endpoint.name, version.name, err,
                           current)
            return current
        decision = scaler.observe(time.monotonic(), current, in_flight, queued)
        current = decision if decision is not None else current
        self._scalers[key] = (scaler, current)
        return current

    def forget(self, service: str) -> None:
        for key in [k for k in self._scalers if k.startswith(f"{service}/")]:
            del self._scalers[key]
