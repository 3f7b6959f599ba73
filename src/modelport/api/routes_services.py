"""Web services: deploy, list, show, update, delete, logs and keys."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from ..backends.local.limits import gpu_ids
from ..environments.spec import EnvironmentSpec
from ..errors import Conflict, InvalidInput, NotFound, ServerUnavailable
from ..frontend.envoy import FrontEndError
from ..reconcile import app_root
from ..reconcile.reconciler import auth_mode, client_policy
from ..sdk.deploy_config import ENDPOINT, SERVICE_NAME, DeploymentConfig, check_service_name
from .context import Context, context
from .openapi_errors import errors
from .schemas import Deleted, ServiceKeys, ServiceLogs, ServiceToken, ServiceView, any_case, documented

router = APIRouter(tags=["services"], responses=errors(ServerUnavailable))
DEFAULT_ENVIRONMENT = {"name": "modelport-default", "python": {"condaDependencies": {"dependencies": []}}}


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


@router.post("/services", status_code=201, response_model=ServiceView,
             responses=errors(InvalidInput, NotFound, Conflict))
def deploy(body: Deployment, ctx: Context = Depends(context)) -> dict:
    """Record a service's desired state; the reconciler makes it run (poll GET /services/{name})."""
    check_service_name(body.name)
    with ctx.deployments.operation(body.name):
        existing = _existing(ctx, body.name) if body.overwrite else None
        keys = _keys(body.deploy, existing["keys"] if existing else None)
        config = _config(ctx, body.models, body.entry_script, body.snapshot, body.environment, body.deploy,
                         generation=(existing["generation"] + 1) if existing else 1, keys=keys,
                         source_directory=body.source_directory)
        record = ctx.store.put_service(body.name, config, _model_ids(config), create=not body.overwrite)
    return _view(ctx, record)


@router.get("/services", response_model=list[ServiceView])
def list_services(ctx: Context = Depends(context)) -> list[dict]:
    return [_view(ctx, r) for r in ctx.store.list_services()]


@router.get("/services/{name}", response_model=ServiceView, responses=errors(NotFound))
def get_service(name: str, ctx: Context = Depends(context)) -> dict:
    return _view(ctx, ctx.store.get_service(name))


@router.patch("/services/{name}", response_model=ServiceView,
              responses=errors(InvalidInput, NotFound, Conflict, FrontEndError))
def update(name: str, body: ServiceUpdate, ctx: Context = Depends(context)) -> dict:
    """A rolling update: the new version's replicas start, take over when ready, the old ones stop."""
    with ctx.deployments.operation(name):
        current = ctx.store.get_service(name).config
        models = body.models if body.models is not None else [f"{m['name']}:{m['version']}" for m in current["models"]]
        config = _config(ctx, models, body.entry_script or current["entry_script"],
                         body.snapshot or current["snapshot"], body.environment or current["environment"],
                         {**current["deploy"], **(body.deploy or {})}, generation=current["generation"] + 1,
                         keys=_keys(body.deploy or {}, current["keys"]),
                         source_directory=body.source_directory if body.snapshot else current.get("source_directory"))
        record = ctx.store.put_service(name, config, _model_ids(config), create=False)
    if client_policy(config) != client_policy(current):
        ctx.deployments.wait_routed(name, client_policy(config))  # new auth/CORS settings hold when update() returns
    return _view(ctx, record)


@router.delete("/services/{name}", response_model=Deleted, responses=errors(NotFound, Conflict))
def delete(name: str, ctx: Context = Depends(context)) -> dict:
    """Delete the service; its replicas are stopped before this returns."""
    with ctx.deployments.operation(name):
        ctx.store.delete_service(name)
        ctx.deployments.remove(name)
    return {"deleted": name}


@router.get("/services/{name}/logs", response_model=ServiceLogs, responses=errors(NotFound))
def logs(name: str, num_lines: int = 5000, ctx: Context = Depends(context)) -> dict:
    record = ctx.store.get_service(name)
    version = record.status.get("serving_version") or f"v{record.config['generation']}"
    return {"version": version, "logs": ctx.deployments.backend.logs(name, version, num_lines)}


@router.get("/services/{name}/keys", response_model=ServiceKeys, responses=errors(InvalidInput, NotFound))
def get_keys(name: str, ctx: Context = Depends(context)) -> dict:
    """The primary and secondary key of a key-auth service; refused for token auth or no auth (Azure ML's rule)."""
    keys = _key_auth_config(ctx, name)["keys"]
    return {"primaryKey": keys["primary"], "secondaryKey": keys["secondary"]}


@router.post("/services/{name}/keys", response_model=ServiceKeys,
              responses=errors(InvalidInput, NotFound, Conflict, FrontEndError))
def regenerate_key(name: str, body: KeyRegeneration, ctx: Context = Depends(context)) -> dict:
    """Replace the primary or secondary key; returns once the front end accepts the new key and refuses the old."""
    which = body.key_type.lower()
    if which not in ("primary", "secondary"):
        raise InvalidInput(f"key_type {body.key_type!r} must be 'Primary' or 'Secondary'")
    with ctx.deployments.operation(name):
        keys = dict(_key_auth_config(ctx, name)["keys"])
        keys[which] = body.set_key or secrets.token_urlsafe(32)
        record = ctx.store.merge_service_config(name, {"keys": keys})
    ctx.deployments.wait_routed(name, client_policy(record.config))  # the old key is refused once this returns
    return {"primaryKey": keys["primary"], "secondaryKey": keys["secondary"]}


