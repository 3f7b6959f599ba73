"""Web services and endpoints over HTTP: thin routes over ``operations.endpoints`` (deploy, update, versions,
traffic, keys, tokens, logs)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from ..errors import Conflict, InvalidInput, NotFound, ServerUnavailable
from ..frontend.envoy import FrontEndError
from ..operations.endpoints import TrafficInput, VersionInput
from ..sdk.deploy_config import SERVICE_NAME
from ..spec import traffic
from .context import Context, context
from .openapi_errors import errors
from .schemas import (
    Deleted,
    ServiceKeys,
    ServiceLogs,
    ServiceToken,
    ServiceView,
    TrafficHistoryView,
    any_case,
    documented,
)

router = APIRouter(tags=["services"], responses=errors(ServerUnavailable))


class Deployment(BaseModel):
    name: str = Field(json_schema_extra=documented(pattern=SERVICE_NAME.pattern, minLength=3, maxLength=32))
    models: list[str] = Field(json_schema_extra=documented(minItems=1))
    entry_script: str
    snapshot: str
    source_directory: str | None = None  # the source folder's name: the snapshot lies in <app root>/<name>/
    environment: dict[str, Any] | None = None
    deploy: dict[str, Any]
    overwrite: bool = False


class ServiceUpdate(BaseModel):
    models: list[str] | None = Field(None, json_schema_extra=documented(minItems=1))
    entry_script: str | None = None
    snapshot: str | None = None
    source_directory: str | None = None
    environment: dict[str, Any] | None = None
    deploy: dict[str, Any] | None = None


class KeyRegeneration(BaseModel):
    key_type: str = Field(json_schema_extra=documented(pattern=any_case("primary", "secondary")))
    set_key: str | None = None


class TrafficSettings(BaseModel):
    """A version's traffic settings (None: unchanged)."""

    traffic_percentile: float | None = Field(None, json_schema_extra=documented(minimum=0, maximum=100))
    is_default: bool | None = None
    is_control_version_type: bool | None = None
    mirror_percentile: float | None = Field(None, json_schema_extra=documented(minimum=0, maximum=100))

    def traffic_input(self) -> TrafficInput:
        return TrafficInput(self.traffic_percentile, self.is_default, self.is_control_version_type,
                            self.mirror_percentile)


class VersionBody(ServiceUpdate, TrafficSettings):
    """A version to create or change: what it runs (None: the default version's, or unchanged) and its traffic."""


class NewVersion(VersionBody):
    version_name: str


class TrafficChange(BaseModel):
    """New traffic settings of some versions, applied together or not at all."""

    versions: dict[str, TrafficSettings] = Field(json_schema_extra=documented(minProperties=1))


class Promotion(BaseModel):
    version_name: str


CHANGES = errors(InvalidInput, NotFound, Conflict, FrontEndError)


@router.post("/services", status_code=201, response_model=ServiceView,
             responses=errors(InvalidInput, NotFound, Conflict))
def deploy(body: Deployment, ctx: Context = Depends(context)) -> dict:
    """Record a service's (or, with AksEndpoint settings, an endpoint's) desired state; the reconciler makes
    it run (poll GET /services/{name})."""
    return service_view(ctx, ctx.operations.deploy(body.name, _version_input(body), body.overwrite))


@router.get("/services", response_model=list[ServiceView])
def list_services(ctx: Context = Depends(context)) -> list[dict]:
    return [service_view(ctx, r) for r in ctx.store.list_services()]


@router.get("/services/{name}", response_model=ServiceView, responses=errors(NotFound))
def get_service(name: str, ctx: Context = Depends(context)) -> dict:
    return service_view(ctx, ctx.store.get_service(name))


@router.patch("/services/{name}", response_model=ServiceView, responses=CHANGES)
def update(name: str, body: ServiceUpdate, ctx: Context = Depends(context)) -> dict:
    """A web service: a rolling update (new replicas take over when ready). An endpoint: its auth, CORS,
    description and tags."""
    return service_view(ctx, ctx.operations.update(name, _version_input(body)))


@router.delete("/services/{name}", response_model=Deleted, responses=errors(NotFound, Conflict))
def delete(name: str, ctx: Context = Depends(context)) -> dict:
    """Delete the service or endpoint; its replicas are stopped before this returns."""
    ctx.operations.delete(name)
    return {"deleted": name}


@router.post("/services/{name}/versions", status_code=201, response_model=ServiceView, responses=CHANGES)
def create_version(name: str, body: NewVersion, ctx: Context = Depends(context)) -> dict:
    """AksEndpoint.create_version: returns once the front end routes the new traffic assignment (a version
    whose replicas are not ready yet gets its share once they are; the default version serves it meanwhile)."""
    return service_view(ctx, ctx.operations.create_version(name, body.version_name, _version_input(body),
                                                           body.traffic_input()))


@router.patch("/services/{name}/versions/{version}", response_model=ServiceView, responses=CHANGES)
def update_version(name: str, version: str, body: VersionBody, ctx: Context = Depends(context)) -> dict:
    """AksEndpoint.update_version: traffic at once; what it runs by a rolling update."""
    return service_view(ctx, ctx.operations.update_version(name, version, _version_input(body), body.traffic_input()))


@router.delete("/services/{name}/versions/{version}", response_model=ServiceView, responses=CHANGES)
def delete_version(name: str, version: str, ctx: Context = Depends(context)) -> dict:
    """AksEndpoint.delete_version (not the default version while others exist)."""
    return service_view(ctx, ctx.operations.delete_version(name, version))


