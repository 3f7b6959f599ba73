"""The control plane server process: ``modelport server`` in the foreground, or started in the background.

A running server leaves ``server/server.json`` (pid and URL) in the workspace; clients use
it to find the server, detect a stale one (its pid is gone or it does not answer) and
start a fresh one, under a file lock so that concurrent CLI calls start only one.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

from .. import processes
from ..errors import ServerUnavailable
from .workspace_dir import WorkspaceDir

START_TIMEOUT_S = 30.0


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def serve(workspace: WorkspaceDir, host: str = "127.0.0.1", port: int = 0, store_url: str | None = None) -> None:
    """Run the API in the foreground until SIGTERM/SIGINT."""
    import uvicorn

    from .app import create_app

    workspace.make_private()  # before the store, the front end and the replicas create their files
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)  # the server log: time, level, where, what
    logging.getLogger("modelport").setLevel(logging.INFO)
    app = create_app(workspace, store_url)
    sock = _listen(workspace, host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    _last_port_path(workspace).write_text(str(bound_port))
    info = {"pid": os.getpid(), "url": f"http://{bound_host}:{bound_port}", "started": time.time()}
    _write_json(_info_path(workspace), info)
    print(f"modelport control plane for workspace {workspace.name!r} at {info['url']} (pid {os.getpid()})",
          flush=True)
    try:
        uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False)).run(sockets=[sock])
    finally:
        current = read_info(workspace)
        if current and current.get("pid") == os.getpid():
            _info_path(workspace).unlink(missing_ok=True)


def _listen(workspace: WorkspaceDir, host: str, port: int):
    """The listening socket: on ``port``; with 0, on the port the workspace's last control plane had when it is
    free (so Studio's open pages and bookmarks keep working across a restart), else on a free one."""
    from ..runtime.supervisor import bind

    try:
        last = int(_last_port_path(workspace).read_text())
    except (OSError, ValueError):
        last = 0
    if port == 0 and last:
        try:
            return bind(host, last, attempts=1)
        except OSError:
            pass  # taken by something else meanwhile: any free port
    return bind(host, port)


def _last_port_path(workspace: WorkspaceDir) -> Path:
    return workspace.server_dir / "last-port"


def ensure_running(workspace: WorkspaceDir) -> str:
    """The URL of the workspace's server, starting one in the background if none answers."""
    url = _healthy_url(workspace)
    if url:
        return url
    with _start_lock(workspace):
        url = _healthy_url(workspace)  # another process may have started it meanwhile
        if url:
            return url
        _info_path(workspace).unlink(missing_ok=True)
        return _start(workspace)


def status(workspace: WorkspaceDir) -> dict:
    info = read_info(workspace)
    if not info:
        return {"running": False}
    return {"running": _healthy_url(workspace) is not None, **info}


def stop(workspace: WorkspaceDir, timeout: float = 15.0) -> bool:
    """Stop the background server; False when none was running."""
    info = read_info(workspace)
    if not info or not processes.running(info["pid"]):
        _info_path(workspace).unlink(missing_ok=True)
        return False
    processes.terminate(info["pid"], timeout)
    _info_path(workspace).unlink(missing_ok=True)
    return True


def read_info(workspace: WorkspaceDir) -> dict | None:
    try:
        return json.loads(_info_path(workspace).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def log_path(workspace: WorkspaceDir) -> Path:
    return workspace.server_dir / "server.log"


def _start(workspace: WorkspaceDir) -> str:
    workspace.server_dir.mkdir(exist_ok=True)
    log = open(log_path(workspace), "ab")  # noqa: SIM115 - handed to the child process
    command = [sys.executable, "-m", "modelport.cli.main", "server", "--workspace", str(workspace.root.parent)]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True, close_fds=True)
    log.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerUnavailable(
                f"the control plane exited with code {process.returncode} while starting; "
                f"last lines of {log_path(workspace)}:\n{_tail(log_path(workspace))}"
            )
        url = _healthy_url(workspace)
        if url:
            return url
        time.sleep(0.05)
    process.kill()
    raise ServerUnavailable(
        f"the control plane did not start within {START_TIMEOUT_S:.0f} s; see {log_path(workspace)}")


def _healthy_url(workspace: WorkspaceDir) -> str | None:
    info = read_info(workspace)
    if not info or not processes.running(info.get("pid", 0)):
        return None
    try:
        if httpx.get(f"{info['url']}/healthz", timeout=2).status_code == 200:
            return info["url"]
    except httpx.HTTPError:
        return None
    return None


@contextmanager
def _start_lock(workspace: WorkspaceDir):
    workspace.server_dir.mkdir(exist_ok=True)
    with open(workspace.server_dir / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _info_path(workspace: WorkspaceDir) -> Path:
    return workspace.server_dir / "server.json"


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
