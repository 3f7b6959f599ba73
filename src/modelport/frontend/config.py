"""Envoy resources for the front end, as plain dicts: pure functions of the services to route.

One listener serves every service. Its routes live in an RDS file and each version is an EDS
cluster, so keys, weights and replicas change without touching the listener; the listener
itself changes only when the set of token-auth services does (their JWT providers).

Per service ``<name>``: ``/api/v1/service/<name>/score`` → replica ``/score``,
``.../swagger.json`` → ``/swagger.json``, ``/api/v1/service/<name>`` → ``/``. Versions are
weighted clusters (``LEAST_REQUEST`` each) and every response says which version answered in
the ``x-ms-model-version`` header. Envoy's own error replies are JSON ``{"message": ...}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from .replies import AUTH_KIND_HEADER, local_reply_config
from .routes import DEFAULT_LIMITS, ClientLimits, ServiceRoute, VersionRoute, check_services, cluster_name

VERSION_HEADER = "x-ms-model-version"
REPLICA_SET_HEADER = "x-modelport-replica-set"  # which rollout of the version answered (<version>-<generation>)
LISTENER_NAME = "modelport"
ROUTE_CONFIG_NAME = "modelport"
STAT_PREFIX = "modelport"
SERVICE_PATH = "/api/v1/service/"
TIMEOUT_MARGIN_MS = 2000
UPSTREAM_IDLE_TIMEOUT_S = 3  # below uvicorn's 5 s keep-alive, so Envoy never reuses a connection the replica closes
TOKEN_CLOCK_SKEW_S = 5
RETRY_ON = "connect-failure,refused-stream,reset-before-request"  # only failures where no replica saw the request
NUM_RETRIES = 3
MAX_CLIENT_CONNECTIONS = 50000
EJECTION_S = 2  # a replica that refused a connection gets no request for this long (it is being replaced)


CORS_FILTER = "envoy.filters.http.cors"
CORS_METHODS = "GET,POST,OPTIONS"
CORS_HEADERS = "authorization,content-type,x-request-id,x-ms-client-request-id"
CORS_MAX_AGE_S = 600
API_KEY_FILTER = "api_key_auth"
JWT_FILTER = "jwt_authn"
AUTH_KIND_FILTER = "auth_kind"

# --- the files Envoy watches -------------------------------------------------------------------

def bootstrap(xds_dir: Path, admin_socket: Path) -> dict[str, Any]:
    """The bootstrap: the admin on a unix socket only its owner may use (0600), listeners and clusters
    from ``lds.json``/``cds.json``."""
    return {
        "node": {"id": "modelport-frontend", "cluster": "modelport"},
        "admin": {"address": {"pipe": {"path": str(admin_socket), "mode": 0o600}}},
        "dynamic_resources": {
            "lds_config": _file_source(xds_dir / "lds.json"),
            "cds_config": _file_source(xds_dir / "cds.json"),
        },
        "overload_manager": {"resource_monitors": [{
            "name": "envoy.resource_monitors.global_downstream_max_connections",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3"
                                      ".DownstreamConnectionsConfig",
                             "max_active_downstream_connections": MAX_CLIENT_CONNECTIONS}}]},
    }


def xds_files(services: list[ServiceRoute], port: int, xds_dir: Path, jwks: dict[str, Any] | None,
              version: str, limits: ClientLimits = DEFAULT_LIMITS) -> dict[str, dict[str, Any]]:
    """Every file Envoy reads, relative to ``xds_dir``, as discovery responses of ``version``."""
    check_services(services)
    eds_dir = xds_dir / "eds"
    clusters = [cluster(s.name, v.name, eds=_file_source(eds_dir / f"{cluster_name(s.name, v.name)}.json"))
                for s in services for v in s.versions]
    the_listener = listener(services, port, jwks, limits, rds=_file_source(xds_dir / "rds.json"))
    files = {
        "lds.json": _response(version, "listener.v3.Listener", [the_listener]),
        "cds.json": _response(version, "cluster.v3.Cluster", clusters),
        "rds.json": _response(version, "route.v3.RouteConfiguration", [route_config(services, limits)]),
    }
    for service in services:
        for version_route in service.versions:
            assignment = load_assignment(service.name, version_route)
            files[f"eds/{assignment['cluster_name']}.json"] = _response(
                version, "endpoint.v3.ClusterLoadAssignment", [assignment])
    return files


def validation_bootstrap(services: list[ServiceRoute], port: int, jwks: dict[str, Any] | None,
                         limits: ClientLimits = DEFAULT_LIMITS) -> dict[str, Any]:
    """The same resources, static, for ``envoy --mode validate``."""
    check_services(services)
    clusters = [cluster(s.name, v.name, load=load_assignment(s.name, v)) for s in services for v in s.versions]
    the_listener = listener(services, port, jwks, limits, routes=route_config(services, limits))
    return {
        "node": {"id": "modelport-validate", "cluster": "modelport"},
        "static_resources": {"listeners": [the_listener], "clusters": clusters},
    }


def _response(version: str, message_type: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    typed = [{"@type": f"type.googleapis.com/envoy.config.{message_type}", **resource} for resource in resources]
    return {"version_info": version, "resources": typed}


def _file_source(path: Path) -> dict[str, Any]:
    return {"path_config_source": {"path": str(path), "watched_directory": {"path": str(path.parent)}},
            "resource_api_version": "V3"}


def _address(host: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": host, "port_value": port}}


# --- listener ----------------------------------------------------------------------------------

def listener(services: list[ServiceRoute], port: int, jwks: dict[str, Any] | None, limits: ClientLimits, *,
             rds: dict[str, Any] | None = None, routes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one listener: auth filters, the router, JSON error replies, the client time limits; routes
    from RDS or inline."""
    hcm: dict[str, Any] = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
                 ".HttpConnectionManager",
        "stat_prefix": STAT_PREFIX,
        "normalize_path": True,
        "merge_slashes": True,
        "use_remote_address": True,
        "http_filters": _http_filters(services, jwks),
        "local_reply_config": local_reply_config(),
        "request_headers_timeout": _duration(limits.headers_timeout_s),
        "request_timeout": _duration(limits.body_timeout_s),
    }
    if rds is not None:
        hcm["rds"] = {"route_config_name": ROUTE_CONFIG_NAME, "config_source": rds}
    else:
        hcm["route_config"] = routes
    return {
        "name": LISTENER_NAME,
        "address": _address("127.0.0.1", port),
        "enable_reuse_port": False,
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                        "typed_config": hcm}]}],
    }


