"""Registered models: register, list, show, tag, delete."""

from __future__ import annotations

import json
import re

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from ..errors import Conflict, InvalidInput, NotFound, ServerUnavailable
from ..store.artifacts import read_manifest, require_blobs
from .context import Context, context
from .openapi_errors import errors
from .schemas import Deleted, ModelView, Sha256, documented

router = APIRouter(tags=["models"], responses=errors(ServerUnavailable))
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
TEXT_MAP = Field(None, json_schema_extra=documented(propertyNames={"minLength": 1}))
"""Tags or properties: text to text, keys not empty (``checks.text_map`` says why not)."""


class ModelRegistration(BaseModel):
    """A model version to register: its uploaded content (a file's blob, or a folder's tree) and its metadata."""

    name: str = Field(json_schema_extra=documented(pattern=MODEL_NAME.pattern))
    artifact_sha256: Sha256
    artifact_kind: str = Field(pattern="^(file|folder)$")
    artifact_name: str
    size_bytes: int
    description: str | None = None
    tags: dict[str, str] | None = TEXT_MAP
    properties: dict[str, str] | None = TEXT_MAP
    model_framework: str | None = None
    model_framework_version: str | None = None


class ModelUpdate(BaseModel):
    """Tags to add or remove and properties to add (properties are never removed)."""

    add_tags: dict[str, str] | None = TEXT_MAP
    remove_tags: list[str] | None = None
    add_properties: dict[str, str] | None = TEXT_MAP
    description: str | None = None


def check_model_name(name: str) -> str:
    if not MODEL_NAME.match(name):
        raise InvalidInput(
            f"model name {name!r} is not allowed: use up to 255 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit"
        )
    return name


@router.post("/models", status_code=201, response_model=ModelView, responses=errors(InvalidInput, Conflict))
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


FILTER = {"type": "array", "items": {"anyOf": [
    {"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 2}]}}


def _json_filter(name: str) -> dict:
    """The query parameter ``name`` as OpenAPI declares a JSON value (FastAPI's Query cannot): a filter list."""
    return {"name": name, "in": "query", "required": False,
            "description": "a JSON list of keys that must exist and [key, value] pairs that must match",
            "content": {"application/json": {"schema": FILTER}}}


@router.get("/models", response_model=list[ModelView], responses=errors(InvalidInput),
            openapi_extra={"parameters": [_json_filter("tags"), _json_filter("properties")]})
def list_models(name: str | None = None, tags: str | None = Query(None, include_in_schema=False),
                properties: str | None = Query(None, include_in_schema=False), latest: bool = False,
                ctx: Context = Depends(context)) -> list[dict]:
    """Model versions, newest first, filtered as Azure ML's ``Model.list``: ``tags`` and ``properties`` are JSON
    lists of keys and [key, value] pairs."""
    records = ctx.store.list_models(name=name, tags=_json_list(tags, "tags"),
                                    properties=_json_list(properties, "properties"), latest=latest)
    return [r.to_dict() for r in records]


@router.get("/models/{name}/{version}", response_model=ModelView, responses=errors(NotFound))
def get_model(name: str, version: str, ctx: Context = Depends(context)) -> dict:
    return ctx.store.get_model(name, _version(version)).to_dict()


@router.patch("/models/{name}/{version}", response_model=ModelView,
              responses=errors(InvalidInput, NotFound, Conflict))
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


@router.delete("/models/{name}/{version}", response_model=Deleted, responses=errors(NotFound, Conflict))
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
