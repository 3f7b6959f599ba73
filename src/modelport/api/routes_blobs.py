"""Blobs and trees: content-addressed uploads and downloads (models, source snapshots)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel

from ..errors import InvalidInput, NotFound
from .context import Context, context

router = APIRouter(tags=["blobs"])
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _checked(sha256: str) -> str:
    if not SHA256.match(sha256):
        raise InvalidInput(f"{sha256!r} is not a sha256 hex digest")
    return sha256


@router.head("/blobs/{sha256}")
def blob_exists(sha256: str, ctx: Context = Depends(context)) -> Response:
    """200 when the blob is stored (so a client can skip uploading it), 404 otherwise."""
    return Response(status_code=200 if ctx.artifacts.exists(_checked(sha256)) else 404)


@router.put("/blobs/{sha256}")
async def put_blob(sha256: str, request: Request, ctx: Context = Depends(context)) -> dict:
    """Store the request body as a blob; its sha256 must match the URL."""
    _checked(sha256)
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


@router.get("/blobs/{sha256}")
def get_blob(sha256: str, ctx: Context = Depends(context)) -> FileResponse:
    if not ctx.artifacts.exists(_checked(sha256)):
        raise NotFound(f"blob {sha256} is not stored in this workspace")
    return FileResponse(ctx.artifacts.blob_path(sha256), media_type="application/octet-stream")


class TreeEntry(BaseModel):
    path: str
    sha256: str
    size: int
    mode: int = 0o644


@router.post("/trees")
def put_tree(entries: list[TreeEntry], ctx: Context = Depends(context)) -> dict:
    """Store a folder's manifest once all its blobs are uploaded; returns the manifest's sha256."""
    missing = [e.path for e in entries if not ctx.artifacts.exists(_checked(e.sha256))]
    if missing:
        raise InvalidInput(f"upload these files' blobs before their tree: {', '.join(missing[:5])}")
    for entry in entries:
        parts = Path(entry.path).parts
        if entry.path.startswith("/") or ".." in parts or not parts:
            raise InvalidInput(f"tree path {entry.path!r} must be relative and stay inside the folder")
    manifest = sorted((e.model_dump() for e in entries), key=lambda e: e["path"])
    sha = ctx.artifacts.put_bytes(json.dumps(manifest, sort_keys=True).encode())
    return {"sha256": sha, "file_count": len(manifest), "size_bytes": sum(e["size"] for e in manifest)}
