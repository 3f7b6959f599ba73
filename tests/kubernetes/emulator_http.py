"""The HTTP side of the Kubernetes API emulator (``emulator.py`` says what it is and is not).

``handler_for(emulator)`` is the request handler ``ApiEmulator.start`` serves with; ``answer`` parses one request,
checks the bearer token and the denied verbs, and answers from the emulator's objects the way the API server does
(apply, merge patch, the scale and log subresources, list with selectors, delete, SelfSubjectAccessReview).
"""

from __future__ import annotations

import copy
import datetime
import ipaddress
import json
import ssl
import tempfile
from email.message import Message
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .emulated_objects import (
    APPLY,
    MERGES,
    RESOURCES,
    ApiError,
    Route,
    Seen,
    authorize,
    field_selector_matches,
    label_selector_matches,
)
from .emulated_writes import apply, merge_patch, patch_scale, scale_of

if TYPE_CHECKING:
    from .emulator import ApiEmulator

SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


def handler_for(emulator: ApiEmulator) -> type[BaseHTTPRequestHandler]:
    """A request handler class serving ``emulator`` (HTTP/1.1 keep-alive, as the client's connection pool expects)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go as two writes: no 40 ms delayed-ACK stall

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._serve("GET")

        def do_PATCH(self) -> None:  # noqa: N802
            self._serve("PATCH")

        def do_DELETE(self) -> None:  # noqa: N802
            self._serve("DELETE")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def do_PUT(self) -> None:  # noqa: N802
            self._serve("PUT")

        def handle(self) -> None:
            with emulator._lock:
                emulator.connections.add(self.connection)
            try:
                super().handle()
            except ssl.SSLError:  # a client that does not trust the certificate hangs up in the handshake
                self.close_connection = True
            except OSError:  # stop() cut the connection
                self.close_connection = True
            finally:
                with emulator._lock:
                    emulator.connections.discard(self.connection)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet; tests read emulator.requests
            return

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {key: values[0] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            emulator.requests.append(Seen(method, parts.path, query))
            try:
                status, content_type, payload = answer(emulator, method, parts.path, query, self.headers, body)
            except ApiError as error:
                status, content_type, payload = error.code, "application/json", json.dumps(error.status()).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def answer(emulator: ApiEmulator, method: str, path: str, query: dict[str, str], headers: Message,
           body: bytes) -> tuple[int, str, bytes]:
    """(status, content type, body) for one request (``headers`` case-insensitive, as http.server gives them);
    raises ApiError for the API's refusals."""
    scheme, _, token = (headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or token != emulator.token:  # the scheme is case-insensitive (RFC 7235)
        raise ApiError(401, "Unauthorized")
    if path == "/version" and method == "GET":
        return _json(emulator.version)
    if path == SSAR_PATH and method == "POST":
        authorize(emulator._denied, "create", Route("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "", None,
                                             None, None))
        return _json(_review(emulator, _parse(body)), 201)
    route = _route(path)
    verb = {"GET": "get" if route.name else "list", "PATCH": "patch", "DELETE": "delete"}.get(method)
    if verb is None or (verb == "delete" and route.subresource):
        raise ApiError(405, f"the server does not allow this method on the requested resource ({method})")
    authorize(emulator._denied, verb, route)
    with emulator._lock:
        if verb == "list":
            return _json(_list(emulator, route, query))
        if verb == "get":
            return _get(emulator, route, query)
        if verb == "delete":
            if route.kind == "Node" or not emulator._delete(route.kind, route.namespace, route.name):
                raise ApiError(404, f'{route.resource} "{route.name}" not found')
            emulator._written()
            return _json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                          "details": {"name": route.name, "group": route.group, "kind": route.plural}})
        content_type = headers.get("Content-Type", "").split(";")[0].strip()
        if route.subresource == "scale" and route.kind == "Deployment" and content_type in MERGES:
            result = patch_scale(emulator, route, _parse(body))
        elif route.subresource or route.kind == "Node":
            raise ApiError(405, "the emulator patches only namespaced objects and deployments/scale")
        elif content_type == APPLY:
            result = apply(emulator, route, query, _parse(body))
        elif content_type in MERGES:
            if "force" in query:
                raise ApiError(422, "force: Forbidden: may not be specified for non-apply patch")
            result = merge_patch(emulator, route, _parse(body))
        else:
            raise ApiError(415, "the body of the request was in an unknown format - accepted media types include: "
                                "application/json-patch+json, application/merge-patch+json, "
                                "application/apply-patch+yaml")
        emulator._written()
        if route.subresource != "scale":
            result = emulator._objects[(route.kind, route.namespace, route.name)]
        return _json(result)


