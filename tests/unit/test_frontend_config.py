"""The front end's Envoy resources as data: routes, weights, auth per route, retries, timeouts, refusals."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import jwt
import pytest

from modelport.errors import InvalidInput
from modelport.frontend.config import VERSION_HEADER, bootstrap, xds_files
from modelport.frontend.envoy_binary import EnvoyNotFound, envoy_path
from modelport.frontend.replies import AUTH_KIND_HEADER, local_reply_config
from modelport.frontend.routes import ClientLimits, ServiceRoute, VersionRoute, check_services
from modelport.frontend.tokens import TokenSigner

JWKS = {"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "kid": "k"}]}
KEYS = ["primary-key-0001", "secondary-key-0002"]


def two_versions(weights=(100, 0), auth="key", keys=KEYS, timeout_ms=60000) -> ServiceRoute:
    return ServiceRoute("scorer", [VersionRoute("blue", weights[0], [("127.0.0.1", 5001), ("127.0.0.1", 5002)]),
                                   VersionRoute("green", weights[1], [])], auth, list(keys), timeout_ms)


def render(*services: ServiceRoute, jwks=JWKS):
    return xds_files(list(services), 8080, Path("/state/xds"), jwks, "7")


def routes(files) -> list[dict]:
    """The services' routes (without the body-limit route that comes first)."""
    all_routes = files["rds.json"]["resources"][0]["virtual_hosts"][0]["routes"]
    assert all_routes[0]["name"] == "body-limit"
    return all_routes[1:]


