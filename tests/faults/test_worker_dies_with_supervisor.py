"""A replica's workers die with its supervisor, even when nothing else is there to kill them."""

from __future__ import annotations

import os
import signal

import httpx
import pytest

from tests.conftest import script
from tests.processes import children, running
from tests.traffic import wait_until


def test_killing_the_supervisor_kills_its_workers_at_once(start_runtime):
    runtime = start_runtime("--entry-script", script("score_plain.py"), "--workers", "2")
    supervisor = runtime.proc.pid
    workers = children(supervisor)
    assert len(workers) == 2
    os.kill(supervisor, signal.SIGKILL)
    runtime.proc.wait(10)
    assert wait_until(lambda: not any(running(pid) for pid in workers), timeout=10), workers
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{runtime.url}/-/live", timeout=2)

