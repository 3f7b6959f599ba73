"""Studio's static files (scripts, stylesheets, uPlot), served from the package to signed-in browsers only
(gzipped by ``compression.StudioCompression`` like the rest of Studio)."""

from __future__ import annotations

from functools import lru_cache

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from ..errors import NotFound
from .web import SECURITY_HEADERS, STATIC, asset_session

router = APIRouter(include_in_schema=False)
TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml"}


@lru_cache(maxsize=32)
def _asset(relative: str) -> bytes:
    """An asset's bytes (read once; the package's files do not change while serving)."""
    return (STATIC / relative).read_bytes()


@router.get("/studio/static/{relative:path}")
def asset(relative: str, _nonce: str = Depends(asset_session)) -> Response:
    """A file of ``studio/static`` (cached a day: its URL names its version)."""
    root = STATIC.resolve()
    path = (root / relative.replace("\x00", "")).resolve()  # a NUL byte names no file (and breaks os calls)
    if "\x00" in relative or root not in path.parents or not path.is_file() or path.suffix not in TYPES:
        raise NotFound(f"Studio has no asset {relative!r}")
    return Response(_asset(str(path.relative_to(root))), media_type=TYPES[path.suffix],
                    headers={"Cache-Control": "private, max-age=86400", **SECURITY_HEADERS})
