"""Where the local Envoy listens: free loopback ports, and its admin socket in a private folder."""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
from pathlib import Path

from ..errors import Conflict

ADMIN_SOCKET = "admin.sock"
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes


def admin_socket_path(state_dir: Path) -> Path:
    """``state_dir/admin.sock``, or one in a private temp folder when that path is too long for a socket."""
    path = state_dir.resolve() / ADMIN_SOCKET
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"modelport-{os.getuid()}-{digest}" / ADMIN_SOCKET


def private_folder(folder: Path) -> None:
    """Make ``folder`` with mode 0700, or make the one there (it must be ours) 0700."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.stat()
    if info.st_uid != os.getuid():
        raise Conflict(f"{folder} holds the front end's admin socket but belongs to another user: remove it "
                            "and start again")
    if info.st_mode & 0o077:
        folder.chmod(0o700)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