@router.get("/services/{name}/token", response_model=ServiceToken, responses=errors(InvalidInput, NotFound))
def get_token(name: str, ctx: Context = Depends(context)) -> dict:
    """A JWT for a token-auth service, as Azure ML's token payload: ``accessToken``, ``tokenType`` (``Bearer``),
    ``refreshAfter`` and ``expiryOn`` (epoch seconds). Refused for key auth or no auth."""
    mode = auth_mode(ctx.store.get_service(name).config["deploy"])
    if mode != "token":
        raise InvalidInput(f"tokens are not enabled for service '{name}': it {_AUTH_WORDS[mode]}; "
                           + ("use its keys (get_keys(), or modelport service keys), or update it with "
                              "token_auth_enabled=True, auth_enabled=False" if mode == "key" else
                              "update it with token_auth_enabled=True to require tokens"))
    import jwt

    token, refresh_by = ctx.deployments.token(name)
    expiry = jwt.decode(token, options={"verify_signature": False})["exp"]  # the token's own expiry claim
    return {"accessToken": token, "tokenType": "Bearer", "refreshAfter": refresh_by, "expiryOn": expiry}


_AUTH_WORDS = {"key": "uses key auth", "token": "uses token auth", "none": "has auth disabled (auth_enabled=False)"}


def _key_auth_config(ctx: Context, name: str) -> dict:
    """A service's config, if it uses keys; otherwise InvalidInput saying what it uses instead."""
    config = ctx.store.get_service(name).config
    mode = auth_mode(config["deploy"])
    if mode != "key":
        raise InvalidInput(f"keys are not enabled for service '{name}': it {_AUTH_WORDS[mode]}; "
                           + (f"get a token with get_access_token() (or modelport service get-access-token -n "
                              f"{name}), or update it with auth_enabled=True, token_auth_enabled=False"
                              if mode == "token" else "update it with auth_enabled=True to require keys"))
    return config


def _existing(ctx: Context, name: str) -> dict | None:
    try:
        return ctx.store.get_service(name).config
    except NotFound:
        return None


def _keys(deploy: dict, current: dict | None) -> dict:
    current = current or {}
    return {"primary": deploy.get("primary_key") or current.get("primary") or secrets.token_urlsafe(32),
            "secondary": deploy.get("secondary_key") or current.get("secondary") or secrets.token_urlsafe(32)}


def _config(ctx: Context, model_ids: list[str], entry_script: str, snapshot: str, environment: dict | None,
            deploy: dict, generation: int, keys: dict, source_directory: str | None) -> dict:
    if not model_ids:
        raise InvalidInput("deploy at least one model: models=[Model(ws, 'name')]")
    models = []
    for model_id in model_ids:
        name, _, version = model_id.partition(":")
        record = ctx.store.get_model(name, int(version) if version.isdigit() else None)
        models.append({"name": record.name, "version": record.version, "artifact_sha256": record.artifact_sha256,
                       "artifact_kind": record.artifact_kind, "artifact_name": record.artifact_name})
    snapshot_record = ctx.store.get_snapshot(snapshot)
    app_root.layout(ctx.artifacts, snapshot_record.sha256, models, source_directory)  # all inside the app root
    spec = EnvironmentSpec.from_dict(environment or DEFAULT_ENVIRONMENT)
    checked = DeploymentConfig.from_settings(deploy)  # the API checks what any client sends
    if checked.compute_type == ENDPOINT:
        raise InvalidInput("endpoint deployment settings (AksEndpoint: versions with traffic percentiles) are not "
                           "supported yet; deploy a web service with AksWebservice.deploy_configuration(...)")
    deploy = checked.to_settings()
    return {"generation": generation, "models": models, "entry_script": entry_script,
            "source_directory": source_directory,
            "snapshot": snapshot_record.sha256, "environment": spec.to_dict(), "deploy": deploy, "keys": keys,
            "gpus": list(gpu_ids(int(deploy.get("gpu_cores") or 0)))}


def _model_ids(config: dict) -> list[tuple[str, int]]:
    return [(m["name"], m["version"]) for m in config["models"]]


def _view(ctx: Context, record) -> dict:
    """A service as the SDK shows it: state, error, URIs and settings (keys are not included)."""
    config = record.config
    status = record.status
    base = ctx.deployments.scoring_base(record.name)
    return {
        "name": record.name, "state": record.state, "error": status.get("reason") if record.state in (
            "Failed", "Unhealthy") else None,
        "status": status, "scoring_uri": f"{base}/score" if base else None, "auth": auth_mode(config["deploy"]),
        "swagger_uri": f"{base}/swagger.json" if base else None,
        "models": [f"{m['name']}:{m['version']}" for m in config["models"]],
        "deploy": config["deploy"], "entry_script": config["entry_script"], "generation": config["generation"],
        "environment": config["environment"]["name"],
        "created_at": record.created_at.isoformat(), "updated_at": record.updated_at.isoformat(),
    }
