"""Source snapshots: a packaged source folder, identified by its manifest's sha256."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from ..errors import InvalidInput
from .context import Context, context

router = APIRouter(tags=["snapshots"])


class SnapshotRegistration(BaseModel):
    sha256: str
    file_count: int
    size_bytes: int


@router.post("/snapshots", status_code=201)
def register_snapshot(body: SnapshotRegistration, ctx: Context = Depends(context)) -> dict:
    """Record an uploaded tree (see ``POST /trees``) as a source snapshot."""
    if not ctx.artifacts.exists(body.sha256):
        raise InvalidInput(f"upload the snapshot's tree (sha256 {body.sha256}) before registering it")
    return ctx.store.add_snapshot(body.sha256, body.file_count, body.size_bytes).to_dict()


@router.get("/snapshots/{sha256}")
def get_snapshot(sha256: str, ctx: Context = Depends(context)) -> dict:
    return ctx.store.get_snapshot(sha256).to_dict()
