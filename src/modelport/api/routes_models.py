"""Registered models: register, list, show, tag, delete."""

from __future__ import annotations

import json
import re

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from ..errors import InvalidInput, NotFound
from ..store.artifacts import read_manifest, require_blobs
from .context import Context, context

router = APIRouter(tags=["models"])
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


class ModelRegistration(BaseModel):
    name: str
    artifact_sha256: str
    artifact_kind: str = Field(pattern="^(file|folder)$")
    artifact_name: str
    size_bytes: int
    description: str | None = None
    tags: dict[str, str] | None = None
    properties: dict[str, str] | None = None
    model_framework: str | None = None
    model_framework_version: str | None = None


class ModelUpdate(BaseModel):
    add_tags: dict[str, str] | None = None
    remove_tags: list[str] | None = None
    add_properties: dict[str, str] | None = None
    description: str | None = None


def check_model_name(name: str) -> str:
    if not MODEL_NAME.match(name):
        raise InvalidInput(
            f"model name {name!r} is not allowed: use up to 255 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit"
        )
    return name


@router.post("/models", status_code=201)
def register_model(body: ModelRegistration, ctx: Context = Depends(context)) -> dict:
    check_model_name(body.name)
    if not ctx.artifacts.exists(body.artifact_sha256):
        raise InvalidInput(f"upload the model's content (blob {body.artifact_sha256}) before registering it")
    if body.artifact_kind == "folder":
        require_blobs(ctx.artifacts, read_manifest(ctx.artifacts, body.artifact_sha256))
    record = ctx.store.register_model(
        body.name, body.artifact_sha256, body.artifact_kind, body.artifact_name, body.size_bytes,
        description=body.description, tags=body.tags, properties=body.properties,
        framework=body.model_framework, framework_version=body.model_framework_version,
    )
    return record.to_dict()


@router.get("/models")
def list_models(name: str | None = None, tags: str | None = Query(None, description="JSON list"),
                properties: str | None = Query(None, description="JSON list"), latest: bool = False,
                ctx: Context = Depends(context)) -> list[dict]:
    records = ctx.store.list_models(name=name, tags=_json_list(tags, "tags"),
                                    properties=_json_list(properties, "properties"), latest=latest)
    return [r.to_dict() for r in records]


@router.get("/models/{name}/{version}")
def get_model(name: str, version: str, ctx: Context = Depends(context)) -> dict:
    return ctx.store.get_model(name, _version(version)).to_dict()


@router.patch("/models/{name}/{version}")
def update_model(name: str, version: str, body: ModelUpdate, ctx: Context = Depends(context)) -> dict:
    number = _version(version, latest_allowed=False)
    record = ctx.store.get_model(name, number)
    if body.add_tags:
        record = ctx.store.add_model_tags(name, number, body.add_tags)
    if body.remove_tags:
        record = ctx.store.remove_model_tags(name, number, body.remove_tags)
    if body.add_properties:
        record = ctx.store.add_model_properties(name, number, body.add_properties)
    return record.to_dict()


@router.delete("/models/{name}/{version}")
def delete_model(name: str, version: str, ctx: Context = Depends(context)) -> dict:
    record = ctx.store.get_model(name, _version(version, latest_allowed=False))
    ctx.store.delete_model(record.name, record.version)
    return {"deleted": f"{record.name}:{record.version}"}


def _version(text: str, latest_allowed: bool = True) -> int | None:
    if text == "latest" and latest_allowed:
        return None
    if not text.isdigit() or int(text) < 1:
        raise NotFound(f"model version {text!r} does not exist: versions are whole numbers from 1")
    return int(text)


def _json_list(text: str | None, what: str) -> list | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise InvalidInput(f"{what} must be a JSON list such as [\"key\", [\"key\", \"value\"]]") from None
    if not isinstance(value, list):
        raise InvalidInput(f"{what} must be a JSON list such as [\"key\", [\"key\", \"value\"]]")
    return value
