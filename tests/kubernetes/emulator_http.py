"""The HTTP side of the Kubernetes API emulator (``emulator.py`` says what it is and is not).

``handler_for(emulator)`` is the request handler ``ApiEmulator.start`` serves with; ``answer`` parses one request,
checks the bearer token and the denied verbs, and answers from the emulator's objects the way the API server does
(apply, merge patch, the scale and log subresources, list with selectors, delete, SelfSubjectAccessReview).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import uuid
from email.message import Message
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

from .emulated_objects import (
    APPLY,
    MERGES,
    RESOURCES,
    ApiError,
    Seen,
    check_labels,
    check_name,
    field_selector_matches,
    label_selector_matches,
    now,
)

if TYPE_CHECKING:
    from .emulator import ApiEmulator

SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
USER = "emulated-user"
_GENERATION_KINDS = {"Deployment", "ReplicaSet", "Job"}  # kinds whose metadata.generation counts spec changes
_SYSTEM_METADATA = ("uid", "creationTimestamp", "generation", "resourceVersion", "managedFields")  # the API's to set


class Route(NamedTuple):
    """What a resource path names."""

    group: str
    version: str
    plural: str
    kind: str
    namespace: str | None
    name: str | None
    subresource: str | None

    @property
    def resource(self) -> str:
        """``<plural>[.<group>]``, as the API's messages name a resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


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
    if headers.get("Authorization") != f"Bearer {emulator.token}":
        raise ApiError(401, "Unauthorized")
    if path == "/version" and method == "GET":
        return _json(emulator.version)
    if path == SSAR_PATH and method == "POST":
        _authorize(emulator, "create", Route("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "", None,
                                             None, None))
        return _json(_review(emulator, _parse(body)), 201)
    route = _route(path)
    verb = {"GET": "get" if route.name else "list", "PATCH": "patch", "DELETE": "delete"}.get(method)
    if verb is None or (verb == "delete" and route.subresource):
        raise ApiError(405, f"the server does not allow this method on the requested resource ({method})")
    _authorize(emulator, verb, route)
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
            result = _patch_scale(emulator, route, _parse(body))
        elif route.subresource or route.kind == "Node":
            raise ApiError(405, "the emulator patches only namespaced objects and deployments/scale")
        elif content_type == APPLY:
            result = _apply(emulator, route, query, _parse(body))
        elif content_type in MERGES:
            if "force" in query:
                raise ApiError(422, "force: Forbidden: may not be specified for non-apply patch")
            result = _merge_patch(emulator, route, _parse(body))
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


def _authorize(emulator: ApiEmulator, verb: str, route: Route) -> None:
    resource = f"{route.plural}/{route.subresource}" if route.subresource else route.plural
    if (route.group, resource, verb) not in emulator._denied:
        return
    named = f'{route.resource} "{route.name}"' if route.name else route.resource
    scope = f'in the namespace "{route.namespace}"' if route.namespace else "at the cluster scope"
    raise ApiError(403, f'{named} is forbidden: User "{USER}" cannot {verb} resource "{resource}" in API group '
                        f'"{route.group}" {scope}')


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
        return _json(_scale(found))
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


def _scale(deployment: dict[str, Any]) -> dict[str, Any]:
    meta = deployment["metadata"]
    selector = ",".join(f"{k}={v}" for k, v in sorted(deployment["spec"]["selector"].get("matchLabels", {}).items()))
    return {"kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {key: meta[key] for key in ("name", "namespace", "uid", "resourceVersion",
                                                    "creationTimestamp")},
            "spec": {"replicas": deployment["spec"].get("replicas", 1)},
            "status": {"replicas": deployment.get("status", {}).get("replicas", 0), "selector": selector}}


def _patch_scale(emulator: ApiEmulator, route: Route, patch: dict[str, Any]) -> dict[str, Any]:
    existing = _existing(emulator, route)
    _check_version(route, existing, patch)
    replicas = _merged(_scale(existing), patch).get("spec", {}).get("replicas")
    if not isinstance(replicas, int) or replicas < 0:
        raise ApiError(422, f'Scale.autoscaling "{route.name}" is invalid: spec.replicas: Invalid value: {replicas!r}: '
                            "must be greater than or equal to 0")
    updated = copy.deepcopy(existing)
    updated["spec"]["replicas"] = replicas
    return _scale(_save(emulator, existing, updated))


