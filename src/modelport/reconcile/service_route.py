"""What follows from what a reconcile pass saw of each version (``VersionObserved``): what the front end is given
for the endpoint (``service_route``: each version's share, its ready replicas, its mirror share) and the endpoint's
own state (``endpoint_state``).

The reconciler calls both; ``modelport kubernetes render`` calls ``service_route`` for the route a first deploy
publishes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..frontend.routes import ServiceRoute, VersionRoute
from ..spec import Endpoint, State, traffic
from .backend import ReplicaState


@dataclass
class VersionObserved:
    """What one pass saw of a version: its state and reason, the replica set taking its traffic and that
    set's replicas, and the figures for its status."""

    state: State
    reason: str
    serving: str
    replicas: list[ReplicaState] = field(default_factory=list)
    status: dict = field(default_factory=dict)

    @property
    def ready(self) -> list[tuple[str, int]]:
        return [r.address for r in self.replicas if r.ready and r.address]


def service_route(endpoint: Endpoint, seen: dict[str, VersionObserved]) -> ServiceRoute:
    """The endpoint for the front end: each version's share, ready replicas and mirror share, and how
    clients are checked. A version with no ready replica (starting, or failed) lends its share to the
    default version when that one has ready replicas, else to the versions that do, in proportion to their
    shares (evenly when they have none): while one version can answer, no share goes nowhere."""
    shares = traffic.split(endpoint)
    default = endpoint.default_version.name
    idle = [name for name in shares if not seen[name].ready]
    ready = [name for name in shares if seen[name].ready]
    lent = sum(shares[name] for name in idle)
    if lent and ready:
        for name in idle:
            shares[name] = 0.0
        if default in ready:
            shares[default] += lent
        else:
            total = sum(shares[name] for name in ready)
            for name in ready:
                shares[name] += lent * (shares[name] / total if total else 1 / len(ready))
    versions = [VersionRoute(v.name, shares.get(v.name, 0.0), seen[v.name].ready, v.mirror_percentile,
                             seen[v.name].serving) for v in endpoint.versions]
    return ServiceRoute(endpoint.name, versions, auth=endpoint.auth,
                        keys=[k for k in (endpoint.keys.get("primary"), endpoint.keys.get("secondary")) if k],
                        scoring_timeout_ms=max(v.deploy["scoring_timeout_ms"] for v in endpoint.versions),
                        cors_origins=tuple(endpoint.cors_origins))


def endpoint_state(endpoint: Endpoint, seen: dict[str, VersionObserved]) -> tuple[State, str]:
    """An endpoint's state and reason from its versions': a web service's is its one version's; an
    endpoint's is Failed when its default version failed, else its worst version's."""
    default = endpoint.default_version.name
    if len(seen) == 1:
        only = seen[default]
        return only.state, only.reason
    if seen[default].state is State.FAILED:
        return State.FAILED, f"version {default}: {seen[default].reason}"
    for state in (State.FAILED, State.UNHEALTHY, State.TRANSITIONING):
        for name, version in seen.items():
            if version.state is state:
                return (State.UNHEALTHY if state is State.FAILED else state), f"version {name}: {version.reason}"
    return State.HEALTHY, ""
