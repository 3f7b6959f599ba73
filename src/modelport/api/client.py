"""The HTTP client the SDK and CLI use for every workspace operation.

For a local workspace it finds (or starts) the background server; if the server has died
it starts a new one and retries the request once: always when the request never reached it,
and for reads (GET, HEAD) and content-addressed uploads (PUT) also when the server died before
answering. A change (POST, PATCH, DELETE) the server may have applied before it died is not
sent twice: the error says to check and retry.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson

from ..errors import BY_CODE, ModelportError, ServerUnavailable
from ..store.artifacts import CHUNK, inside
from . import server
from .workspace_dir import WorkspaceDir

SAFE_TO_RESEND = frozenset({"GET", "HEAD", "PUT"})  # the same request twice changes nothing more
# seconds an answer may take: an operation returns once the front end serves its change, which the control plane
# waits for up to reconcile.reconciler.WAIT_ROUTED_S (120 s), and answers a 4xx/5xx after that
READ_TIMEOUT_S = 180.0


class Client:
    """Talks to the control plane of one workspace."""

    def __init__(self, workspace: WorkspaceDir):
        self.workspace = workspace
        self._token = workspace.token()
        self._http: httpx.Client | None = None

    def _connect(self) -> httpx.Client:
        remote = self.workspace.config().get("server_url")
        url = remote or server.ensure_running(self.workspace)
        self._http = httpx.Client(base_url=f"{url}/api/v1", timeout=httpx.Timeout(READ_TIMEOUT_S, connect=5.0),
                                  headers={"Authorization": f"Bearer {self._token}"})
        return self._http

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        """Send a request; raise the ModelportError the server answered, if any."""
        for attempt in (1, 2):
            http = self._http or self._connect()
            try:
                response = http.request(method, path, **kwargs)
                break
            except (httpx.ConnectError, httpx.ConnectTimeout):  # the request never reached it
                self.close()
                if attempt == 2 or self.workspace.config().get("server_url"):
                    raise ServerUnavailable(
                        f"cannot reach the control plane of workspace {self.workspace.name!r}; "
                        f"see {server.log_path(self.workspace)}"
                    ) from None
            except httpx.TimeoutException:
                raise ServerUnavailable(
                    f"the control plane of workspace {self.workspace.name!r} did not answer {method} {path} within "
                    f"{READ_TIMEOUT_S:.0f} s; the change may or may not have been made: check (e.g. list or show) "
                    f"and retry; see {server.log_path(self.workspace)}"
                ) from None
            except (httpx.ReadError, httpx.RemoteProtocolError):  # it died with the request unanswered
                self.close()
                if attempt == 2 or method.upper() not in SAFE_TO_RESEND or self.workspace.config().get("server_url"):
                    raise ServerUnavailable(
                        f"the control plane of workspace {self.workspace.name!r} stopped before answering {method} "
                        f"{path}; the change may or may not have been made: check (e.g. list or show) and retry; "
                        f"see {server.log_path(self.workspace)}"
                    ) from None
        return _checked(response)

    def json(self, method: str, path: str, **kwargs):
        return self.request(method, path, **kwargs).json()

    def stream_lines(self, method: str, path: str) -> Iterator[dict]:
        """NDJSON events of a streamed response (an environment build)."""
        http = self._http or self._connect()
        with http.stream(method, path, timeout=None) as response:
            if response.status_code >= 400:
                response.read()
                _checked(response)
            for line in response.iter_lines():
                if line:
                    yield orjson.loads(line)

    def upload_file(self, path: Path) -> str:
        """Upload a file's content unless the workspace has it already; return its sha256."""
        sha = file_sha256(path)
        if self.request("HEAD", f"/blobs/{sha}", ).status_code != 200:
            with open(path, "rb") as content:
                self.request("PUT", f"/blobs/{sha}", content=iter(lambda: content.read(CHUNK), b""))
        return sha

    def upload_tree(self, files: list[tuple[str, Path]]) -> dict:
        """Upload a folder given as (relative path, file) pairs; return its manifest sha256 and size."""
        entries = [{"path": rel, "sha256": self.upload_file(path), "size": path.stat().st_size,
                    "mode": path.stat().st_mode & 0o777} for rel, path in files]
        return self.json("POST", "/trees", json=entries)

    def download_blob(self, sha: str, folder: Path, relative: str) -> Path:
        """Write blob ``sha`` to ``relative`` under ``folder``; return the path written.

        The path goes through ``store.artifacts.inside``: InvalidInput, and nothing written, when it
        would leave ``folder`` (``..``, absolute, or a symlink below ``folder`` that leads out). The
        content goes to a new hidden file beside the target and is renamed over it.
        """
        target = inside(folder, relative)
        http = self._http or self._connect()
        target.parent.mkdir(parents=True, exist_ok=True)
        with http.stream("GET", f"/blobs/{sha}") as response:
            if response.status_code >= 400:
                response.read()
                _checked(response)
            tmp = target.with_name(f".modelport-{secrets.token_hex(8)}.part")
            # O_EXCL: a new file with the usual mode (0666 less the umask), never an existing link followed
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as out:
                try:
                    for chunk in response.iter_bytes(CHUNK):
                        out.write(chunk)
                except BaseException:
                    tmp.unlink()
                    raise
            tmp.replace(target)
        return target

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


def _checked(response: httpx.Response) -> httpx.Response:
    if response.status_code < 400 or response.request.method == "HEAD":
        return response
    try:
        body = response.json()
        error = BY_CODE.get(body.get("code"), ModelportError)(body.get("message") or response.text)
    except ValueError:
        error = ModelportError(f"control plane answered {response.status_code}: {response.text[:300]}")
    raise error


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as content:
        while chunk := content.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
