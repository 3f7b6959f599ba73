"""A Kubernetes cluster as modelport talks to it: one namespace, plain-dict objects, one-line errors.

The control plane (attach checks, the Kubernetes backend) connects with the kubeconfig a user attached
(``Cluster.connect``); the in-cluster front-end controller with its pod's ServiceAccount (``Cluster.in_cluster``).
Requests go through the official ``kubernetes`` client's ``ApiClient`` (its kubeconfig loading, TLS, client
certificates, exec and token refresh), with paths built from ``KINDS`` and JSON bodies in the API's own shape
(camelCase), so objects are the manifests modelport renders. Failures become the errors below; none is retried
here (the reconciler tries again on its next pass), and none carries a credential.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import urllib3
import yaml
from kubernetes import client, config

from ...errors import ClusterError, InvalidInput
from .objects import MANAGER

_APPLY = "application/apply-patch+yaml"
_MERGE = "application/merge-patch+json"


class Kind(NamedTuple):
    """Where a kind lives in the API: ``prefix`` (``api/v1`` or ``apis/<group>/<version>``), ``plural``, whether it
    is ``namespaced``."""

    prefix: str
    plural: str
    namespaced: bool = True

    @property
    def group(self) -> str:
        """The API group (``""`` for core)."""
        return "" if self.prefix.startswith("api/") else self.prefix.split("/")[1]

    @property
    def api_version(self) -> str:
        """``v1`` or ``<group>/<version>``, as an object's ``apiVersion``."""
        return self.prefix.split("/", 1)[1]


KINDS: dict[str, Kind] = {
    "Deployment": Kind("apis/apps/v1", "deployments"),
    "ReplicaSet": Kind("apis/apps/v1", "replicasets"),
    "Service": Kind("api/v1", "services"),
    "Secret": Kind("api/v1", "secrets"),
    "ConfigMap": Kind("api/v1", "configmaps"),
    "ServiceAccount": Kind("api/v1", "serviceaccounts"),
    "Pod": Kind("api/v1", "pods"),
    "Event": Kind("api/v1", "events"),
    "Role": Kind("apis/rbac.authorization.k8s.io/v1", "roles"),
    "RoleBinding": Kind("apis/rbac.authorization.k8s.io/v1", "rolebindings"),
    "Job": Kind("apis/batch/v1", "jobs"),
    "EndpointSlice": Kind("apis/discovery.k8s.io/v1", "endpointslices"),
    "Node": Kind("api/v1", "nodes", namespaced=False),
}


class ClusterUnreachable(ClusterError):
    """No answer from the API address: timeout, connection refused, or a host name that does not resolve."""

    code = "ClusterUnreachable"


class ClusterTLSError(ClusterError):
    """The TLS handshake with the API failed (its certificate does not match the kubeconfig's authority)."""

    code = "ClusterTLSError"


class ClusterUnauthorized(ClusterError):
    """The API answered 401: the kubeconfig's credentials are wrong or expired."""

    code = "ClusterUnauthorized"


class ClusterForbidden(ClusterError):
    """The API answered 403: the credentials may not do ``verb`` on ``resource`` (in ``group``) in ``namespace``
    (``None`` for cluster-scoped resources)."""

    code = "ClusterForbidden"

    def __init__(self, message: str, verb: str, group: str, resource: str, namespace: str | None):
        super().__init__(message)
        self.verb, self.group, self.resource, self.namespace = verb, group, resource, namespace


class ClusterApiError(ClusterError):
    """Any other answer outside 2xx; ``api_status`` is the API's HTTP status, the message carries its reason."""

    code = "ClusterApiError"

    def __init__(self, message: str, api_status: int):
        super().__init__(message)
        self.api_status = api_status


