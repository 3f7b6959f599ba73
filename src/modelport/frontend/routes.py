"""The front end's interface: what to route, as typed objects, and the rules a route must keep.

The reconciler builds a ``ServiceRoute`` per endpoint (its versions' shares, ready replicas and
mirror share; how clients are checked: auth, keys, CORS; its time limit); a front end (the local
Envoy, ``frontend.config`` and ``frontend.envoy``; later a cluster's) serves exactly those.
``check_services`` refuses what no front end could serve as meant, naming the service and the fix.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import InvalidInput

MAX_BODY_BYTES = 104857600  # the runtime's default MODELPORT_MAX_BODY_BYTES (100 MiB)
NAME_RULE = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
KEY_RULE = re.compile(r"^[\x21-\x7e]{8,256}$")
ORIGIN_RULE = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")

Auth = Literal["key", "token", "none"]


@dataclass(frozen=True)
class VersionRoute:
    """One version of a service: its share of the requests in percent (``weight``, the versions' summing to
    100), its READY replicas, and ``mirror_percent``: the share of all the service's requests it also gets a
    copy of (answers discarded; a mirrored version has weight 0)."""

    name: str
    weight: float
    endpoints: list[tuple[str, int]] = field(default_factory=list)
    mirror_percent: float = 0
    replica_set: str = ""  # the rollout the endpoints belong to, named in the REPLICA_SET_HEADER


@dataclass(frozen=True)
class ServiceRoute:
    """A service as the front end routes it."""

    name: str
    versions: list[VersionRoute]
    auth: Auth = "key"
    keys: list[str] = field(default_factory=list)
    scoring_timeout_ms: int = 60000
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call the service ("*": any)


@dataclass(frozen=True)
class ClientLimits:
    """What the front end allows one client request (slow or oversized clients are cut off).

    ``headers_timeout_s``: seconds to receive the request headers; ``body_timeout_s``: seconds to
    receive the whole request (headers and body); ``max_body_bytes``: a larger declared
    ``Content-Length`` is answered 413 before any of the body is read."""

    headers_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    max_body_bytes: int = MAX_BODY_BYTES


DEFAULT_LIMITS = ClientLimits()


def cluster_name(service: str, version: str) -> str:
    """``<service>_<version>``: unambiguous, since neither name may contain ``_``."""
    return f"{service}_{version}"


def check_services(services: list[ServiceRoute]) -> None:
    """Refuse routes Envoy could not serve as meant; the message names the service and the fix."""
    seen: set[str] = set()
    for service in services:
        name = service.name
        if not (isinstance(name, str) and 3 <= len(name) <= 32 and NAME_RULE.match(name)):
            raise InvalidInput(f"service name {name!r} is invalid: use 3-32 lowercase letters, digits and dashes, "
                               "starting with a letter")
        if name in seen:
            raise InvalidInput(f"service {name!r} is listed twice: route each service once")
        seen.add(name)
        _check_versions(service)
        if service.auth not in ("key", "token", "none"):
            raise InvalidInput(f"service {name!r}: auth must be 'key', 'token' or 'none', not {service.auth!r}")
        if service.auth == "key":
            if not service.keys or len(service.keys) > 2:
                raise InvalidInput(f"service {name!r} uses key auth: give its primary and secondary key")
            for key in service.keys:
                if not (isinstance(key, str) and KEY_RULE.match(key)):
                    raise InvalidInput(f"service {name!r}: a key must be 8-256 printable ASCII characters "
                                       "without spaces")
            if len(set(service.keys)) != len(service.keys):
                raise InvalidInput(f"service {name!r}: primary and secondary key must differ")
        for origin in service.cors_origins:
            if not (origin == "*" or ORIGIN_RULE.match(origin)):
                raise InvalidInput(f"service {name!r}: CORS origin {origin!r} is not an origin: use "
                                   "'scheme://host[:port]' (e.g. 'https://app.example.com') or '*'")
        if not (isinstance(service.scoring_timeout_ms, int) and 0 < service.scoring_timeout_ms <= 24 * 3600 * 1000):
            raise InvalidInput(f"service {name!r}: scoring_timeout_ms must be a positive number of milliseconds "
                               "up to a day")


def _check_versions(service: ServiceRoute) -> None:
    name = service.name
    if not service.versions:
        raise InvalidInput(f"service {name!r} has no version: give at least one")
    names = [version.name for version in service.versions]
    if len(set(names)) != len(names):
        raise InvalidInput(f"service {name!r}: version names must be unique, got {names}")
    for version in service.versions:
        if not (isinstance(version.name, str) and len(version.name) <= 32 and NAME_RULE.match(version.name)):
            raise InvalidInput(f"service {name!r}: version name {version.name!r} is invalid: use lowercase "
                               "letters, digits and dashes, starting with a letter")
        for what in ("weight", "mirror_percent"):
            value = getattr(version, what)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
                raise InvalidInput(f"service {name!r}: version {version.name!r} has {what} {value!r}; "
                                   "use a traffic percentage 0-100")
        for endpoint in version.endpoints:
            _check_endpoint(name, version.name, endpoint)
    total = sum(version.weight for version in service.versions)
    if abs(total - 100) > 1e-6:
        raise InvalidInput(f"service {name!r}: version weights add up to {total:g}; they must add up to 100")


def _check_endpoint(service: str, version: str, endpoint: Any) -> None:
    try:
        host, port = endpoint
        ipaddress.ip_address(host)
        valid = isinstance(port, int) and 0 < port < 65536
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise InvalidInput(f"service {service!r} version {version!r}: endpoint {endpoint!r} is not an "
                           "(IP address, port) pair")