def _apply(emulator: ApiEmulator, route: Route, query: dict[str, str], obj: dict[str, Any]) -> dict[str, Any]:
    if not query.get("fieldManager"):
        raise ApiError(422, 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for '
                            "apply patch")
    if obj.get("apiVersion") != route.api_version or obj.get("kind") != route.kind:
        raise ApiError(400, f"the object's apiVersion/kind ({obj.get('apiVersion')}/{obj.get('kind')}) does not "
                            f"match the request path ({route.api_version}/{route.kind})")
    meta = obj.get("metadata") or {}
    if meta.get("name") != route.name:
        raise ApiError(400, f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                            f"({route.name})")
    if meta.get("namespace") not in (None, route.namespace):
        raise ApiError(400, "the namespace of the provided object does not match the namespace sent on the request")
    if route.namespace not in emulator.namespaces:
        raise ApiError(404, f'namespaces "{route.namespace}" not found')
    check_name(route.kind, route.name)
    check_labels(route.kind, route.name, meta.get("labels") or {})
    existing = emulator._objects.get((route.kind, route.namespace, route.name))
    if existing is None:
        _authorize(emulator, "create", route)
    else:
        _check_version(route, existing, obj)
    new = {k: v for k, v in copy.deepcopy(obj).items() if k != "status"}  # status is not applied with the object
    new["metadata"] = {**{k: v for k, v in meta.items() if k not in _SYSTEM_METADATA}, "namespace": route.namespace}
    _default(route.kind, new, existing)
    if existing is None:
        new["metadata"].update(uid=str(uuid.uuid4()), creationTimestamp=now(), managedFields=[
            {"manager": query["fieldManager"], "operation": "Apply", "apiVersion": route.api_version, "time": now()}])
        return emulator._store(new)
    kept = {k: v for k, v in (existing["metadata"].get("annotations") or {}).items()
            if k.startswith("deployment.kubernetes.io/")}  # written by the Deployment controller, not by the applier
    if kept:
        new["metadata"]["annotations"] = {**kept, **(new["metadata"].get("annotations") or {})}
    if "status" in existing:
        new["status"] = existing["status"]
    return _save(emulator, existing, new)


def _merge_patch(emulator: ApiEmulator, route: Route, patch: dict[str, Any]) -> dict[str, Any]:
    existing = _existing(emulator, route)
    _check_version(route, existing, patch)
    new = _merged(existing, patch)
    check_labels(route.kind, route.name, new["metadata"].get("labels") or {})
    return _save(emulator, existing, new)


def _save(emulator: ApiEmulator, existing: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Store ``new`` over ``existing``: system metadata kept, immutable fields checked, generation counted."""
    for key in ("uid", "creationTimestamp", "generation", "ownerReferences", "managedFields"):
        if key in existing["metadata"]:
            new["metadata"].setdefault(key, existing["metadata"][key])
    new["metadata"]["namespace"] = existing["metadata"]["namespace"]
    kind = existing["kind"]
    if kind == "Deployment" and new["spec"].get("selector") != existing["spec"].get("selector"):
        raise ApiError(422, f'Deployment.apps "{existing["metadata"]["name"]}" is invalid: spec.selector: Invalid '
                            "value: field is immutable")
    if kind in _GENERATION_KINDS and new.get("spec") != existing.get("spec"):
        new["metadata"]["generation"] = existing["metadata"].get("generation", 1) + 1
    return emulator._store(new)


def _default(kind: str, new: dict[str, Any], existing: dict[str, Any] | None) -> None:
    """The few defaults the API fills that modelport reads back."""
    spec = new.get("spec") or {}
    old_spec = (existing or {}).get("spec") or {}
    if kind in _GENERATION_KINDS and existing is None:
        new["metadata"]["generation"] = 1
    if kind == "Deployment":
        spec.setdefault("replicas", old_spec.get("replicas", 1))  # kept when another manager owns it
        template_labels = spec.get("template", {}).get("metadata", {}).get("labels") or {}
        wanted = (spec.get("selector") or {}).get("matchLabels") or {}
        if not wanted or any(template_labels.get(k) != v for k, v in wanted.items()):
            raise ApiError(422, f'Deployment.apps "{new["metadata"]["name"]}" is invalid: spec.template.metadata.'
                                "labels: Invalid value: `selector` does not match template `labels`")
        if existing is None:
            new["status"] = {}
    elif kind == "Service":
        spec.setdefault("type", "ClusterIP")
        number = int(hashlib.sha256(f"{new['metadata']['namespace']}/{new['metadata']['name']}".encode()).hexdigest(),
                     16)
        spec.setdefault("clusterIP", old_spec.get("clusterIP") or f"10.0.{number % 250}.{number // 250 % 250 + 2}")
        old_ports = {p.get("port"): p for p in old_spec.get("ports", [])}
        for index, port in enumerate(spec.get("ports", [])):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
            if spec["type"] in ("NodePort", "LoadBalancer"):
                port.setdefault("nodePort", old_ports.get(port.get("port"), {}).get("nodePort")
                                or 30000 + (number + index) % 2768)
    elif kind == "Secret":
        new.setdefault("type", "Opaque")
        for key, value in (new.pop("stringData", None) or {}).items():
            new.setdefault("data", {})[key] = base64.b64encode(str(value).encode()).decode()


def _existing(emulator: ApiEmulator, route: Route) -> dict[str, Any]:
    found = emulator._objects.get((route.kind, route.namespace, route.name))
    if found is None:
        raise ApiError(404, f'{route.resource} "{route.name}" not found')
    return found


def _check_version(route: Route, existing: dict[str, Any], patch: dict[str, Any]) -> None:
    given = (patch.get("metadata") or {}).get("resourceVersion")
    if given and given != existing["metadata"]["resourceVersion"]:
        raise ApiError(409, f'Operation cannot be fulfilled on {route.resource} "{route.name}": the object has been '
                            "modified; please apply your changes to the latest version and try again")


def _merged(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (what ``application/merge-patch+json`` means)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merged(result.get(key), value)
    return result


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
