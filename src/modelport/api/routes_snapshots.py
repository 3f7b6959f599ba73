"""Source snapshots: a packaged source folder, identified by its manifest's sha256."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from ..errors import Conflict, InvalidInput, NotFound, ServerUnavailable
from ..store.artifacts import read_manifest, require_blobs
from .context import Context, context
from .openapi_errors import errors
from .schemas import Sha256, Sha256InPath, SnapshotView

router = APIRouter(tags=["snapshots"], responses=errors(ServerUnavailable))


class SnapshotRegistration(BaseModel):
    """An uploaded tree (``POST /trees``) to record as a snapshot, with the counts that call returned."""

    sha256: Sha256
    file_count: int
    size_bytes: int


@router.post("/snapshots", status_code=201, response_model=SnapshotView, responses=errors(InvalidInput, Conflict))
def register_snapshot(body: SnapshotRegistration, ctx: Context = Depends(context)) -> dict:
    """Record an uploaded tree (see ``POST /trees``) as a source snapshot; its manifest is checked (400)."""
    if not ctx.artifacts.exists(body.sha256):
        raise InvalidInput(f"upload the snapshot's tree (sha256 {body.sha256}) before registering it")
    manifest = read_manifest(ctx.artifacts, body.sha256)
    require_blobs(ctx.artifacts, manifest)
    counted = (len(manifest), sum(entry["size"] for entry in manifest))
    if (body.file_count, body.size_bytes) != counted:
        raise InvalidInput(f"snapshot {body.sha256} holds {counted[0]} files of {counted[1]} bytes, not "
                           f"{body.file_count} files of {body.size_bytes} bytes; send the counts POST /trees returned")
    return ctx.store.add_snapshot(body.sha256, body.file_count, body.size_bytes).to_dict()


@router.get("/snapshots/{sha256}", response_model=SnapshotView, responses=errors(NotFound))
def get_snapshot(sha256: Sha256InPath, ctx: Context = Depends(context)) -> dict:
    """A recorded snapshot."""
    return ctx.store.get_snapshot(sha256).to_dict()
