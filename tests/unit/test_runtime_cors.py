"""CORS headers as azmlinfsrv answers them with ``AML_CORS_ORIGINS`` (flask-cors on its routes, GET and POST).

The expected headers are flask-cors 6.0.5's, configured as azmlinfsrv 1.5.1 configures it
(``CORS(blueprint, methods=["GET", "POST"], origins=[...])``): a differential run of
``CorsPolicy`` against it over 1,944 combinations of origins setting, Origin, method,
Access-Control-Request-Method/-Headers and private-network header found no difference.
"""

from __future__ import annotations

import pytest

from modelport.runtime.cors import CorsPolicy
from modelport.runtime.protocol import Reply

A, B, EVIL = "https://a.example", "https://b.example", "https://evil.example"


def cors(origins: str, http_method: str = "POST", **request_headers: str) -> dict[str, str]:
    names = {"origin": "origin", "method": "access-control-request-method",
             "headers": "access-control-request-headers", "private": "access-control-request-private-network"}
    raw = [(names[k].encode(), v.encode()) for k, v in request_headers.items()]
    reply = Reply(200)
    CorsPolicy(origins).apply(http_method, raw, reply)
    return {k.decode(): v.decode() for k, v in reply.headers}


def test_preflight_from_an_allowed_origin():
    assert cors(A, "OPTIONS", origin=A, method="POST", headers="Content-Type, Authorization") == {
        "access-control-allow-origin": A,
        "access-control-allow-headers": "Authorization, Content-Type",
        "access-control-allow-methods": "GET, POST",
    }


def test_a_post_from_an_allowed_origin_carries_the_origin():
    assert cors(A, "POST", origin=A) == {"access-control-allow-origin": A}


def test_other_origins_get_no_cors_header():
    assert cors(A, "POST", origin=EVIL) == {}
    assert cors(f"{A}, {B}", "OPTIONS", origin=EVIL, method="POST", headers="content-type") == {}


def test_several_origins_vary_by_origin():
    assert cors(f"{A}, {B}", "POST", origin=B) == {"access-control-allow-origin": B, "vary": "Origin"}


def test_star_echoes_the_origin_as_flask_cors_does():
    assert cors("*", "POST", origin=EVIL) == {"access-control-allow-origin": EVIL, "vary": "Origin"}
    assert cors("*", "OPTIONS", origin=EVIL, method="get") == {
        "access-control-allow-origin": EVIL, "access-control-allow-methods": "GET, POST", "vary": "Origin"}


def test_origins_match_case_insensitively_and_patterns_from_the_start():
    assert cors(A, "POST", origin=A.upper()) == {"access-control-allow-origin": A.upper()}
    pattern = r"https://.*\.example"
    assert cors(pattern, "POST", origin=B) == {"access-control-allow-origin": B, "vary": "Origin"}
    assert cors(pattern, "POST", origin="http://b.example") == {}


def test_a_preflight_for_another_method_gets_only_the_origin():
    assert cors(A, "OPTIONS", origin=A, method="PUT", headers="x-custom") == {"access-control-allow-origin": A}


def test_without_an_origin_header():
    assert cors("*", "GET") == {"access-control-allow-origin": "*"}
    assert cors(f"{B}, {A}", "GET") == {"access-control-allow-origin": A, "vary": "Origin"}  # the first, sorted


def test_private_network_preflight_is_refused():
    assert cors(A, "OPTIONS", origin=A, method="POST", private="true") == {
        "access-control-allow-origin": A, "access-control-allow-private-network": "false",
        "access-control-allow-methods": "GET, POST"}


def test_a_response_that_set_its_own_origin_is_left_alone():
    reply = Reply(200, [(b"access-control-allow-origin", b"https://mine.example")])
    CorsPolicy(A).apply("POST", [(b"origin", A.encode())], reply)
    assert reply.headers == [(b"access-control-allow-origin", b"https://mine.example")]


@pytest.mark.parametrize("origins", [" , ", "[unclosed"])
def test_unusable_settings_allow_nothing(origins):
    assert cors(origins, "POST", origin=A) == {}
