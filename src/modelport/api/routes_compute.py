"""Compute targets over HTTP: thin routes over ``operations.compute`` (attach, list, show, refresh, detach).

Called by the SDK's ``ComputeTarget`` family and the CLI's ``computetarget`` group. Attach (and refresh, to replace
rotated credentials) receives credentials (the kubeconfig text, a TLS key); no answer carries them back.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from ..backends.kubernetes.cluster import ClusterError
from ..errors import Conflict, InvalidInput, NotFound, ServerUnavailable
from ..operations.compute import AttachRequest, ComputeOperations
from ..spec.compute import COMPUTE_NAME_RULE, DEV_TEST, FAST_PROD, IMAGE_BUILDERS, INGRESS_SERVICE_TYPES, NAMESPACE_RULE
from .openapi_errors import errors
from .schemas import Timestamp, documented

router = APIRouter(tags=["compute"], responses=errors(ServerUnavailable))
ComputeName = Annotated[str, Path(description="the compute target's name ('local': this machine)",
                                  json_schema_extra=documented(pattern=COMPUTE_NAME_RULE.pattern))]


def compute(request: Request) -> ComputeOperations:
    """FastAPI dependency: the app's ComputeOperations (one per control plane)."""
    return request.app.state.compute


class ComputeAttach(BaseModel):
    """``KubernetesCompute.attach_configuration``'s settings, with the files' contents in place of their paths."""

    kubeconfig: str = Field(description="the kubeconfig's YAML text, flattened (certificates and keys inline)")
    context: str | None = Field(None, description="one of its contexts (default: its current-context)")
    namespace: str = Field("default", json_schema_extra=documented(pattern=NAMESPACE_RULE.pattern, maxLength=63))
    cluster_purpose: str = Field(FAST_PROD, json_schema_extra=documented(enum=[FAST_PROD, DEV_TEST]))
    ingress_service_type: str = Field("LoadBalancer", json_schema_extra=documented(enum=list(INGRESS_SERVICE_TYPES)))
    ssl_cert_pem: str | None = Field(None, description="the front end's TLS certificate (PEM text)")
    ssl_key_pem: str | None = Field(None, description="its unencrypted private key (PEM text)")
    ssl_cname: str | None = Field(None, description="the host name the certificate is for")
    image_registry: str | None = Field(None, description="host[:port]/path images are pushed to and pulled from")
    image_builder: str = Field("podman", json_schema_extra=documented(enum=list(IMAGE_BUILDERS)))


class ComputeCredentials(BaseModel):
    """New credentials for an attached cluster (after its token or certificate was rotated)."""

    kubeconfig: str = Field(description="the kubeconfig's YAML text, flattened (certificates and keys inline), for "
                                        "the same API server the target is attached to")
    context: str | None = Field(None, description="one of its contexts (default: its current-context)")


class ComputeView(BaseModel):
    """A compute target as the SDK shows it: Azure ML's provisioning state and errors (the last check's), its
    settings (None for ``local``), what the last check read, and no credential."""

    name: str
    type: Literal["Local", "Kubernetes"]
    provisioning_state: Literal["Succeeded", "Failed"]
    provisioning_errors: list[str] = Field(description="every problem the last check found")
    warnings: list[str] = Field(description="what works but needs care (e.g. a DevTest cluster)")
    server: str | None = Field(None, description="the Kubernetes API URL")
    namespace: str | None = None
    context: str | None = None
    cluster_purpose: Literal["FastProd", "DevTest"] | None = None
    ingress_service_type: str | None = None
    ssl_cname: str | None = None
    has_tls: bool | None = None
    image_registry: str | None = None
    image_builder: str | None = None
    server_version: str | None = Field(None, description="the API server's version at the last check")
    vcpus: float | None = Field(None, description="vCPUs of schedulable nodes at the last check")
    created_at: Timestamp | None = None
    checked_at: Timestamp | None = None


class ComputeDetached(BaseModel):
    """A detached compute target and what was removed from its namespace."""

    detached: str
    removed: list[str] = Field(description="Kind/name of each object removed (those labelled with the target)")


@router.put("/computes/{name}", status_code=201, response_model=ComputeView,
            responses=errors(InvalidInput, Conflict, ClusterError))
def attach(name: ComputeName, body: ComputeAttach, ops: ComputeOperations = Depends(compute)) -> dict:
    """Attach a Kubernetes cluster (``ComputeTarget.attach``): every check runs, and a 400 (409 when only
    existing attachments are in the way) lists every problem, one per line; nothing is stored then. The answer's
    ``warnings`` say what works but needs care."""
    return ops.attach(name, AttachRequest(**body.model_dump()))


@router.get("/computes", response_model=list[ComputeView])
def list_computes(ops: ComputeOperations = Depends(compute)) -> list[dict]:
    """Every compute target: ``local`` (this machine), then the attached clusters by name."""
    return ops.list()


@router.get("/computes/{name}", response_model=ComputeView, responses=errors(NotFound))
def show(name: ComputeName, ops: ComputeOperations = Depends(compute)) -> dict:
    """One compute target (404 naming the attached ones)."""
    return ops.show(name)


@router.post("/computes/{name}/refresh", response_model=ComputeView,
             responses=errors(InvalidInput, NotFound, Conflict))
def refresh(name: ComputeName, body: ComputeCredentials | None = None,
            ops: ComputeOperations = Depends(compute)) -> dict:
    """Run the attach checks again (``refresh_state``): ``provisioning_state`` is ``Failed`` with every problem
    in ``provisioning_errors``, or ``Succeeded``. Without a body the stored credentials are used; with one (new
    credentials, e.g. after a token rotation) they are checked as attach checks them and, when everything passes on
    the same API server, replace the stored ones; else a 400 lists every problem (or names both API servers) and
    the stored credentials stay. 404 for an unknown target, 409 for ``local`` with a body (it has no
    credentials)."""
    if body is None:
        return ops.refresh(name)
    return ops.refresh(name, body.kubeconfig, body.context)


@router.delete("/computes/{name}", response_model=ComputeDetached, responses=errors(NotFound, Conflict))
def detach(name: ComputeName, force: bool = False, ops: ComputeOperations = Depends(compute)) -> dict:
    """Detach: remove every object labelled with this target from its namespace, then forget it and its
    credentials. 409 for ``local`` (built in), naming the services still deployed on it, or when the cluster
    cannot be reached or refuses (``force=true`` forgets the target anyway and leaves its objects)."""
    return {"detached": name, "removed": ops.detach(name, force)}
