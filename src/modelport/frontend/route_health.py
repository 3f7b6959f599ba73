"""Route health: whether each routed service answers through the front end's real route, else at which layer.

Issue 10, failure mode 9: ``Healthy`` means a request succeeded through the front end, and a failure is
named by layer within minutes, not after the deploy timeout. The in-cluster controller
(``frontend.controller``) calls ``RouteChecker.check`` after each pass's apply and writes what it
returns into the applied ConfigMap (``routing_state.applied_configmap``), where the control plane's
``KubernetesFrontEnd.route_problems`` reads it. Per service, from the inside out:

* ``replicas``: a version that takes traffic has no ready pod (its Deployment says so, or is missing);
* ``service``: its Deployment has ready pods but the Service's EndpointSlices list no ready endpoint
  (a selector or port that matches nothing);
* ``route``: one request through Envoy's own listener (``GET /api/v1/service/<name>``, the replica's
  liveness ``GET /``, with the service's key when it uses key auth) was answered 404, 401, 5xx, or not at
  all; Envoy's JSON message is quoted (``frontend.replies``);
* ``tls``: the HTTPS listener did not complete a TLS handshake, or serves an expired certificate.

A service whose route answered has layer None. Each service is checked again when its routing or its
ready endpoints change, ``RECHECK_FAILED_S`` after a failure and ``RECHECK_OK_S`` after a success. The
check never sends a key anywhere but Envoy's listener on this pod, and no reason holds one.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
from cryptography import x509

from .changes import routing
from .routing_state import RoutingState

PROBE_TIMEOUT_S = 5.0  # one request through Envoy; a replica answers GET / without running run()
RECHECK_FAILED_S = 10.0  # a failing route is tried again this often (seconds)
RECHECK_OK_S = 60.0  # a route that answered is tried again this often (seconds): a later failure shows within minutes
PROBE_AGENT = "modelport-frontend-controller/route-check"
REASON_CHARS = 300  # of an answer's message quoted in a reason
LISTENER_DOWN = ": Envoy is not listening; see the envoy container's log"  # ends the reason of a refused connection

Ready = dict[str, list[tuple[str, int]]]  # Service (Deployment) name -> ready (IP, port)s
Deployments = Callable[[], dict[str, dict[str, Any]]]  # Deployment name -> the Deployment (listed once per pass)


@dataclass(frozen=True)
class RouteHealth:
    """One service's route: ``layer`` that failed (``replicas``, ``service``, ``route``, ``tls``; None: it
    answered) and a one-line ``reason``."""

    layer: str | None
    reason: str
    endpoints: tuple[str, ...] = ()  # the ready "ip:port"s of the versions taking traffic when it was checked

    def as_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "reason": self.reason, "endpoints": list(self.endpoints)}


class RouteChecker:
    """Checks the routes of the Envoy listening on ``host``:``port`` (HTTP) and, when ``tls_port`` is given, its
    HTTPS listener's handshake. ``timeout_s``: seconds one request or handshake may take."""

    def __init__(self, host: str, port: int, tls_port: int | None = None, timeout_s: float = PROBE_TIMEOUT_S,
                 recheck_failed_s: float = RECHECK_FAILED_S, recheck_ok_s: float = RECHECK_OK_S):
        self.host = host
        self.port = port
        self.tls_port = tls_port
        self.timeout_s = timeout_s
        self.recheck_failed_s = recheck_failed_s
        self.recheck_ok_s = recheck_ok_s
        self._probed: dict[str, tuple[Any, float, RouteHealth]] = {}  # service -> (what was checked, when, result)
        self._tls: RouteHealth | None = None

    def check(self, state: RoutingState, ready: Ready, deployments: Deployments) -> dict[str, RouteHealth]:
        """Each service of ``state``: its route's health with ``ready`` endpoints per Service; ``deployments()``
        is called (once) only when a version that takes traffic has no ready endpoint."""
        listed: dict[str, dict[str, Any]] | None = None
        result: dict[str, RouteHealth] = {}
        probed_now = False
        unreachable: RouteHealth | None = None  # the listener refused a connection: the same for every service
        now = time.monotonic()
        for service in state.services:
            weighted = [v for v in service.versions if v.weight > 0]
            missing = [v for v in weighted if not ready.get(state.deployments[(service.name, v.name)])]
            seen = tuple(sorted(f"{host}:{port}" for v in weighted
                                for host, port in ready.get(state.deployments[(service.name, v.name)], [])))
            if missing:
                listed = deployments() if listed is None else listed
                version = missing[0].name
                problem = endpoint_problem(version, state.deployments[(service.name, version)], listed)
                result[service.name] = replace(problem, endpoints=seen)
                continue
            checked = (routing(service), tuple(tuple(ready[state.deployments[(service.name, v.name)]])
                                               for v in weighted))
            earlier = self._probed.get(service.name)
            if earlier is not None and earlier[0] == checked and now - earlier[1] < (
                    self.recheck_ok_s if earlier[2].layer is None else self.recheck_failed_s):
                result[service.name] = earlier[2]
                continue
            health = replace(unreachable or self.probe(service.name, service.auth,
                                                       service.keys[0] if service.keys else None), endpoints=seen)
            if health.layer == "route" and health.reason.endswith(LISTENER_DOWN):
                unreachable = health
            self._probed[service.name] = (checked, now, health)
            result[service.name] = health
            probed_now = True
        for gone in set(self._probed) - set(result):
            del self._probed[gone]
        if self.tls_port is not None and (probed_now or self._tls is None):
            self._tls = self.handshake()
        if self._tls is not None and self._tls.layer is not None:
            result = {name: replace(self._tls, endpoints=health.endpoints) if health.layer is None else health
                      for name, health in result.items()}
        return result

    def probe(self, service: str, auth: str, key: str | None) -> RouteHealth:
        """``GET /api/v1/service/<service>`` through Envoy's HTTP listener (the replica's ``GET /``): layer None
        when a replica answered 2xx (for token auth, when Envoy asked for a token: the controller holds no signing
        key), else layer ``route`` naming the answer."""
        path = f"/api/v1/service/{service}"
        url = f"http://{_bracketed(self.host)}:{self.port}{path}"
        headers = {"User-Agent": PROBE_AGENT}
        if auth == "key" and key:
            headers["Authorization"] = f"Bearer {key}"
        try:
            response = httpx.get(url, headers=headers, timeout=self.timeout_s)
        except httpx.ConnectError as err:
            return RouteHealth("route", f"the front end's listener {self.host}:{self.port} refused the connection "
                                        f"({err}){LISTENER_DOWN}")
        except httpx.HTTPError as err:
            return RouteHealth("route", f"GET {path} through the front end's listener {self.host}:{self.port} got "
                                        f"no answer within {self.timeout_s:g} s ({type(err).__name__}): see the "
                                        "envoy container's log")
        status = response.status_code
        if 200 <= status < 300:
            version = response.headers.get("x-ms-model-version")
            return RouteHealth(None, f"GET {path} answered {status} through the front end"
                                     + (f" (version {version})" if version else ""))
        if auth == "token" and status == 401 and response.headers.get("server") == "envoy":
            return RouteHealth(None, f"GET {path} reached the front end's route, which asks for a token (token auth: "
                                     "the check cannot sign one, so no replica answered it)")
        said = _message(response)
        if status == 404:
            cause = "the front end has no route for it yet"
        elif status in (401, 403):
            cause = "the front end refused the service's current key: Envoy does not hold its keys yet"
        else:
            cause = "the front end could not get an answer from a replica"
        return RouteHealth("route", f"GET {path} through the front end answered {status}: {cause} ({said})")

    def handshake(self) -> RouteHealth:
        """A TLS handshake with the HTTPS listener (the certificate is not verified against a CA: the check
        connects by IP, not by the certificate's name; its expiry is checked): layer None or ``tls``."""
        where = f"{self.host}:{self.tls_port}"
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with socket.create_connection((self.host, self.tls_port), timeout=self.timeout_s) as raw, \
                    context.wrap_socket(raw) as secured:
                der = secured.getpeercert(binary_form=True)
        except OSError as err:  # ssl.SSLError too
            return RouteHealth("tls", f"the front end's HTTPS listener {where} failed the TLS handshake ({err}): "
                                      "check the compute target's TLS certificate and key (its TLS Secret)")
        try:
            expires = x509.load_der_x509_certificate(der).not_valid_after_utc if der else None
        except ValueError as err:
            return RouteHealth("tls", f"the front end's HTTPS listener {where} serves a certificate that cannot be "
                                      f"read ({err}): attach a valid certificate")
        if expires is not None and expires < datetime.datetime.now(datetime.timezone.utc):
            return RouteHealth("tls", f"the front end's HTTPS listener {where} serves a certificate that expired "
                                      f"on {expires:%Y-%m-%d %H:%M} UTC: attach a renewed certificate")
        return RouteHealth(None, f"the HTTPS listener {where} completed a TLS handshake")


