"""Studio's static files (scripts, stylesheets, uPlot), served from the package to signed-in browsers only."""

from __future__ import annotations

import gzip
from functools import lru_cache

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ..errors import NotFound
from .web import SECURITY_HEADERS, STATIC, asset_session

router = APIRouter(include_in_schema=False)
TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml"}


@lru_cache(maxsize=32)
def _asset(relative: str) -> tuple[bytes, bytes]:
    """An asset's bytes and their gzip (read once; the package's files do not change while serving)."""
    data = (STATIC / relative).read_bytes()
    return data, gzip.compress(data, 9, mtime=0)


@router.get("/studio/static/{relative:path}")
def asset(relative: str, request: Request, _nonce: str = Depends(asset_session)) -> Response:
    """A file of ``studio/static`` (gzipped when the browser accepts it; cached a day: its URL names its version)."""
    root = STATIC.resolve()
    path = (root / relative.replace("\x00", "")).resolve()  # a NUL byte names no file (and breaks os calls)
    if "\x00" in relative or root not in path.parents or not path.is_file() or path.suffix not in TYPES:
        raise NotFound(f"Studio has no asset {relative!r}")
    plain, zipped = _asset(str(path.relative_to(root)))
    headers = {"Cache-Control": "private, max-age=86400", "Vary": "Accept-Encoding", **SECURITY_HEADERS}
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(zipped, media_type=TYPES[path.suffix], headers={**headers, "Content-Encoding": "gzip"})
    return Response(plain, media_type=TYPES[path.suffix], headers=headers)
