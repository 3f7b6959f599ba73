"""What the reconciler needs of a front end (``FrontEndPort``), and how a front end says it is still being made.

The local front end (``api/deployments.py``) and a cluster's (``api/cluster_targets.py``) implement it.
"""

from __future__ import annotations

from typing import Protocol

from ..errors import ModelportError
from ..frontend.routes import ServiceRoute


class FrontEndStarting(ModelportError):
    """Raised by a front end's ``ensure_running`` while it is being made (its image built, its pod started): the
    services it will route wait in Transitioning with this reason, not Unhealthy."""


class FrontEndPort(Protocol):
    """What the reconciler needs of a front end: keep it running and give it the routes."""

    def ensure_running(self) -> bool:
        """Start the front end if it is not running; True when it was (re)started now. Raises ModelportError."""

    def apply(self, routes: list[ServiceRoute]) -> None:
        """Route exactly ``routes``; returns once they are served. Raises ModelportError."""

    def route_problems(self) -> dict[str, str]:
        """Services whose route failed a request through the front end, with the reason naming the layer
        (replicas, Service, route, TLS); empty when every route answered (or the front end does not check)."""