def _http_filters(services: list[ServiceRoute], jwks: dict[str, Any] | None) -> list[dict[str, Any]]:
    token_services = sorted(s.name for s in services if s.auth == "token")
    if token_services and not jwks:
        raise InvalidInput(f"services {token_services} use token auth but no JWKS was given: pass the token "
                           "signer's jwks()")
    providers = {name: {
        "issuer": "modelport",
        "audiences": [name],
        "local_jwks": {"inline_string": json.dumps(jwks)},
        "require_expiration": True,
        "clock_skew_seconds": TOKEN_CLOCK_SKEW_S,
    } for name in token_services}
    return [
        # first: a browser's preflight (which never carries a key) is answered here, before any auth
        {"name": CORS_FILTER, "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}},
        {"name": AUTH_KIND_FILTER, "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation"}},
        {"name": API_KEY_FILTER, "disabled": True, "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.api_key_auth.v3.ApiKeyAuth"}},
        {"name": JWT_FILTER, "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": providers,
            "requirement_map": {name: {"provider_name": name} for name in token_services},
        }},
        {"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
    ]


def token_services(lds_file: dict[str, Any]) -> set[str]:
    """The services whose tokens a rendered ``lds.json`` checks (its JWT requirement names)."""
    hcm = lds_file["resources"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    jwt_filter = next(f for f in hcm["http_filters"] if f["name"] == JWT_FILTER)
    return set(jwt_filter["typed_config"]["requirement_map"])


# --- routes ------------------------------------------------------------------------------------

def route_config(services: list[ServiceRoute], limits: ClientLimits = DEFAULT_LIMITS) -> dict[str, Any]:
    """All services' routes in one virtual host; a path no service claims is a JSON 404, and a declared
    body over ``limits.max_body_bytes`` is a JSON 413 before any of it is read."""
    routes = [_body_limit_route(limits.max_body_bytes)]
    for service in sorted(services, key=lambda s: s.name):
        base = f"{SERVICE_PATH}{service.name}"
        for path, target in ((f"{base}/score", "/score"), (f"{base}/swagger.json", "/swagger.json"),
                             (base, "/"), (f"{base}/", "/")):
            routes.append(_route(service, path, target))
    return {
        "name": ROUTE_CONFIG_NAME,
        "virtual_hosts": [{"name": "services", "domains": ["*"], "routes": routes}],
    }


def _body_limit_route(max_body_bytes: int) -> dict[str, Any]:
    too_large = {"name": "content-length", "range_match": {"start": max_body_bytes + 1, "end": 2 ** 63 - 1}}
    message = (f"the request body is larger than the {max_body_bytes} bytes this front end accepts: send less data "
               "per request")
    return {"name": "body-limit", "match": {"prefix": "/", "headers": [too_large]},
            "direct_response": {"status": 413, "body": {"inline_string": message}}}


def _duration(seconds: float) -> str:
    return f"{seconds:.3f}s"


def _route(service: ServiceRoute, path: str, target: str) -> dict[str, Any]:
    timeout = f"{(service.scoring_timeout_ms + TIMEOUT_MARGIN_MS) / 1000:.3f}s"
    return {
        "name": service.name,
        "match": {"path": path},
        "route": {
            "prefix_rewrite": target,
            "weighted_clusters": {"clusters": [_weighted_cluster(service.name, v) for v in service.versions
                                               if _per_mille(v.weight) > 0]},
            **_mirrors(service),
            "timeout": timeout,
            "idle_timeout": timeout,
            "retry_policy": {
                "retry_on": RETRY_ON,
                "num_retries": NUM_RETRIES,
                "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3"
                             ".PreviousHostsPredicate"}}],
                "host_selection_retry_max_attempts": 5,
            },
        },
        "request_headers_to_remove": [AUTH_KIND_HEADER],
        # from the replica that answered, so Envoy's own replies (401, 404, 503) carry no version
        "response_headers_to_add": [{"header": {"key": header, "value": f"%UPSTREAM_METADATA(modelport:{key})%"},
                                     "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
                                    for header, key in ((VERSION_HEADER, "version"),
                                                        (REPLICA_SET_HEADER, "replica_set"))],
        "typed_per_filter_config": {**_auth_per_route(service), **_cors_per_route(service)},
    }


