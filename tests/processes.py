"""The processes a test started or a service runs, as Linux shows them in /proc, and the local backend's replica
state files. A zombie (dead, not yet reaped) counts as not running."""

from __future__ import annotations

import json
from pathlib import Path

import httpx


def stat_fields(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name: state, parent pid, process group, ...
    Raises ``OSError`` when there is no such process."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not a zombie)."""
    try:
        return stat_fields(pid)[0] != "Z"
    except OSError:
        return False


def parent_of(pid: int) -> int:
    return int(stat_fields(pid)[1])


def _live(field: int, value: int) -> list[int]:
    """Live processes whose stat field ``field`` is ``value``."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = stat_fields(int(entry.name))
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[field]) == value:
            found.append(int(entry.name))
    return found


def children(parent: int) -> list[int]:
    """Live processes whose parent is ``parent``."""
    return _live(1, parent)


def process_group(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid``."""
    return _live(2, pgid)


def refuses_connections(url: str) -> bool:
    """Whether nothing accepts connections at ``url`` any more (a killed server's sockets are closed)."""
    try:
        httpx.get(url, timeout=2)
    except httpx.ConnectError:
        return True
    except httpx.HTTPError:
        pass
    return False


def replica_states(ws, service: str) -> dict[str, dict]:
    """``{"default-1/replica-0": state, ...}``: the local backend's replica state files of ``service`` (pid, port,
    restarts)."""
    root = ws._dir.root / "replicas" / service
    return {f"{p.parent.name}/{p.stem}": json.loads(p.read_text()) for p in sorted(root.glob("*/replica-*.json"))}
