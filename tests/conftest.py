"""Shared test helpers: start the real runtime process and talk to it over real HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from modelport import Model, Webservice, Workspace
from modelport.api import server

FIXTURES = Path(__file__).parent / "fixtures"
SCRIPTS = FIXTURES / "scripts"
LISTENING = re.compile(r"listening:\s+http://([\d.]+):(\d+)")


class RuntimeProcess:
    """A ``python -m modelport.runtime`` process started by a test, with its log."""

    def __init__(self, args: list[str], env: dict[str, str] | None, log_path: Path, cwd: Path | None = None):
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "modelport.runtime", "--port", "0", *args],
            stdout=self._log, stderr=subprocess.STDOUT, env=full_env, cwd=cwd,
        )
        self.url = ""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_listening(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = LISTENING.search(self.log())
            if match:
                self.url = f"http://{match.group(1)}:{match.group(2)}"
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"runtime exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.02)
        raise AssertionError(f"runtime did not start listening:\n{self.log()}")

    def wait_ready(self, timeout: float = 30) -> None:
        self.wait_listening(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"runtime exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"runtime never became ready:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def start_runtime(tmp_path_factory):
    """Start runtimes for a test module; all are stopped when the module ends."""
    started: list[RuntimeProcess] = []

    def start(*args: str, env: dict[str, str] | None = None, ready: bool = True, cwd: Path | None = None):
        log_path = tmp_path_factory.mktemp("runtime") / "runtime.log"
        runtime = RuntimeProcess(list(args), env, log_path, cwd)
        started.append(runtime)
        if ready:
            runtime.wait_ready()
        return runtime

    yield start
    for runtime in started:
        runtime.stop()


def script(name: str) -> str:
    return str(SCRIPTS / name)


@pytest.fixture(scope="module")
def new_workspace(tmp_path_factory):
    """``new_workspace(name, **env)``: a workspace in a new folder; ``env`` is set in this process's environment,
    where the control planes it starts read it, until the module ends. Then each workspace's services are deleted,
    its control plane stopped, and the environment restored."""
    created: list[Workspace] = []
    saved: dict[str, str | None] = {}

    def create(name: str, **env: str) -> Workspace:
        for key in env:
            saved.setdefault(key, os.environ.get(key))
        os.environ.update(env)
        workspace = Workspace.create(name, tmp_path_factory.mktemp("ws"))
        created.append(workspace)
        return workspace

    yield create
    for workspace in created:
        for service in Webservice.list(workspace):
            service.delete()
        server.stop(workspace._dir)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def register_weights(ws, folder: Path, weights: str = "w-1", name: str = "echo-model") -> Model:
    """A new version of model ``name``: ``folder/weights.txt``, holding ``weights``."""
    path = folder / "weights.txt"
    path.write_text(weights)
    return Model.register(ws, path, name)