def _cors_per_route(service: ServiceRoute) -> dict[str, Any]:
    """CORS for the service's allowed origins (none: no CORS header, as without the setting)."""
    if not service.cors_origins:
        return {}
    origins = [{"safe_regex": {"regex": ".*"}} if origin == "*" else {"exact": origin}
               for origin in service.cors_origins]
    return {CORS_FILTER: {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
        "allow_origin_string_match": origins,
        "allow_methods": CORS_METHODS,
        "allow_headers": CORS_HEADERS,
        "expose_headers": f"{VERSION_HEADER},x-request-id,x-ms-request-id,x-ms-run-function-failed",
        "max_age": str(CORS_MAX_AGE_S),
    }}


def _weighted_cluster(service: str, version: VersionRoute) -> dict[str, Any]:
    return {"name": cluster_name(service, version.name), "weight": _per_mille(version.weight)}


def _per_mille(percent: float) -> int:
    """Envoy's integer weights, in thousandths (a 12.5 % share is 125)."""
    return round(percent * 10)


def _mirrors(service: ServiceRoute) -> dict[str, Any]:
    """Envoy's request mirroring to each mirrored version: a copy of that share of the requests, whose
    answer Envoy discards (the client's answer never waits for it)."""
    mirrors = [{"cluster": cluster_name(service.name, v.name),
                "runtime_fraction": {"default_value": {"numerator": round(v.mirror_percent * 10000),
                                                       "denominator": "MILLION"}}}
               for v in service.versions if v.mirror_percent > 0]
    return {"request_mirror_policies": mirrors} if mirrors else {}


