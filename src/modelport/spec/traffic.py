"""Azure ML's rules for an endpoint's versions and traffic, as pure functions over ``Endpoint``.

- at most ``MAX_VERSIONS`` versions, names unique;
- each ``traffic_percentile`` 0-100, their sum at most 100; what no version claims goes to the
  default version;
- exactly one default version; exactly one control version, the others are treatments;
  making a version default (or control) clears that flag on the others;
- the default version cannot be deleted while others exist: make another one default first;
- modelport's own: a mirrored version (``mirror_percentile`` > 0) gets a copy of that share of the
  requests and no share of the split, so its ``traffic_percentile`` is 0 and it is not the default.

Every violation raises ``InvalidInput`` naming the rule and the fix; nothing here changes state.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import InvalidInput
from .endpoint import Endpoint, EndpointVersion, TrafficAssignment

MAX_VERSIONS = 6
HISTORY_KEPT = 20  # traffic assignments kept for rollback


def check(endpoint: Endpoint) -> Endpoint:
    """Return ``endpoint`` if its versions keep every rule; InvalidInput naming the broken one otherwise."""
    versions = endpoint.versions
    names = [v.name for v in versions]
    if not versions:
        raise InvalidInput(f"endpoint '{endpoint.name}' needs at least one version")
    if len(versions) > MAX_VERSIONS:
        raise InvalidInput(f"endpoint '{endpoint.name}' would have {len(versions)} versions; an endpoint has at most "
                           f"{MAX_VERSIONS}: delete one first")
    if len(set(names)) != len(names):
        raise InvalidInput(f"endpoint '{endpoint.name}' has two versions named the same: {names}")
    for version in versions:
        for what in ("traffic_percentile", "mirror_percentile"):
            value = getattr(version, what)
            number = not isinstance(value, bool) and isinstance(value, int | float)
            if not number or not 0 <= value <= 100:
                shown = f"{value:g}" if number else repr(value)
                raise InvalidInput(f"version '{version.name}': {what} must be a number from 0 to 100; got {shown}")
        if version.mirror_percentile and (version.traffic_percentile or version.is_default):
            mirrored = f"mirror_percentile {version.mirror_percentile:g}"
            fixes = [fix for fix, needed in (("set its traffic_percentile to 0", version.traffic_percentile),
                                             ("make another version the default", version.is_default)) if needed]
            raise InvalidInput(f"version '{version.name}' is mirrored ({mirrored}): a mirrored version takes no share "
                               f"of the split, so {' and '.join(fixes)}")
    total = sum(v.traffic_percentile for v in versions)
    if total > 100:
        shares = ", ".join(f"{v.name} {v.traffic_percentile:g}" for v in versions if v.traffic_percentile)
        raise InvalidInput(f"the traffic percentiles of endpoint '{endpoint.name}' add up to {total:g} ({shares}); "
                           "their sum may be at most 100: lower one first")
    for flag, what in (("is_default", "default"), ("is_control", "control")):
        flagged = [v.name for v in versions if getattr(v, flag)]
        if len(flagged) != 1:
            raise InvalidInput(f"endpoint '{endpoint.name}' must have exactly one {what} version, not "
                               f"{len(flagged)} ({', '.join(flagged) or 'none'})")
    return endpoint


def split(endpoint: Endpoint) -> dict[str, float]:
    """Each serving version's share of the requests in percent (summing to 100): its traffic_percentile,
    plus, for the default version, whatever no version claims. Mirrored versions are not in it."""
    shares = {v.name: float(v.traffic_percentile) for v in endpoint.versions if not v.mirror_percentile}
    default = endpoint.default_version.name
    shares[default] += 100.0 - sum(shares.values())
    return shares


def flagged(versions: list[EndpointVersion], name: str, flag: str) -> list[EndpointVersion]:
    """``versions`` with ``flag`` (``is_default`` or ``is_control``) set on ``name`` and cleared on the others."""
    return [replace(v, **{flag: v.name == name}) for v in versions]


def assignment(endpoint: Endpoint, reason: str, at: str) -> TrafficAssignment:
    """The endpoint's traffic as it is now, to keep in its history."""
    control = next((v.name for v in endpoint.versions if v.is_control), None)
    return TrafficAssignment({v.name: v.traffic_percentile for v in endpoint.versions},
                             endpoint.default_version.name, control, at, reason)


def with_history(before: Endpoint, after: Endpoint, reason: str, at: str) -> Endpoint:
    """``after`` remembering ``before``'s traffic (when it changed), for ``rollback``."""
    if _traffic(before) == _traffic(after):
        return after
    history = (*before.history, assignment(before, reason, at))[-HISTORY_KEPT:]
    return replace(after, history=history)


def promote(endpoint: Endpoint, name: str, at: str) -> Endpoint:
    """``name`` takes 100 % of the traffic and becomes default and control (and stops being mirrored, if it
    was); the others get 0 of the split, and mirrored ones keep their copies."""
    endpoint.version(name)
    versions = [replace(v, traffic_percentile=100 if v.name == name else 0, is_default=v.name == name,
                        is_control=v.name == name, mirror_percentile=0 if v.name == name else v.mirror_percentile)
                for v in endpoint.versions]
    return check(with_history(endpoint, endpoint.with_versions(versions), f"promote {name}", at))


def rollback(endpoint: Endpoint) -> Endpoint:
    """Back to the traffic assignment before the last change (versions deleted since keep none of it)."""
    if not endpoint.history:
        raise InvalidInput(f"endpoint '{endpoint.name}' has no earlier traffic assignment to roll back to")
    previous = endpoint.history[-1]
    names = {v.name for v in endpoint.versions}
    default = previous.default if previous.default in names else endpoint.default_version.name
    control = previous.control if previous.control in names else default
    versions = [replace(v, traffic_percentile=previous.percentiles.get(v.name, 0), is_default=v.name == default,
                        is_control=v.name == control) for v in endpoint.versions]
    return check(replace(endpoint, versions=tuple(versions), history=endpoint.history[:-1]))


def _traffic(endpoint: Endpoint) -> tuple:
    return tuple((v.name, v.traffic_percentile, v.is_default, v.is_control) for v in endpoint.versions)