@router.put("/services/{name}/traffic", response_model=ServiceView, responses=CHANGES)
def set_traffic(name: str, body: TrafficChange, ctx: Context = Depends(context)) -> dict:
    """Change the traffic settings of several versions together: all of them or, when a rule is broken (the
    message names it), none."""
    changes = {version: settings.traffic_input() for version, settings in body.versions.items()}
    return service_view(ctx, ctx.operations.set_traffic(name, changes))


@router.post("/services/{name}/promote", response_model=ServiceView, responses=CHANGES)
def promote(name: str, body: Promotion, ctx: Context = Depends(context)) -> dict:
    """The version takes 100 % of the traffic and becomes default and control."""
    return service_view(ctx, ctx.operations.promote(name, body.version_name))


@router.post("/services/{name}/rollback", response_model=ServiceView, responses=CHANGES)
def rollback(name: str, ctx: Context = Depends(context)) -> dict:
    """Back to the traffic assignment before the last change."""
    return service_view(ctx, ctx.operations.rollback(name))


@router.get("/services/{name}/history", response_model=TrafficHistoryView, responses=errors(NotFound))
def history(name: str, ctx: Context = Depends(context)) -> dict:
    """The endpoint's earlier traffic assignments (oldest first) and the current one."""
    record = ctx.store.get_service(name)
    endpoint = record.endpoint
    since = endpoint.history[-1].at if endpoint.history else record.created_at.isoformat(timespec="seconds")
    return {"history": [h.to_dict() for h in endpoint.history],
            "current": traffic.assignment(endpoint, "current", since).to_dict()}


@router.get("/services/{name}/logs", response_model=ServiceLogs, responses=errors(NotFound))
def logs(name: str, num_lines: int = 5000, version: str | None = None, init: bool = False,
         ctx: Context = Depends(context)) -> dict:
    """The last lines of a version's replica logs (default: the default version's); ``init=true``: of its
    environment's or image's build (Azure ML's ``get_logs(init=True)``)."""
    replica_set, text = ctx.operations.logs(name, version, num_lines, init)
    return {"version": replica_set, "logs": text}


@router.get("/services/{name}/keys", response_model=ServiceKeys, responses=errors(InvalidInput, NotFound))
def get_keys(name: str, ctx: Context = Depends(context)) -> dict:
    """The primary and secondary key of a key-auth service; refused for token auth or no auth (Azure ML's rule)."""
    keys = ctx.operations.keys(name)
    return {"primaryKey": keys["primary"], "secondaryKey": keys["secondary"]}


@router.post("/services/{name}/keys", response_model=ServiceKeys, responses=CHANGES)
def regenerate_key(name: str, body: KeyRegeneration, ctx: Context = Depends(context)) -> dict:
    """Replace the primary or secondary key; returns once the front end accepts the new key and refuses the old."""
    keys = ctx.operations.regenerate_key(name, body.key_type.lower(), body.set_key)
    return {"primaryKey": keys["primary"], "secondaryKey": keys["secondary"]}


@router.get("/services/{name}/token", response_model=ServiceToken, responses=errors(InvalidInput, NotFound))
def get_token(name: str, ctx: Context = Depends(context)) -> dict:
    """A JWT for a token-auth service, as Azure ML's token payload: ``accessToken``, ``tokenType`` (``Bearer``),
    ``refreshAfter`` and ``expiryOn`` (epoch seconds). Refused for key auth or no auth."""
    import jwt

    token, refresh_by = ctx.operations.token(name)
    expiry = jwt.decode(token, options={"verify_signature": False})["exp"]  # the token's own expiry claim
    return {"accessToken": token, "tokenType": "Bearer", "refreshAfter": refresh_by, "expiryOn": expiry}


def _version_input(body: Deployment | ServiceUpdate) -> VersionInput:
    """What a version runs, from any request body that says it."""
    return VersionInput(body.models, body.entry_script, body.snapshot, body.source_directory, body.environment,
                        body.deploy)


def service_view(ctx: Context, record) -> dict:
    """A service or endpoint as the SDK shows it: state, error, URIs, versions and settings (no keys)."""
    endpoint = record.endpoint
    status = record.status
    base = ctx.deployments.scoring_base(record.name)
    default = endpoint.default_version
    shares = traffic.split(endpoint)
    observed = status.get("versions", {})
    versions = {v.name: {
        "name": v.name, "state": observed.get(v.name, {}).get("state", record.state),
        "reason": observed.get(v.name, {}).get("reason"), "traffic_percentile": v.traffic_percentile,
        "effective_percentile": observed.get(v.name, {}).get("effective_percentile", shares.get(v.name, 0.0)),
        "is_default": v.is_default, "is_control": v.is_control,
        "type": v.role, "mirror_percentile": v.mirror_percentile, "replica_set": v.replica_set,
        "generation": v.generation, "models": [m.id for m in v.models], "entry_script": v.entry_script,
        "environment": v.environment["name"], "deploy": v.deploy,
        "replicas": observed.get(v.name, {}).get("replicas"),
        "ready_replicas": observed.get(v.name, {}).get("ready_replicas")} for v in endpoint.versions}
    return {
        "name": record.name, "kind": endpoint.kind, "compute_target": endpoint.compute_target, "state": record.state,
        "error": status.get("reason") if record.state in ("Failed", "Unhealthy") else None,
        "status": status, "scoring_uri": f"{base}/score" if base else None, "auth": endpoint.auth,
        "cors_origins": list(endpoint.cors_origins), "swagger_uri": f"{base}/swagger.json" if base else None,
        "models": [m.id for m in default.models], "deploy": default.deploy, "entry_script": default.entry_script,
        "generation": default.generation, "environment": default.environment["name"], "versions": versions,
        "description": endpoint.description, "tags": endpoint.tags,
        "created_at": record.created_at.isoformat(), "updated_at": record.updated_at.isoformat(),
    }
