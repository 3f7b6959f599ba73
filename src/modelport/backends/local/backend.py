"""Local replicas: ``python -m modelport.runtime`` processes started from a built environment.

Each replica has a state file (pid, port, restarts) under ``<root>/<service>/<version>/``,
so a restarted control plane re-adopts the replicas still running instead of starting
new ones. Replicas run in their own session: they outlive the control plane.

Each replica is the leader of its own process group: when its main process is gone (it
exited, was killed, or was stopped), the whole group is killed, so no worker it forked
keeps serving on its port. A crashed replica is restarted after a back-off (Kubernetes'
CrashLoopBackOff) that resets once a replica has been ready for ``STABLE_READY_S``; one
whose ``init()`` failed is not restarted: the version needs an update to run again.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx

from ... import processes
from ...reconcile.backend import INIT_FAILED_EXIT_CODE, Preparation, Prepared, ReplicaSetSpec, ReplicaState
from . import limits
from .preparation import LocalArtefacts, Preparations

LISTENING = re.compile(rb"listening:\s+http://[\d.]+:(\d+)")
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
STABLE_READY_S = 60.0  # a replica ready this long before it exited restarts without back-off
MAX_LOG_BYTES = 50 * 1024 * 1024  # a replica log over this is moved to <log>.1 (the one before is dropped)
PROBE_TIMEOUT_S = 2.0  # Azure ML's default liveness timeout_seconds
FAILURE_THRESHOLD = 3  # Azure ML's default failure_threshold
DEFAULT_PROBE_PERIOD_S = 10.0  # Azure ML's default period_seconds
STOP_TIMEOUT_S = float(os.environ.get("MODELPORT_REPLICA_STOP_TIMEOUT_S", "20"))  # then SIGKILL, whole group
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")


class LocalBackend:
    """Runs, watches and stops local replica processes (``root/<service>/<replica set>/``), from the
    environments and app roots that ``preparations`` makes in the background."""

    def __init__(self, root: Path, preparations: Preparations):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.preparations = preparations
        self._http = httpx.Client(timeout=PROBE_TIMEOUT_S, limits=httpx.Limits(max_connections=None,
                                                                                max_keepalive_connections=None))
        self._probes: dict[int, int] = {}  # by pid: consecutive failed probes of a process seen ready
        self._probed_at: dict[int, float] = {}  # by pid: when a ready process was last probed
        self._periods: dict[str, float] = {}  # by replica set key: seconds between probes of ready replicas

    def prepare(self, spec: ReplicaSetSpec) -> Prepared:
        return self.preparations.prepare(spec)

    def resource_notes(self, spec: ReplicaSetSpec) -> list[str]:
        return limits.describe(spec.cpu_limit, spec.memory_limit_gb)

    def apply(self, spec: ReplicaSetSpec) -> None:
        if self.prepare(spec).state is not Preparation.READY:
            raise RuntimeError(f"{spec.key} is not prepared: call prepare() until it says ready")
        artefacts = self.preparations.artefacts(spec)
        self._periods[spec.key] = spec.probe_period_s
        folder = self._folder(spec.service, spec.replica_set)
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(spec.replicas):
            state = self._refreshed(folder, index)
            if state and (_alive(state["pid"]) or state.get("last_exit_code") == INIT_FAILED_EXIT_CODE
                          or time.time() < restart_at(state)):
                continue
            self._start(spec, artefacts, folder, index, previous=state)
        for index in self._indices(folder):
            if index >= spec.replicas:
                self._stop(folder, index)

    def preparation_log(self, service: str, replica_set: str, environment: dict, num_lines: int = 5000) -> str:
        """The local build log of the replica set's environment (one per environment content hash)."""
        return self.preparations.build_log(environment, num_lines)

    def diagnose(self, spec: ReplicaSetSpec, replicas: list[ReplicaState]) -> None:
        """Local replicas have no platform beyond their own states: nothing to add."""
        return None

    def observe(self, service: str, version: str) -> list[ReplicaState]:
        folder = self._folder(service, version)
        replicas = []
        for index in self._indices(folder):
            state = self._refreshed(folder, index)
            if state is None:
                continue
            alive = _alive(state["pid"])
            port = state.get("port") or (self._port_from_log(folder, index, state) if alive else None)
            _rotate(folder / f"replica-{index}.log")
            period = self._periods.get(f"{service}/{version}", DEFAULT_PROBE_PERIOD_S)
            ready = alive and port is not None and self._ready(state["pid"], port, period)
            if ready and not state.get("ready_at"):
                state["ready_at"] = time.time()
                self._write(folder, index, state)
            replicas.append(ReplicaState(index, state["pid"] if alive else None, ("127.0.0.1", port) if port else None,
                                         ready,
                                         state.get("last_exit_code"), state.get("restarts", 0),
                                         folder / f"replica-{index}.log"))
        return replicas

    def _refreshed(self, folder: Path, index: int) -> dict | None:
        """The replica's state, with its exit recorded (and its process group killed) if it exited since."""
        state = self._read(folder, index)
        if state and state.get("exited_at") is None and not _alive(state["pid"]):
            _kill_group(state["pid"])
            self._forget_probes(state["pid"])
            state["exited_at"] = time.time()
            state["last_exit_code"] = _exit_code(state["pid"])
            self._write(folder, index, state)
        return state

    def services(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir())

    def versions(self, service: str) -> list[str]:
        folder = self.root / service
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and any(p.glob("replica-*.json")))

    def remove(self, service: str, replica_set: str | None = None) -> None:
        """Stop a replica set's replicas (all of the service's when None) and delete their folders, logs and app
        roots included."""
        for name in [replica_set] if replica_set else self.versions(service):
            folder = self._folder(service, name)
            for index in self._indices(folder):
                self._stop(folder, index)
            shutil.rmtree(folder, ignore_errors=True)
        if replica_set is None:
            shutil.rmtree(self.root / service, ignore_errors=True)
        self.preparations.remove(service, replica_set)

    def logs(self, service: str, version: str, num_lines: int = 5000) -> str:
        folder = self._folder(service, version)
        parts = []
        for index in self._indices(folder):
            log = folder / f"replica-{index}.log"
            if log.exists():
                lines = log.read_text(errors="replace").splitlines()[-num_lines:]
                parts.append(f"--- replica {index} ({log}) ---\n" + "\n".join(lines))
        return "\n".join(parts)

    def _start(self, spec: ReplicaSetSpec, artefacts: LocalArtefacts, folder: Path, index: int,
               previous: dict | None) -> None:
        restarts = previous["restarts"] + 1 if previous else 0
        crashes = crashes_before_restart(previous) if previous else 0
        env = {k: os.environ[k] for k in BASE_ENV if k in os.environ}
        env.update(spec.env)
        env["PYTHONPATH"] = str(artefacts.pythonpath)
        env["PYTHONUNBUFFERED"] = "1"
        if spec.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(spec.gpus)
        if spec.source_directory:
            env["AZUREML_SOURCE_DIRECTORY"] = spec.source_directory
        entry_script = f"{spec.source_directory}/{spec.entry_script}" if spec.source_directory else spec.entry_script
        command = [str(artefacts.python), "-m", "modelport.runtime", "--source-dir", str(artefacts.app_root),
                   "--entry-script", entry_script, "--host", "127.0.0.1", "--port", "0"]
        log = open(folder / f"replica-{index}.log", "ab")  # noqa: SIM115 - handed to the child
        log.write(f"\n=== modelport: starting replica {index} of {spec.key} (restart {restarts}) ===\n".encode())
        log.flush()
        process = subprocess.Popen(command, cwd=artefacts.app_root, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, close_fds=True,
                                   preexec_fn=limits.preexec(spec.cpu_limit, spec.memory_limit_gb))
        log.close()
        self._write(folder, index, {"pid": process.pid, "port": None, "started": time.time(), "restarts": restarts,
                                    "crashes": crashes, "ready_at": None,
                                    "log_offset": (folder / f"replica-{index}.log").stat().st_size,
                                    "exited_at": None,
                                    "last_exit_code": previous.get("last_exit_code") if previous else None})
        _children[process.pid] = process

    def _stop(self, folder: Path, index: int) -> None:
        state = self._read(folder, index)
        if state:
            if _alive(state["pid"]):
                processes.terminate(state["pid"], STOP_TIMEOUT_S, alive=_alive)
                _exit_code(state["pid"])
            _kill_group(state["pid"])  # workers stuck past the grace period die with their supervisor
            self._forget_probes(state["pid"])
        (folder / f"replica-{index}.json").unlink(missing_ok=True)

    def _ready(self, pid: int, port: int, period_s: float) -> bool:
        """Ready after one good probe of this process; not ready after ``FAILURE_THRESHOLD`` bad ones in a
        row (a busy machine can make one probe slow without anything being wrong). Keyed by pid, so a
        restarted replica is ready only after its own first good probe. A starting replica is probed at
        every pass; a ready one every ``period_s`` seconds (Azure's ``period_seconds``), over a kept-alive
        connection (a process that exits is seen at once, without a probe)."""
        now = time.monotonic()
        if self._probes.get(pid) == 0 and now - self._probed_at.get(pid, 0.0) < period_s:
            return True
        try:
            good = self._http.get(f"http://127.0.0.1:{port}/-/ready").status_code == 200
        except httpx.HTTPError:
            good = False
        self._probed_at[pid] = now
        if good:
            self._probes[pid] = 0
            return True
        if pid not in self._probes:
            return False  # never seen ready
        self._probes[pid] += 1
        if self._probes[pid] >= FAILURE_THRESHOLD:
            del self._probes[pid]
            return False
        return True

    def _forget_probes(self, pid: int) -> None:
        self._probes.pop(pid, None)
        self._probed_at.pop(pid, None)

    def _port_from_log(self, folder: Path, index: int, state: dict) -> int | None:
        log = folder / f"replica-{index}.log"
        with open(log, "rb") as handle:
            handle.seek(state.get("log_offset", 0))
            match = LISTENING.search(handle.read(64_000))
        if match:
            state["port"] = int(match.group(1))
            self._write(folder, index, state)
            return state["port"]
        return None

    def _folder(self, service: str, version: str) -> Path:
        return self.root / service / version

    @staticmethod
    def _indices(folder: Path) -> list[int]:
        if not folder.is_dir():
            return []
        return sorted(int(p.stem.split("-")[1]) for p in folder.glob("replica-*.json"))

    @staticmethod
    def _read(folder: Path, index: int) -> dict | None:
        try:
            return json.loads((folder / f"replica-{index}.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    @staticmethod
    def _write(folder: Path, index: int, state: dict) -> None:
        tmp = folder / f".replica-{index}.json.tmp"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, folder / f"replica-{index}.json")


_children: dict[int, subprocess.Popen] = {}  # replicas this process started: reaped through Popen


def _alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    return processes.running(pid, marker="modelport.runtime")


def _exit_code(pid: int) -> int | None:
    child = _children.pop(pid, None)
    if child is None:
        return None  # a re-adopted replica's exit code cannot be known
    try:
        return child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        return None


def _rotate(log: Path) -> None:
    """Keep a replica log under ``MAX_LOG_BYTES``: copy it to ``<log>.1`` and empty it. The replica writes
    with O_APPEND, so it goes on writing at the new end (lines written during the copy may be lost)."""
    try:
        if log.stat().st_size <= MAX_LOG_BYTES:
            return
    except FileNotFoundError:
        return
    shutil.copyfile(log, log.with_name(log.name + ".1"))
    os.truncate(log, 0)


def _kill_group(pid: int) -> None:
    """SIGKILL what is left of a replica's process group (the replica is its leader: ``setsid``)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def crashes_before_restart(state: dict) -> int:
    """Consecutive crashes counting the exit in ``state``; 1 again when the replica had been ready for
    ``STABLE_READY_S`` seconds before it exited (Kubernetes resets its back-off the same way)."""
    ready_at, exited_at = state.get("ready_at"), state.get("exited_at")
    if ready_at and exited_at and exited_at - ready_at >= STABLE_READY_S:
        return 1
    return state.get("crashes", 0) + 1


def restart_at(state: dict) -> float:
    """Epoch seconds after which an exited replica may start again: 0.5 s after the first crash in a row,
    doubling with each further one, at most ``MAX_BACKOFF_S``."""
    delay = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (crashes_before_restart(state) - 1))
    return (state.get("exited_at") or 0) + delay