def hcm(files) -> dict:
    return files["lds.json"]["resources"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def test_every_file_carries_the_version_and_each_version_has_an_eds_file():
    files = render(two_versions())
    assert set(files) == {"lds.json", "cds.json", "rds.json", "eds/scorer_blue.json", "eds/scorer_green.json"}
    assert {content["version_info"] for content in files.values()} == {"7"}
    blue = files["eds/scorer_blue.json"]["resources"][0]
    assert [e["endpoint"]["address"]["socket_address"]["port_value"] for e in blue["endpoints"][0]["lb_endpoints"]] \
        == [5001, 5002]
    assert blue["endpoints"][0]["lb_endpoints"][0]["metadata"] == {
        "filter_metadata": {"modelport": {"version": "blue", "replica_set": "blue"}}}
    assert files["eds/scorer_green.json"]["resources"][0]["endpoints"] == []


def test_paths_are_rewritten_to_the_replica():
    targets = {r["match"]["path"]: r["route"]["prefix_rewrite"] for r in routes(render(two_versions()))}
    assert targets == {"/api/v1/service/scorer/score": "/score", "/api/v1/service/scorer/swagger.json": "/swagger.json",
                       "/api/v1/service/scorer": "/", "/api/v1/service/scorer/": "/"}


def test_weights_become_weighted_clusters_and_zero_gets_no_traffic():
    only_blue = routes(render(two_versions((100, 0))))[0]["route"]["weighted_clusters"]["clusters"]
    assert only_blue == [{"name": "scorer_blue", "weight": 1000}]  # thousandths
    split = routes(render(two_versions((30, 70))))[0]["route"]["weighted_clusters"]["clusters"]
    assert split == [{"name": "scorer_blue", "weight": 300}, {"name": "scorer_green", "weight": 700}]


def test_the_version_header_comes_from_the_replica_that_answered():
    headers = [h["header"] for h in routes(render(two_versions()))[0]["response_headers_to_add"]]
    assert headers == [{"key": VERSION_HEADER, "value": "%UPSTREAM_METADATA(modelport:version)%"},
                       {"key": "x-modelport-replica-set", "value": "%UPSTREAM_METADATA(modelport:replica_set)%"}]


def test_clusters_are_least_request_over_eds_files():
    clusters = render(two_versions())["cds.json"]["resources"]
    assert [c["name"] for c in clusters] == ["scorer_blue", "scorer_green"]
    blue = clusters[0]
    policy = blue["load_balancing_policy"]["policies"][0]["typed_extension_config"]
    assert policy["name"] == "envoy.load_balancing_policies.least_request"
    assert blue["type"] == "EDS"
    assert blue["eds_cluster_config"]["eds_config"]["path_config_source"] == {
        "path": "/state/xds/eds/scorer_blue.json", "watched_directory": {"path": "/state/xds/eds"}}


def test_retries_only_where_no_replica_saw_the_request_and_timeout_has_a_margin():
    route = routes(render(two_versions(timeout_ms=1500)))[0]["route"]
    assert set(route["retry_policy"]["retry_on"].split(",")) == {"connect-failure", "refused-stream",
                                                                 "reset-before-request"}
    assert route["retry_policy"]["retry_host_predicate"][0]["name"] == "envoy.retry_host_predicates.previous_hosts"
    assert route["timeout"] == route["idle_timeout"] == "3.500s"


def test_key_auth_is_per_route_with_both_keys():
    files = render(two_versions(auth="key"))
    per_route = routes(files)[0]["typed_per_filter_config"]
    assert [c["key"] for c in per_route["api_key_auth"]["credentials"]] == KEYS
    assert per_route["api_key_auth"]["key_sources"] == [{"header": "Authorization"}]
    assert per_route["auth_kind"]["mutations"]["request_mutations"][0]["append"]["header"] == {
        "key": AUTH_KIND_HEADER, "value": "key"}
    assert "jwt_authn" not in per_route
    api_key_filter = next(f for f in hcm(files)["http_filters"] if f["name"] == "api_key_auth")
    assert api_key_filter["disabled"] is True  # on only where a route turns it on


def test_token_auth_names_a_provider_for_the_service():
    files = render(two_versions(auth="token", keys=[]), only_auth("open", "none"))
    per_route = {r["name"]: r["typed_per_filter_config"] for r in routes(files)}
    assert per_route["scorer"]["jwt_authn"]["requirement_name"] == "scorer"
    assert per_route["open"] == {}
    jwt_filter = next(f for f in hcm(files)["http_filters"] if f["name"] == "jwt_authn")["typed_config"]
    provider = jwt_filter["providers"]["scorer"]
    assert (provider["issuer"], provider["audiences"]) == ("modelport", ["scorer"])
    assert provider["require_expiration"] is True
    assert json.loads(provider["local_jwks"]["inline_string"]) == JWKS
    assert list(jwt_filter["providers"]) == ["scorer"]


def only_auth(name: str, auth: str) -> ServiceRoute:
    return ServiceRoute(name, [VersionRoute("v1", 100, [])], auth)  # type: ignore[arg-type]


def test_envoy_errors_become_json_messages_with_the_right_status():
    mappers = local_reply_config()["mappers"]
    by_flag = {flag: m["status_code"] for m in mappers for flag in m["filter"].get("response_flag_filter", {})
               .get("flags", [])}
    assert by_flag == {"NR": 404, "UH": 503, "NC": 503, "UF": 503, "UO": 503, "UC": 502, "UR": 502, "LR": 502,
                       "UT": 504}
    assert all(list(m["body_format_override"]["json_format"]) == ["message"] for m in mappers)
    assert local_reply_config()["body_format"] == {"json_format": {"message": "%LOCAL_REPLY_BODY%"}}


@pytest.mark.parametrize(("service", "message"), [
    (ServiceRoute("Bad_Name", [VersionRoute("v1", 100)], "none"), "service name 'Bad_Name' is invalid"),
    (ServiceRoute("ok-name", [], "none"), "has no version"),
    (ServiceRoute("ok-name", [VersionRoute("v1", 60), VersionRoute("v2", 30)], "none"), "add up to 90"),
    (ServiceRoute("ok-name", [VersionRoute("v1", 101), VersionRoute("v2", -1)], "none"), "weight 101"),
    (ServiceRoute("ok-name", [VersionRoute("v1", 50), VersionRoute("v1", 50)], "none"), "must be unique"),
    (ServiceRoute("ok-name", [VersionRoute("V_1", 100)], "none"), "version name 'V_1' is invalid"),
    (ServiceRoute("ok-name", [VersionRoute("v1", 100, [("localhost", 80)])], "none"), "not an \\(IP address, port"),
    (ServiceRoute("ok-name", [VersionRoute("v1", 100, [("127.0.0.1", 0)])], "none"), "not an \\(IP address, port"),
    (ServiceRoute("ok-name", [VersionRoute("v1", 100)], "key", []), "give its primary and secondary key"),
    (ServiceRoute("ok-name", [VersionRoute("v1", 100)], "key", ["short"]), "8-256 printable"),
    (ServiceRoute("ok-name", [VersionRoute("v1", 100)], "key", ["has space in it"]), "8-256 printable"),
    (ServiceRoute("ok-name", [VersionRoute("v1", 100)], "key", [KEYS[0], KEYS[0]]), "must differ"),
    (ServiceRoute("ok-name", [VersionRoute("v1", 100)], "basic"), "auth must be"),  # type: ignore[arg-type]
    (ServiceRoute("ok-name", [VersionRoute("v1", 100)], "none", [], 0), "scoring_timeout_ms"),
], ids=lambda value: value if isinstance(value, str) else "")
def test_invalid_services_are_refused(service, message):
    with pytest.raises(InvalidInput, match=message):
        check_services([service])
    with pytest.raises(InvalidInput, match=message):
        render(service)


def test_a_service_listed_twice_is_refused():
    with pytest.raises(InvalidInput, match="listed twice"):
        check_services([only_auth("twice", "none"), only_auth("twice", "none")])


def test_token_auth_without_a_jwks_is_refused():
    with pytest.raises(InvalidInput, match="no JWKS"):
        render(only_auth("tokened", "token"), jwks=None)


def test_token_signer_keeps_its_key_private_and_stable(tmp_path):
    signer = TokenSigner(tmp_path / "keys")
    assert stat.S_IMODE(os.stat(signer.key_path).st_mode) == 0o600
    again = TokenSigner(tmp_path / "keys")
    assert again.kid == signer.kid and again.jwks() == signer.jwks()
    token, refresh_by = signer.issue("scorer", 3600)
    key = jwt.PyJWK(signer.jwks()["keys"][0]).key
    claims = jwt.decode(token, key, algorithms=["ES256"], audience="scorer", issuer="modelport")
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["iat"] < refresh_by < claims["exp"]
    assert jwt.get_unverified_header(token)["kid"] == signer.kid
    with pytest.raises(ValueError, match="positive"):
        signer.issue("scorer", 0)


def test_an_expired_token_does_not_verify(tmp_path):
    signer = TokenSigner(tmp_path)
    token, _ = signer.issue("scorer", 60, now=time.time() - 120)
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(token, jwt.PyJWK(signer.jwks()["keys"][0]).key, algorithms=["ES256"], audience="scorer")


def test_envoy_binary_is_found_and_a_bad_override_is_named(tmp_path, monkeypatch):
    assert os.access(envoy_path(), os.X_OK)
    not_executable = tmp_path / "envoy"
    not_executable.write_text("")
    monkeypatch.setenv("MODELPORT_ENVOY", str(not_executable))
    with pytest.raises(EnvoyNotFound, match=f"{not_executable} is missing or not executable"):
        envoy_path()


def test_oversized_bodies_are_refused_before_any_route_and_slow_clients_time_out():
    limits = ClientLimits(headers_timeout_s=3, body_timeout_s=7.5, max_body_bytes=1000)
    files = xds_files([two_versions()], 8080, Path("/xds"), None, "7", limits)
    first = files["rds.json"]["resources"][0]["virtual_hosts"][0]["routes"][0]
    assert first["match"]["headers"] == [{"name": "content-length", "range_match": {"start": 1001, "end": 2 ** 63 - 1}}]
    assert first["direct_response"]["status"] == 413
    assert "1000 bytes" in first["direct_response"]["body"]["inline_string"]
    assert (hcm(files)["request_headers_timeout"], hcm(files)["request_timeout"]) == ("3.000s", "7.500s")


def test_the_admin_interface_is_a_private_unix_socket():
    admin = bootstrap(Path("/xds"), Path("/run/fe/admin.sock"))["admin"]
    assert admin == {"address": {"pipe": {"path": "/run/fe/admin.sock", "mode": 0o600}}}


def test_fractional_shares_and_mirrors_become_envoy_weights_and_mirror_policies():
    service = ServiceRoute("scorer", [VersionRoute("blue", 87.5, [("127.0.0.1", 5001)]),
                                      VersionRoute("green", 12.5, [("127.0.0.1", 5002)]),
                                      VersionRoute("shadow", 0, [("127.0.0.1", 5003)], mirror_percent=25)], "none")
    route = routes(render(service))[0]["route"]
    assert route["weighted_clusters"]["clusters"] == [{"name": "scorer_blue", "weight": 875},
                                                      {"name": "scorer_green", "weight": 125}]
    assert route["request_mirror_policies"] == [{"cluster": "scorer_shadow", "runtime_fraction": {
        "default_value": {"numerator": 250000, "denominator": "MILLION"}}}]
    with pytest.raises(InvalidInput, match="has mirror_percent 101"):
        check_services([ServiceRoute("scorer", [VersionRoute("blue", 100, [], mirror_percent=101)], "none")])
