"""Blobs and trees: content-addressed uploads and downloads (models, source snapshots)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from ..errors import InvalidInput, NotFound
from ..store.artifacts import require_blobs
from ..store.checks import MAX_MODE, check_manifest
from .context import Context, context
from .openapi_errors import errors
from .schemas import BlobStored, Sha256, Sha256InPath, TreeStored, documented

router = APIRouter(tags=["blobs"])  # a malformed sha256 is a 400 from LocalArtifactStore.blob_path
OCTETS = {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}


@router.head("/blobs/{sha256}", response_class=Response, responses={200: {"description": "the blob is stored"},
                                           **errors(NotFound, InvalidInput, body=False)})
def blob_exists(sha256: Sha256InPath, ctx: Context = Depends(context)) -> Response:
    """200 when the blob is stored (so a client can skip uploading it), 404 otherwise."""
    return Response(status_code=200 if ctx.artifacts.exists(sha256) else 404)


@router.put("/blobs/{sha256}", response_model=BlobStored, responses=errors(InvalidInput),
            openapi_extra={"requestBody": {"required": False, "description": "the content (none: the empty blob)",
                                           **OCTETS}})
async def put_blob(sha256: Sha256InPath, request: Request, ctx: Context = Depends(context)) -> dict:
    """Store the request body as a blob; its sha256 must match the URL. A blob stored already is not read again."""
    if ctx.artifacts.exists(sha256):
        return {"sha256": sha256, "stored": False}
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=ctx.artifacts.root, delete=False) as tmp:
        async for chunk in request.stream():
            digest.update(chunk)
            tmp.write(chunk)
    try:
        if digest.hexdigest() != sha256:
            raise InvalidInput(f"uploaded content has sha256 {digest.hexdigest()}, not {sha256}; upload again")
        ctx.artifacts.put_file(Path(tmp.name))
    finally:
        os.unlink(tmp.name)
    return {"sha256": sha256, "stored": True}


@router.get("/blobs/{sha256}", response_class=FileResponse, responses={200: OCTETS, **errors(NotFound, InvalidInput)})
def get_blob(sha256: Sha256InPath, ctx: Context = Depends(context)) -> FileResponse:
    """The blob's content."""
    if not ctx.artifacts.exists(sha256):
        raise NotFound(f"blob {sha256} is not stored in this workspace")
    return FileResponse(ctx.artifacts.blob_path(sha256), media_type="application/octet-stream")


class TreeEntry(BaseModel):
    """One file of a folder: its relative path, content blob, size in bytes and permission mode."""

    path: str
    sha256: Sha256
    size: int = Field(json_schema_extra=documented(minimum=0))
    mode: int = Field(0o644, json_schema_extra=documented(minimum=0, maximum=MAX_MODE))


@router.post("/trees", response_model=TreeStored, responses=errors(InvalidInput))
def put_tree(entries: Annotated[list[TreeEntry], Body(json_schema_extra=documented(minItems=1))],
             ctx: Context = Depends(context)) -> dict:
    """Store a folder's manifest once all its blobs are uploaded; returns the manifest's sha256.

    The entries are checked as any manifest is (``checks.check_manifest``): a 400 names the first bad one.
    """
    manifest = sorted(check_manifest([e.model_dump() for e in entries], "tree"), key=lambda e: e["path"])
    require_blobs(ctx.artifacts, manifest)
    sha = ctx.artifacts.put_bytes(json.dumps(manifest, sort_keys=True).encode())
    return {"sha256": sha, "file_count": len(manifest), "size_bytes": sum(e["size"] for e in manifest)}
