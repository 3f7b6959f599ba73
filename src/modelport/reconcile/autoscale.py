"""The azureml-fe autoscaling decision: a pure function plus a small wrapper for the scale-down delay.

Semantics (azureml-fe's, shaped like Ray Serve's autoscaling policy):

* **Utilization** = (in-flight + queued requests) / (replicas × ``max_concurrent``), where ``max_concurrent`` is
  ``replica_max_concurrent_requests``. With zero replicas (scaled to zero, or none started yet) the load is measured
  against one replica's capacity, so queued requests still ask for replicas.
* **Decision** (``desired_replicas``): the replica count that brings utilization to the target,
  ``ceil(replicas × utilization / target_utilization)``, clamped to ``[min_replicas, max_replicas]``. Utilization
  exactly at the target keeps the current count; zero load gives ``min_replicas``.
* **Autoscaler.observe** averages in-flight and queued requests over the last refresh period
  (``autoscale_refresh_seconds``) and decides on that average:

  - scale **up** at once when the decision is above the current count;
  - scale **down** only after every decision for ``scale_down_delay_s`` (about a minute in azureml-fe) was below the
    current count, and then to the highest decision seen in that window, so a short lull does not flap;
  - a decision at or above the current count during that window cancels the pending scale-down;
  - a current count outside ``[min_replicas, max_replicas]`` (the settings changed) is corrected at once: below the
    minimum the decision is above the count anyway; above the maximum the count drops to the maximum.

  ``current`` is the replica count last set (desired), not the count already ready. Time is passed in; nothing here
  reads a clock, so every path is unit-testable.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class AutoscaleSettings:
    """What the autoscaler needs from a deployment configuration (``target_utilization`` in percent)."""

    min_replicas: int = 1
    max_replicas: int = 10
    target_utilization: float = 70
    refresh_seconds: float = 1
    max_concurrent: int = 1

    def __post_init__(self) -> None:
        if not (0 <= self.min_replicas <= self.max_replicas and 0 < self.target_utilization <= 100
                and self.refresh_seconds > 0 and self.max_concurrent >= 1):
            raise ValueError(f"inconsistent autoscale settings: {self}")

    @classmethod
    def of(cls, deploy: dict) -> tuple[bool, AutoscaleSettings]:
        """Whether a version autoscales, and the autoscaler's inputs, from its stored deployment settings
        (``DeploymentConfig.to_settings()``: Azure's names); a fixed ``num_replicas`` is both bounds."""
        fixed = deploy.get("num_replicas")
        enabled = bool(deploy.get("autoscale_enabled", fixed is None))
        low, high = (deploy["autoscale_min_replicas"], deploy["autoscale_max_replicas"]) if enabled else (fixed, fixed)
        return enabled, cls(low, high, deploy["autoscale_target_utilization"], deploy["autoscale_refresh_seconds"],
                            deploy["replica_max_concurrent_requests"])


def utilization(current: int, in_flight: float, queued: float, max_concurrent: int) -> float:
    """Busy plus queued requests over the capacity of ``current`` replicas (one replica's when there are none)."""
    return (in_flight + queued) / (max(current, 1) * max_concurrent)


def desired_replicas(current: int, in_flight: float, queued: float, settings: AutoscaleSettings) -> int:
    """The replica count that brings utilization to the target, clamped to ``[min_replicas, max_replicas]``."""
    replicas = max(current, 1)
    wanted = replicas * utilization(current, in_flight, queued, settings.max_concurrent)
    wanted /= settings.target_utilization / 100
    # Rounding first keeps float noise (7 / 0.7 = 10.000000000000002) from adding a replica.
    return min(max(math.ceil(round(wanted, 9)), settings.min_replicas), settings.max_replicas)


class Autoscaler:
    """Turns load observations into replica-count changes: up at once, down after ``scale_down_delay_s``."""

    def __init__(self, settings: AutoscaleSettings, scale_down_delay_s: float = 60.0):
        self.settings = settings
        self.scale_down_delay_s = scale_down_delay_s
        self._samples: deque[tuple[float, float, float]] = deque()
        self._down_since: float | None = None
        self._down_highest = 0

    def observe(self, now: float, current: int, in_flight: float, queued: float) -> int | None:
        """Record one observation at time ``now`` (seconds); return the new replica count, or None for no change."""
        self._samples.append((now, in_flight, queued))
        while self._samples[0][0] <= now - self.settings.refresh_seconds:
            self._samples.popleft()
        count = len(self._samples)
        decision = desired_replicas(current, sum(s[1] for s in self._samples) / count,
                                    sum(s[2] for s in self._samples) / count, self.settings)
        if current > self.settings.max_replicas:
            self._down_since = None
            return self.settings.max_replicas
        if decision >= current:
            self._down_since = None
            return decision if decision > current else None
        if self._down_since is None:
            self._down_since, self._down_highest = now, decision
        self._down_highest = max(self._down_highest, decision)
        if now - self._down_since < self.scale_down_delay_s:
            return None
        self._down_since = None
        return self._down_highest