def _route(path: str) -> Route:
    segments = [unquote(s) for s in path.strip("/").split("/")]
    if segments[:1] == ["api"] and len(segments) >= 3:
        group, version, rest = "", segments[1], segments[2:]
    elif segments[:1] == ["apis"] and len(segments) >= 4:
        group, version, rest = segments[1], segments[2], segments[3:]
    else:
        raise ApiError(404, "the server could not find the requested resource")
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    found = RESOURCES.get((group, version, rest[0]))
    if found is None or len(rest) > 3 or (namespace is not None and not found[1]) or (
            namespace is None and found[1] and len(rest) > 1):
        raise ApiError(404, "the server could not find the requested resource")
    return Route(group, version, rest[0], found[0], namespace, *(rest[1:] + [None, None])[:2])


def _review(emulator: ApiEmulator, review: dict[str, Any]) -> dict[str, Any]:
    attributes = (review.get("spec") or {}).get("resourceAttributes")
    if not attributes:
        raise ApiError(422, "spec.resourceAttributes: Invalid value: exactly one of nonResourceAttributes or "
                            "resourceAttributes must be specified")
    resource = attributes.get("resource", "")
    if attributes.get("subresource"):
        resource += "/" + attributes["subresource"]
    allowed = (attributes.get("group", ""), resource, attributes.get("verb", "")) not in emulator._denied
    status = {"allowed": allowed} if allowed else {"allowed": False, "reason": "denied by the emulator's deny()"}
    return {**review, "metadata": {"creationTimestamp": None}, "status": status}


def _get(emulator: ApiEmulator, route: Route, query: dict[str, str]) -> tuple[int, str, bytes]:
    if route.kind == "Node":
        found = next((n for n in emulator.nodes if n["metadata"]["name"] == route.name), None)
    else:
        found = emulator._objects.get((route.kind, route.namespace, route.name))
    if found is None or route.subresource not in (None, "scale", "log") or (
            route.subresource and (route.kind, route.subresource) not in {("Deployment", "scale"), ("Pod", "log")}):
        raise ApiError(404, f'{route.resource} "{route.name}" not found')
    if route.subresource == "scale":
        return _json(scale_of(found))
    if route.subresource == "log":
        return 200, "text/plain", _log(emulator, found, query).encode()
    return _json(found)


def _list(emulator: ApiEmulator, route: Route, query: dict[str, str]) -> dict[str, Any]:
    if route.kind == "Node":
        candidates = emulator.nodes
    else:
        candidates = [o for (kind, namespace, _), o in sorted(emulator._objects.items())
                      if kind == route.kind and route.namespace in (None, namespace)]
    labels, fields = query.get("labelSelector", ""), query.get("fieldSelector", "")
    items = [{k: v for k, v in copy.deepcopy(o).items() if k not in ("kind", "apiVersion")} for o in candidates
             if label_selector_matches(labels, o["metadata"].get("labels") or {}) and field_selector_matches(fields, o)]
    return {"kind": f"{route.kind}List", "apiVersion": route.api_version,
            "metadata": {"resourceVersion": str(emulator._revision)}, "items": items}


def _log(emulator: ApiEmulator, pod: dict[str, Any], query: dict[str, str]) -> str:
    name = pod["metadata"]["name"]
    containers = [c["name"] for c in pod["spec"].get("containers", [])]
    container = query.get("container") or (containers[0] if len(containers) == 1 else None)
    if container is None:
        raise ApiError(400, f"a container name must be specified for pod {name}, choose one of: "
                            f"[{' '.join(containers)}]")
    if container not in containers:
        raise ApiError(400, f"container {container} is not valid for pod {name}")
    previous = query.get("previous") == "true"
    text = emulator.pod_logs.get((name, container, previous))
    if text is None and previous:
        raise ApiError(400, f'previous terminated container "{container}" in pod "{name}" not found')
    lines = (text or "").splitlines(keepends=True)
    if query.get("tailLines"):
        lines = lines[-int(query["tailLines"]):] if int(query["tailLines"]) else []
    return "".join(lines)


def _parse(body: bytes) -> dict[str, Any]:
    try:
        parsed = yaml.safe_load(body) if body else None
    except yaml.YAMLError as error:
        raise ApiError(400, f"the request body is not JSON or YAML: {error}") from None
    if not isinstance(parsed, dict):
        raise ApiError(400, "the request body must be an object")
    return parsed


def _json(obj: dict[str, Any], status: int = 200) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(obj).encode()


def self_signed_certificate(ip: str) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) of a one-day self-signed certificate for ``ip``, like a cluster's own CA-
    signed API server certificate as far as a client's trust check goes."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "emulated-apiserver")])
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(start)
                   .not_valid_after(start + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                   .sign(key, hashes.SHA256()))
    return (certificate.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def tls_context(certificate: bytes, key: bytes) -> ssl.SSLContext:
    """A server TLS context for ``certificate`` and ``key`` (PEM); ssl reads them from files, kept 0600 only while
    loading."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/server.pem"
        with open(path, "wb") as file:  # TemporaryDirectory is 0700, so the key is never readable by others
            file.write(certificate + key)
        context.load_cert_chain(path)
    return context