def _auth_per_route(service: ServiceRoute) -> dict[str, Any]:
    if service.auth == "none":
        return {}
    per_route: dict[str, Any] = {AUTH_KIND_FILTER: {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutationPerRoute",
        "mutations": {"request_mutations": [{"append": {
            "header": {"key": AUTH_KIND_HEADER, "value": service.auth},
            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}}]},
    }}
    if service.auth == "key":
        per_route[API_KEY_FILTER] = {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.api_key_auth.v3.ApiKeyAuthPerRoute",
            "credentials": [{"key": key, "client": f"{service.name}-key-{i}"} for i, key in enumerate(service.keys)],
            "key_sources": [{"header": "Authorization"}],
            "forwarding": {"hide_credentials": True},
        }
    else:
        per_route[JWT_FILTER] = {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig",
            "requirement_name": service.name,
        }
    return per_route


# --- clusters ----------------------------------------------------------------------------------

def cluster(service: str, version: str, *, eds: dict[str, Any] | None = None,
            load: dict[str, Any] | None = None) -> dict[str, Any]:
    """One version's cluster: least-request over its replicas, endpoints from EDS (or inline).

    Least-request as Envoy's default "power of two choices" (the less busy of two random replicas):
    a full scan picks the same replica every time when it has the fewest requests, so a dead one
    (no requests) would be picked again on every retry until it is ejected everywhere."""
    result: dict[str, Any] = {
        "name": cluster_name(service, version),
        "connect_timeout": "1s",
        "load_balancing_policy": {"policies": [{"typed_extension_config": {
            "name": "envoy.load_balancing_policies.least_request",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest",
            }}}]},
        "common_http_protocol_options": {"idle_timeout": f"{UPSTREAM_IDLE_TIMEOUT_S}s"},
        "circuit_breakers": {"thresholds": [{"max_connections": 100000, "max_pending_requests": 100000,
                                             "max_requests": 100000, "max_retries": 100000}]},
        "outlier_detection": _eject_unreachable_replicas(),
    }
    if eds is not None:
        result["type"] = "EDS"
        result["eds_cluster_config"] = {"eds_config": eds}
    else:
        result["type"] = "STATIC"
        result["load_assignment"] = load
    return result


def _eject_unreachable_replicas() -> dict[str, Any]:
    """Take a replica that refused a connection out of the balancing at once (for ``EJECTION_S``).

    Least-request picks the replica with the fewest active requests, and a dead one has none: without
    this, a retry would pick the dead replica again until the reconciler removes it. Only failures
    to connect count (``split_external_local_origin_errors``); a replica answering 5xx is never ejected,
    since every replica runs the same ``run()``."""
    return {
        "split_external_local_origin_errors": True,
        "consecutive_local_origin_failure": 1,
        "enforcing_consecutive_local_origin_failure": 100,
        "enforcing_local_origin_success_rate": 0,
        "enforcing_consecutive_5xx": 0,
        "enforcing_consecutive_gateway_failure": 0,
        "enforcing_success_rate": 0,
        "enforcing_failure_percentage": 0,
        "enforcing_failure_percentage_local_origin": 0,
        "base_ejection_time": f"{EJECTION_S}s",
        "max_ejection_percent": 100,
    }


def load_assignment(service: str, version: VersionRoute) -> dict[str, Any]:
    """The READY replicas of one version, each tagged with the version and replica set names for the
    response headers."""
    metadata = {"filter_metadata": {"modelport": {"version": version.name,
                                                  "replica_set": version.replica_set or version.name}}}
    lb_endpoints = [{"endpoint": {"address": _address(host, port)}, "metadata": metadata}
                    for host, port in version.endpoints]
    return {
        "cluster_name": cluster_name(service, version.name),
        "endpoints": [{"lb_endpoints": lb_endpoints}] if lb_endpoints else [],
    }
