"""Names, labels and fixed figures that every Kubernetes object modelport makes shares.

Every object carries ``managed-by: modelport`` and the workspace and compute target that own it
(so detach removes exactly what that attachment made, and a second attachment over a live one is
recognised); scoring objects also carry their endpoint, version and replica set.
"""

from __future__ import annotations

import hashlib
import re

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "modelport"  # the managed-by value and the server-side apply field manager
COMPONENT = "app.kubernetes.io/component"
SCORING = "scoring"  # COMPONENT of a version's Deployment, Service and pods
FRONT_END = "front-end"  # COMPONENT of the front end's objects
WORKSPACE = "modelport.io/workspace"
COMPUTE_TARGET = "modelport.io/compute-target"
ENDPOINT = "modelport.io/endpoint"
VERSION = "modelport.io/version"
REPLICA_SET = "modelport.io/replica-set"

SCORING_PORT = 5001  # the runtime's port in a scoring container (Azure ML's inference server port)
FRONT_END_PORT = 8080  # Envoy's listener in the front end pod
FRONT_END_TLS_PORT = 8443
FRONT_END_NAME = "modelport-frontend"  # its Deployment, Service, ServiceAccount, Role and RoleBinding
ROUTES_CONFIGMAP = "modelport-routes"  # routing state the control plane writes, the controller reads
AUTH_SECRET = "modelport-auth"  # keys and the token public key, written by the control plane
APPLIED_CONFIGMAP = "modelport-frontend-applied"  # what the controller applied, read back by the control plane
# what the front end pod asks for, per container (Envoy, controller): the attach check needs a node with room
FRONT_END_REQUESTS = {"envoy": {"cpu": "250m", "memory": "256Mi"}, "controller": {"cpu": "100m", "memory": "256Mi"}}

_LABEL_VALUE = re.compile(r"[^A-Za-z0-9_.-]")


def label_value(value: str) -> str:
    """``value`` as a label value (at most 63 of ``[A-Za-z0-9_.-]``, alphanumeric at both ends)."""
    cleaned = _LABEL_VALUE.sub("-", value).strip("-_.")
    return cleaned if len(cleaned) <= 63 else _shortened(cleaned, 63)


def target_labels(workspace: str, compute_target: str) -> dict[str, str]:
    """The labels of every object an attachment owns."""
    return {MANAGED_BY: MANAGER, WORKSPACE: label_value(workspace), COMPUTE_TARGET: label_value(compute_target)}


def version_labels(workspace: str, compute_target: str, endpoint: str, version: str,
                   replica_set: str) -> dict[str, str]:
    """The labels of a replica set's Deployment, Service, Secret and pods."""
    return {**target_labels(workspace, compute_target), COMPONENT: SCORING, ENDPOINT: endpoint, VERSION: version,
            REPLICA_SET: replica_set}


def selector(labels: dict[str, str]) -> str:
    """A label selector string (``k=v,k2=v2``) matching every one of ``labels``."""
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def replica_set_name(endpoint: str, replica_set: str) -> str:
    """The Deployment and Service name of an endpoint's replica set: ``<endpoint>-<replica set>``, a DNS label
    (at most 63 characters; a longer one keeps a hash of the whole)."""
    return _shortened(f"{endpoint}-{replica_set}", 63)


def _shortened(name: str, limit: int) -> str:
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:limit - 9].rstrip('-_.')}-{digest}"