def endpoint_problem(version: str, deployment: str, deployments: dict[str, dict[str, Any]]) -> RouteHealth:
    """Why ``version``'s Service ``deployment`` has no ready endpoint: no ready pod (``replicas``), or ready pods
    the Service's EndpointSlices do not list (``service``)."""
    found = deployments.get(deployment)
    if found is None:
        return RouteHealth("replicas", f"version {version} has no ready replica: its Deployment {deployment} does "
                                       "not exist")
    wanted = int((found.get("spec") or {}).get("replicas", 1))
    ready_pods = int((found.get("status") or {}).get("readyReplicas") or 0)
    if ready_pods > 0:
        return RouteHealth("service", f"version {version}: Deployment {deployment} has {ready_pods} ready pod(s) "
                                      f"but Service {deployment}'s EndpointSlices list no ready endpoint: check the "
                                      f"Service's selector and target port (kubectl describe service {deployment})")
    return RouteHealth("replicas", f"version {version} has no ready replica: 0 of {wanted} pod(s) of Deployment "
                                   f"{deployment} are ready (kubectl describe deployment {deployment})")


def _message(response: httpx.Response) -> str:
    """The answer's ``message`` (Envoy's and the runtime's JSON errors), else its text; one line, shortened."""
    try:
        document = response.json()
        text = str(document.get("message", document)) if isinstance(document, dict) else response.text
    except ValueError:
        text = response.text
    text = " ".join(text.split())
    return text[:REASON_CHARS] + ("..." if len(text) > REASON_CHARS else "") if text else "no message"


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
