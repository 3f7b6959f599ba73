"""Desired state of a compute target: where an endpoint's replicas run.

``local`` (this machine) exists in every workspace and is not stored. A Kubernetes cluster is
*attached* (Azure ML's ``ComputeTarget.attach`` with ``KubernetesCompute.attach_configuration``):
a ``KubernetesTarget`` names the kubeconfig context, the namespace its objects live in and how
the front end is exposed. Its credentials (kubeconfig, TLS key) are kept apart from it, in files
readable by the workspace owner only, and never appear in these objects.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ..errors import InvalidInput

KUBERNETES = "Kubernetes"  # Azure ML's compute type for an attached cluster (AksCompute's is "AKS")
COMPUTE_NAME_RULE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]$")  # Azure ML: 3-24, letters, digits, dashes
NAMESPACE_RULE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
FAST_PROD = "FastProd"
DEV_TEST = "DevTest"
MIN_VCPUS = {FAST_PROD: 12.0, DEV_TEST: 2.0}  # Azure ML's rule for AKS clusters, by cluster purpose
INGRESS_SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
IMAGE_BUILDERS = ("podman", "docker", "kaniko")
ClusterPurpose = Literal["FastProd", "DevTest"]


def check_compute_name(name: Any) -> str:
    """``name`` when it keeps Azure ML's compute name rule (3-24 letters, digits and dashes, starting with a
    letter, not ending with a dash); InvalidInput naming the rule otherwise."""
    if not (isinstance(name, str) and COMPUTE_NAME_RULE.match(name)):
        raise InvalidInput(f"compute target name {name!r} is invalid: use 3-24 letters, digits and dashes, starting "
                           "with a letter and not ending with a dash")
    return name


@dataclass(frozen=True)
class KubernetesTarget:
    """An attached Kubernetes cluster, as stored (no credentials).

    ``server``: the API server URL read from the kubeconfig (with ``namespace``, what makes an attachment
    unique in a workspace); ``context``: the kubeconfig context (None: its current one);
    ``cluster_purpose``: ``FastProd`` (at least 12 vCPU) or ``DevTest`` (at least 2);
    ``ingress_service_type``: how the front end's Service is exposed; ``ssl_cname``: the host name its TLS
    certificate is for (``has_tls``: a certificate and key were given); ``image_registry``: where built
    images are pushed and pulled (``host[:port]/path``; None: images stay with the builder, which suits a
    single-node cluster that shares its image store); ``image_builder``: ``podman``, ``docker`` or
    ``kaniko`` (a Job in the cluster)."""

    name: str
    server: str
    namespace: str = "default"
    context: str | None = None
    cluster_purpose: ClusterPurpose = FAST_PROD
    ingress_service_type: str = "LoadBalancer"
    ssl_cname: str | None = None
    has_tls: bool = False
    image_registry: str | None = None
    image_builder: str = "podman"

    def __post_init__(self) -> None:
        check_compute_name(self.name)
        if not NAMESPACE_RULE.match(self.namespace or ""):
            raise InvalidInput(f"namespace {self.namespace!r} is invalid: use up to 63 lowercase letters, digits "
                               "and dashes, starting and ending with a letter or digit")
        if self.cluster_purpose not in MIN_VCPUS:
            raise InvalidInput(f"cluster_purpose {self.cluster_purpose!r} is not one of {FAST_PROD}, {DEV_TEST}")
        if self.ingress_service_type not in INGRESS_SERVICE_TYPES:
            raise InvalidInput(f"ingress_service_type {self.ingress_service_type!r} is not one of "
                               f"{', '.join(INGRESS_SERVICE_TYPES)}")
        if self.image_builder not in IMAGE_BUILDERS:
            raise InvalidInput(f"image_builder {self.image_builder!r} is not one of {', '.join(IMAGE_BUILDERS)}")

    @property
    def min_vcpus(self) -> float:
        return MIN_VCPUS[self.cluster_purpose]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KubernetesTarget:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
