"""The one set of states every service, endpoint and version is in (Azure ML's names)."""

from __future__ import annotations

from enum import Enum


class State(str, Enum):
    """What the reconciler last observed; a ``str`` so it stores and serialises as Azure ML's names.

    - ``Transitioning``: being built, started or updated;
    - ``Healthy``: serving (maybe with fewer replicas than wanted while some restart);
    - ``Unhealthy``: replicas crash after having served, or the front end cannot route it;
    - ``Failed``: the environment build or ``init()`` failed; it needs an update to run again.
    """

    TRANSITIONING = "Transitioning"
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    FAILED = "Failed"

    def __str__(self) -> str:
        return self.value


TERMINAL = frozenset({State.HEALTHY, State.UNHEALTHY, State.FAILED})  # wait_for_deployment stops at these
