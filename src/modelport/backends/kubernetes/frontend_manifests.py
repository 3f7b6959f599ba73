"""The Kubernetes objects of an attachment's front end: Envoy plus the modelport controller in one pod.

The Kubernetes backend applies these when a cluster is attached (and on each deploy, to keep them current);
``modelport kubernetes render`` prints them. The pod runs two containers from the modelport image: ``envoy``
(the data plane, reading its xDS files) and ``controller`` (``modelport.frontend.controller``: routing state and
EndpointSlices in, xDS files out, autoscaling through the scale subresource), sharing ``/var/run/modelport``
(the xDS files and Envoy's admin socket). The controller's ServiceAccount gets ``rbac.CONTROLLER_RULES`` only.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...frontend.config import bootstrap
from ...spec.compute import KubernetesTarget
from . import objects, rbac
from .manifests import RUN_AS_USER

BOOTSTRAP_CONFIGMAP = "modelport-envoy-bootstrap"
TLS_SECRET = "modelport-tls"  # the front end's certificate and key, when the attachment has TLS
CONFIG_DIR = Path("/etc/modelport")  # the Envoy bootstrap (and tls/ with TLS)
TLS_DIR = CONFIG_DIR / "tls"  # tls.crt and tls.key, from a kubernetes.io/tls Secret
RUN_DIR = Path("/var/run/modelport")  # shared by both containers
XDS_DIR = RUN_DIR / "xds"
ADMIN_SOCKET = RUN_DIR / "envoy-admin.sock"
BOOTSTRAP_FILE = "bootstrap.json"
BOOTSTRAP_HASH = "modelport.io/bootstrap-sha256"  # pod template annotation: a new bootstrap rolls the pod
FIRST_CONFIG_WAIT_S = 60  # how long the controller's postStart hook waits for its first xDS files
API_TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"  # where in-cluster clients look
EMPTY_ROUTES = {"revision": 0, "services": []}


@dataclass(frozen=True)
class FrontEndSpec:
    """An attachment's front end: ``image`` is the modelport image (Envoy and modelport inside); ``tls_secret``
    names a ``kubernetes.io/tls`` Secret (see ``tls_secret``) to serve HTTPS from, None for HTTP only."""

    workspace: str
    target: KubernetesTarget
    image: str
    tls_secret: str | None = None

    @property
    def labels(self) -> dict[str, str]:
        return {**objects.target_labels(self.workspace, self.target.name), objects.COMPONENT: objects.FRONT_END}


def front_end_objects(spec: FrontEndSpec) -> list[dict[str, Any]]:
    """ServiceAccount, Role, RoleBinding, routes ConfigMap, Envoy bootstrap ConfigMap, Deployment and Service, in
    the order to apply them.

    The routes ConfigMap holds ``routes.json`` = ``{"revision": 0, "services": []}``: the control plane owns its
    data afterwards, so apply it only when it does not exist yet (re-applying would empty the routes).
    """
    the_bootstrap = _bootstrap_json()
    return [
        _object("v1", "ServiceAccount", objects.FRONT_END_NAME, spec),
        {**_object("rbac.authorization.k8s.io/v1", "Role", objects.FRONT_END_NAME, spec),
         "rules": copy.deepcopy(rbac.CONTROLLER_RULES)},
        {**_object("rbac.authorization.k8s.io/v1", "RoleBinding", objects.FRONT_END_NAME, spec),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": objects.FRONT_END_NAME},
         "subjects": [{"kind": "ServiceAccount", "name": objects.FRONT_END_NAME,
                       "namespace": spec.target.namespace}]},
        {**_object("v1", "ConfigMap", objects.ROUTES_CONFIGMAP, spec),
         "data": {"routes.json": json.dumps(EMPTY_ROUTES)}},
        {**_object("v1", "ConfigMap", BOOTSTRAP_CONFIGMAP, spec), "data": {BOOTSTRAP_FILE: the_bootstrap}},
        _deployment(spec, the_bootstrap),
        _service(spec),
    ]


def tls_secret(workspace: str, target: KubernetesTarget, cert_pem: str, key_pem: str) -> dict[str, Any]:
    """The front end's certificate (PEM chain) and private key (PEM) as the ``kubernetes.io/tls`` Secret
    ``TLS_SECRET``. It holds a private key: apply it, never log or print it."""
    labels = {**objects.target_labels(workspace, target.name), objects.COMPONENT: objects.FRONT_END}
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": TLS_SECRET, "namespace": target.namespace, "labels": labels},
            "type": "kubernetes.io/tls", "stringData": {"tls.crt": cert_pem, "tls.key": key_pem}}


def controller_command(target: KubernetesTarget, tls: bool) -> list[str]:
    """The controller container's command (``modelport.frontend.controller``'s flags)."""
    command = ["python", "-m", "modelport.frontend.controller", "--namespace", target.namespace,
               "--compute-target", target.name, "--xds-dir", str(XDS_DIR), "--admin-socket", str(ADMIN_SOCKET)]
    return [*command, "--tls-dir", str(TLS_DIR)] if tls else command


def envoy_command() -> list[str]:
    """The envoy container's command: the bootstrap from its ConfigMap; no hot restart (one Envoy per pod, as the
    local front end runs it)."""
    return ["envoy", "-c", str(CONFIG_DIR / BOOTSTRAP_FILE), "--disable-hot-restart"]


def _bootstrap_json() -> str:
    return json.dumps(bootstrap(XDS_DIR, ADMIN_SOCKET), indent=2)


def _object(api_version: str, kind: str, name: str, spec: FrontEndSpec) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind,
            "metadata": {"name": name, "namespace": spec.target.namespace, "labels": spec.labels}}


def _first_config_hook() -> dict[str, Any]:
    """A postStart hook on the controller that returns once its first ``lds.json`` is written (at most
    ``FIRST_CONFIG_WAIT_S``). The kubelet starts a pod's containers in order and waits for each one's postStart
    hook, so Envoy (listed next) starts with the xDS files its bootstrap names, which must exist when it starts."""
    lds = XDS_DIR / "lds.json"
    wait = (f"import os, sys, time; deadline = time.monotonic() + {FIRST_CONFIG_WAIT_S}\n"
            f"while not os.path.exists({str(lds)!r}) and time.monotonic() < deadline: time.sleep(0.1)\n"
            f"sys.exit(0 if os.path.exists({str(lds)!r}) else 1)")
    return {"postStart": {"exec": {"command": ["python", "-c", wait]}}}


def _deployment(spec: FrontEndSpec, the_bootstrap: str) -> dict[str, Any]:
    tls = spec.tls_secret is not None
    restricted = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                  "capabilities": {"drop": ["ALL"]}}
    shared = {"name": "run", "mountPath": str(RUN_DIR)}
    controller = {"name": "controller", "image": spec.image, "imagePullPolicy": "IfNotPresent",
                  "command": controller_command(spec.target, tls),
                  "resources": _requests("controller"), "lifecycle": _first_config_hook(),
                  "securityContext": restricted,
                  "volumeMounts": [shared, {"name": "tmp", "mountPath": "/tmp"},
                                   {"name": "api-token", "mountPath": API_TOKEN_DIR, "readOnly": True}]}
    ports = [{"name": "http", "containerPort": objects.FRONT_END_PORT, "protocol": "TCP"}]
    # subPath mounts: the bootstrap file and tls/ side by side under CONFIG_DIR, not one volume inside another
    mounts = [shared, {"name": "bootstrap", "mountPath": str(CONFIG_DIR / BOOTSTRAP_FILE), "subPath": BOOTSTRAP_FILE,
                       "readOnly": True}]
    volumes: list[dict[str, Any]] = [{"name": "run", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}},
                                     {"name": "bootstrap", "configMap": {"name": BOOTSTRAP_CONFIGMAP}},
                                     _api_token_volume()]
    if tls:
        ports.append({"name": "https", "containerPort": objects.FRONT_END_TLS_PORT, "protocol": "TCP"})
        mounts.append({"name": "tls", "mountPath": str(TLS_DIR), "readOnly": True})
        # owner root, group fsGroup: readable by the containers' user, by no other
        volumes.append({"name": "tls", "secret": {"secretName": spec.tls_secret, "defaultMode": 0o440}})
    envoy = {"name": "envoy", "image": spec.image, "imagePullPolicy": "IfNotPresent", "command": envoy_command(),
             "ports": ports, "resources": _requests("envoy"),
             "readinessProbe": {"tcpSocket": {"port": objects.FRONT_END_PORT}, "periodSeconds": 5,
                                "failureThreshold": 3},
             "securityContext": restricted, "volumeMounts": mounts}
    digest = hashlib.sha256(the_bootstrap.encode()).hexdigest()
    pod = {"serviceAccountName": objects.FRONT_END_NAME,
           "automountServiceAccountToken": False,  # the token goes to the controller only (see _api_token_volume)
           "enableServiceLinks": False,
           "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS_USER, "runAsGroup": RUN_AS_USER,
                               "fsGroup": RUN_AS_USER, "seccompProfile": {"type": "RuntimeDefault"}},
           "containers": [controller, envoy], "volumes": volumes}
    return {**_object("apps/v1", "Deployment", objects.FRONT_END_NAME, spec),
            "spec": {"replicas": 1,  # one controller autoscales the scoring Deployments
                     "selector": {"matchLabels": spec.labels},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                     "template": {"metadata": {"labels": spec.labels, "annotations": {BOOTSTRAP_HASH: digest}},
                                  "spec": pod}}}


def _api_token_volume() -> dict[str, Any]:
    """What Kubernetes' automount gives every container (token, cluster CA, namespace), as a volume mounted into
    the controller only: Envoy, which faces clients, holds no credentials to the API."""
    return {"name": "api-token", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}}


def _requests(container: str) -> dict[str, Any]:
    requests = objects.FRONT_END_REQUESTS[container]
    return {"requests": dict(requests), "limits": {"memory": requests["memory"]}}


def _service(spec: FrontEndSpec) -> dict[str, Any]:
    ports = [{"name": "http", "port": 80, "targetPort": objects.FRONT_END_PORT, "protocol": "TCP"}]
    if spec.tls_secret is not None:
        ports.append({"name": "https", "port": 443, "targetPort": objects.FRONT_END_TLS_PORT, "protocol": "TCP"})
    return {**_object("v1", "Service", objects.FRONT_END_NAME, spec),
            "spec": {"type": spec.target.ingress_service_type, "selector": spec.labels, "ports": ports}}
