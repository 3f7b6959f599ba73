"""A replica's workers die with its supervisor, even when nothing else is there to kill them."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.conftest import script

from .load import wait_until


def test_killing_the_supervisor_kills_its_workers_at_once(start_runtime):
    runtime = start_runtime("--entry-script", script("score_plain.py"), "--workers", "2")
    supervisor = runtime.proc.pid
    workers = _children(supervisor)
    assert len(workers) == 2
    os.kill(supervisor, signal.SIGKILL)
    runtime.proc.wait(10)
    assert wait_until(lambda: not any(os.path.exists(f"/proc/{pid}") and _alive(pid) for pid in workers),
                      timeout=10), workers
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{runtime.url}/-/live", timeout=2)


def _children(parent: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent and fields[0] != "Z":
            children.append(int(stat.parent.name))
    return children


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