class Cluster:
    """One namespace of one cluster. Objects in and out are dicts in the API's JSON shape."""

    def __init__(self, api: client.ApiClient, namespace: str, context: str | None, timeout_s: float,
                 credential_plugin: str | None = None):
        self._api = api
        self.namespace = namespace
        self.context = context
        self.timeout_s = timeout_s
        self.server: str = api.configuration.host
        self.credential_plugin = credential_plugin  # the kubeconfig's exec command (kubelogin, aws, gke-gcloud-...)

    @classmethod
    def connect(cls, kubeconfig: str, context: str | None, namespace: str, timeout_s: float = 10) -> Cluster:
        """Connect with ``kubeconfig`` (the file's YAML text) and ``context`` (None: its current-context), working in
        ``namespace``; each request gives up after ``timeout_s`` seconds. Nothing is sent until a method is called.

        Raises InvalidInput for text that is not a kubeconfig or a context it does not have (naming the ones it has;
        the kubeconfig's content is never repeated)."""
        try:
            document = yaml.safe_load(kubeconfig)
        except yaml.YAMLError:
            raise InvalidInput("the kubeconfig is not valid YAML; pass the file `kubectl config view --raw` "
                               "writes (or the one your cloud provider gives)") from None
        if not isinstance(document, dict) or not isinstance(document.get("contexts"), list):
            raise InvalidInput("the kubeconfig has no contexts; pass the file `kubectl config view --raw` writes")
        names = [entry.get("name") for entry in document["contexts"] if isinstance(entry, dict)]
        wanted = context or document.get("current-context")
        if not wanted:
            raise InvalidInput(f"the kubeconfig has no current-context; name one of its contexts: {', '.join(names)}")
        if wanted not in names:
            raise InvalidInput(f"the kubeconfig has no context {wanted!r}; its contexts are: {', '.join(names)}")
        configuration = client.Configuration()
        configuration.retries = False  # no hidden retries: a timeout means timeout_s, not a multiple of it
        try:
            api = config.new_client_from_config_dict(document, context=wanted, persist_config=False,
                                                     client_configuration=configuration)
        except (config.ConfigException, ValueError, TypeError, KeyError) as error:
            raise InvalidInput(f"the kubeconfig's context {wanted!r} cannot be used: {_config_problem(error)}; "
                               "check its cluster and user entries") from None
        return cls(api, namespace, wanted, timeout_s, _exec_command(document, wanted))

    @classmethod
    def in_cluster(cls, namespace: str, timeout_s: float = 10) -> Cluster:
        """Connect from inside a pod with its ServiceAccount token (Kubernetes' in-cluster configuration).

        Raises InvalidInput when not running in a pod (no service account token or KUBERNETES_SERVICE_HOST)."""
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException as error:
            raise InvalidInput(f"not running inside a Kubernetes pod: {error}") from None
        configuration.retries = False
        return cls(client.ApiClient(configuration), namespace, None, timeout_s)

    def close(self) -> None:
        """Release the connection pool."""
        self._api.close()

    # reads

    def version(self) -> dict[str, Any]:
        """The API server's ``/version`` (``major``, ``minor``, ``gitVersion``, ...)."""
        return self._call("GET", "/version", verb="get", group="", resource="version", cluster_scoped=True)

    def list_nodes(self) -> list[dict[str, Any]]:
        """Every Node (cluster-scoped; needs ``list nodes``)."""
        return self.list("Node")

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        """The object ``kind``/``name`` in our namespace, or None when it does not exist."""
        return self._call("GET", self._path(kind, name), verb="get", kind=kind, missing_ok=True)

    def list(self, kind: str, labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
        """Every ``kind`` in our namespace carrying all of ``labels`` (None: all). Each item gets its ``kind`` and
        ``apiVersion`` back (the API leaves them off list items)."""
        query = {"labelSelector": ",".join(f"{key}={value}" for key, value in sorted(labels.items()))} if labels \
            else None
        answer = self._call("GET", self._path(kind), query=query, verb="list", kind=kind)
        return [{"kind": kind, "apiVersion": KINDS[kind].api_version, **item} for item in answer.get("items") or []]

    def events(self, field_selector: str | None = None) -> list[dict[str, Any]]:
        """core/v1 Events in our namespace, e.g. ``field_selector="involvedObject.name=<pod>"``."""
        query = {"fieldSelector": field_selector} if field_selector else None
        return self._call("GET", self._path("Event"), query=query, verb="list", kind="Event").get("items") or []

    def pod_log(self, pod: str, container: str | None = None, tail_lines: int = 5000, previous: bool = False) -> str:
        """The last ``tail_lines`` lines a pod's container wrote (``previous``: its last terminated run)."""
        query: dict[str, Any] = {"tailLines": tail_lines}
        if container:
            query["container"] = container
        if previous:
            query["previous"] = True
        return self._call("GET", self._path("Pod", pod, "log"), query=query, verb="get", kind="Pod",
                          subresource="log", text=True)

    def get_scale(self, deployment: str) -> dict[str, Any] | None:
        """A Deployment's ``autoscaling/v1`` Scale (``spec.replicas`` wanted, ``status.replicas`` running), or None."""
        return self._call("GET", self._path("Deployment", deployment, "scale"), verb="get", kind="Deployment",
                          subresource="scale", missing_ok=True)

    def allowed(self, group: str, resource: str, verb: str, cluster_scoped: bool = False) -> bool:
        """Whether our credentials may ``verb`` ``resource`` of API ``group`` (``""`` for core) in our namespace (or
        cluster-wide when ``cluster_scoped``), asked with a SelfSubjectAccessReview. ``resource`` may name a
        subresource: ``pods/log``, ``deployments/scale``."""
        resource, _, subresource = resource.partition("/")
        attributes = {"group": group, "resource": resource, "verb": verb}
        if subresource:
            attributes["subresource"] = subresource
        if not cluster_scoped:
            attributes["namespace"] = self.namespace
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                  "spec": {"resourceAttributes": attributes}}
        answer = self._call("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=review,
                            verb="create", group="authorization.k8s.io", resource="selfsubjectaccessreviews",
                            cluster_scoped=True)
        return bool(answer.get("status", {}).get("allowed"))

    # writes

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply ``obj`` (a full manifest with ``kind`` and ``metadata.name``) into our namespace as field
        manager ``modelport``, taking over conflicting fields (``force``); returns the object as stored."""
        kind = obj["kind"]
        metadata = dict(obj.get("metadata") or {})
        if KINDS[kind].namespaced:
            metadata["namespace"] = self.namespace
        body = {**obj, "apiVersion": obj.get("apiVersion") or KINDS[kind].api_version, "metadata": metadata}
        return self._call("PATCH", self._path(kind, metadata["name"]), query={"fieldManager": MANAGER, "force": True},
                          body=body, content_type=_APPLY, verb="patch", kind=kind)

    def delete(self, kind: str, name: str) -> bool:
        """Delete ``kind``/``name`` (dependents such as a Deployment's pods go in the background); False when it
        was not there."""
        answer = self._call("DELETE", self._path(kind, name), query={"propagationPolicy": "Background"},
                            verb="delete", kind=kind, missing_ok=True)
        return answer is not None

    def scale(self, deployment: str, replicas: int) -> None:
        """Set a Deployment's wanted replicas through its scale subresource (what ``kubectl scale`` does)."""
        self._call("PATCH", self._path("Deployment", deployment, "scale"), body={"spec": {"replicas": replicas}},
                   content_type=_MERGE, verb="patch", kind="Deployment", subresource="scale")

    # plumbing

    def _path(self, kind: str, name: str | None = None, subresource: str | None = None) -> str:
        where = KINDS[kind]
        path = f"/{where.prefix}/namespaces/{self.namespace}/{where.plural}" if where.namespaced \
            else f"/{where.prefix}/{where.plural}"
        return path + (f"/{name}" if name else "") + (f"/{subresource}" if subresource else "")

    def _call(self, method: str, path: str, *, verb: str, kind: str | None = None, group: str = "",
              resource: str = "", subresource: str = "", cluster_scoped: bool = False,
              query: dict[str, Any] | None = None, body: dict[str, Any] | None = None, content_type: str | None = None,
              missing_ok: bool = False, text: bool = False) -> Any:
        if kind:
            group, resource, cluster_scoped = KINDS[kind].group, KINDS[kind].plural, not KINDS[kind].namespaced
        headers = {"Accept": "*/*" if text else "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        method, url, headers, body, _ = self._api.param_serialize(method, path, query_params=query,
                                                                  header_params=headers, body=body,
                                                                  auth_settings=["BearerToken"])
        try:
            response = self._api.call_api(method, url, header_params=headers, body=body,
                                          _request_timeout=self.timeout_s)
            data = response.read()
        except client.ApiException as error:  # the REST layer turns TLS failures into status 0
            raise self._transport_error(error) from None
        except urllib3.exceptions.HTTPError as error:
            raise self._transport_error(error) from None
        if 200 <= response.status < 300:
            return data.decode("utf-8", "replace") if text else json.loads(data or b"{}")
        if response.status == 404 and missing_ok:
            return None
        where = None if cluster_scoped else self.namespace
        full = f"{resource}/{subresource}" if subresource else resource
        raise self._status_error(response.status, _api_message(data), verb, group, full, where)

    def _transport_error(self, error: Exception) -> ClusterError:
        reason = error.reason if isinstance(error, urllib3.exceptions.MaxRetryError) else error
        if isinstance(reason, urllib3.exceptions.SSLError) or "SSLError" in str(getattr(reason, "reason", "")):
            return ClusterTLSError(f"TLS handshake with the Kubernetes API at {self.server} failed; the kubeconfig's "
                                   "server address and certificate-authority must match the cluster's certificate")
        if isinstance(reason, urllib3.exceptions.NameResolutionError):
            what = "host not found"
        elif isinstance(reason, urllib3.exceptions.NewConnectionError):
            what = "connection refused" if "refused" in str(reason).lower() else "no route to the host"
        elif isinstance(reason, urllib3.exceptions.TimeoutError):
            what = f"no answer within {self.timeout_s:g} s"
        else:
            what = f"connection failed ({type(reason).__name__})"
        return ClusterUnreachable(f"cannot reach the Kubernetes API at {self.server}: {what}; check the address, and "
                                  "that this machine is allowed by the cluster's authorized IP ranges or can reach a "
                                  "private cluster's network")

    def _status_error(self, status: int, message: str, verb: str, group: str, resource: str,
                      namespace: str | None) -> ClusterError:
        if status == 401:
            plugin = f" (or `{self.credential_plugin}`, which the kubeconfig runs for a token, is missing or not " \
                "logged in where modelport runs)" if self.credential_plugin else ""
            return ClusterUnauthorized(f"the Kubernetes API at {self.server} rejected the credentials (401): they are "
                                       f"wrong or expired{plugin}; get a fresh kubeconfig and refresh the compute "
                                       "target")
        if status == 403:
            where = f"in namespace {namespace!r}" if namespace else "cluster-wide"
            kind = "Role" if namespace else "ClusterRole"
            return ClusterForbidden(f"the Kubernetes credentials may not {verb} {resource} (API group "
                                    f"{group or 'core'!r}) {where}; grant it with a {kind} rule apiGroups: "
                                    f"[{group!r}], resources: [{resource!r}], verbs: [{verb!r}]",
                                    verb, group, resource, namespace)
        return ClusterApiError(f"the Kubernetes API answered {status} to {verb} {resource}: {message}", status)


def _api_message(data: bytes) -> str:
    """The ``message`` of a ``Status`` answer, else the start of the body, on one line."""
    try:
        message = json.loads(data).get("message")
    except (ValueError, AttributeError):
        message = None
    text = message or data.decode("utf-8", "replace")[:300] or "no message"
    return " ".join(str(text).split())


def _exec_command(document: dict[str, Any], context: str) -> str | None:
    """The base name of the exec credential plugin ``context``'s user runs, if any."""
    entry = next((c.get("context") or {} for c in document["contexts"] if c.get("name") == context), {})
    user = next((u.get("user") or {} for u in document.get("users") or [] if u.get("name") == entry.get("user")), {})
    command = (user.get("exec") or {}).get("command")
    return str(command).replace("\\", "/").rsplit("/", 1)[-1] if command else None


def _config_problem(error: Exception) -> str:
    """What the kubeconfig loader disliked, without any value from the file (keys and names only)."""
    if isinstance(error, KeyError):
        return f"missing {error}"
    text = " ".join(str(error).split())
    return text[:200] if "-----BEGIN" not in text and "token" not in text.lower() else "an entry is malformed"
