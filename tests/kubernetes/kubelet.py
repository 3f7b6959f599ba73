"""An EMULATED kubelet for tests: the pods of the API emulator (``emulator.py``) run as real processes here.

``EmulatedKubelet(emulator, images)`` is a background thread that does, every ``TICK_S`` seconds, what the
controller-manager and the kubelets of a cluster would: it settles the emulator (Deployments into ReplicaSets and
Pods, Services into EndpointSlices) and runs every scheduled Pod's containers from the emulated image store
(``local_images.py``) as processes: the image's command (or the container's ``command``/``args``), its environment
with the container's ``env`` over it, container paths mapped into the image's folder. Each pod gets its own loopback
address (``127.0.x.y``) as its pod IP, and the wildcard address in its command line (``--host 0.0.0.0``) becomes that
address: so every pod listens on the same container port (5001) at its own address, as in a cluster network.

The Pod's status is what a kubelet would write: ``podIP``, ``phase`` (Pending until a container first started,
then Running), ``containerStatuses`` (``restartCount``, ``ready``, ``started``, ``state`` running or waiting
``ContainerCreating``/``ErrImagePull``/``ImagePullBackOff``/``CrashLoopBackOff``/``CreateContainerConfigError``,
``lastState.terminated`` with the exit code, 128 + the signal for a killed process) and the ``ContainersReady`` and
``Ready`` conditions with their transition times. Probes are the kubelet's: a startup probe gates readiness and
liveness and restarts a container that fails it ``failureThreshold`` times; readiness (``successThreshold`` and
``failureThreshold``) sets ``ready``; liveness restarts; each at its ``periodSeconds``, ``initialDelaySeconds``
and ``timeoutSeconds`` (HTTP GET probes; 200-399 is a success). A container that exits is restarted
(``restartPolicy: Always``) with the kubelet's back-off: at once after the first exit, then after 10 s, 20 s, ...
up to 300 s (``CrashLoopBackOff`` meanwhile), forgotten after 600 s without an exit. A stopped container gets
SIGTERM, and SIGKILL for its whole process group (the container) after ``terminationGracePeriodSeconds``; a deleted
pod's containers are stopped that way, and all are on ``stop()``. Container logs (current and ``previous``) are
served through the emulator's ``pods/log``; events (Pulled, Created, Started, Killing, Unhealthy, BackOff, Failed)
are written as the kubelet words them.

What it does not do: isolation (processes share this machine's files and run as the test's user), resource
requests and limits (no cgroups: no OOM kills, no CPU throttling), volumes (``/tmp`` is this machine's), exec and TCP
probes, env from Secrets or ConfigMaps, init containers, node pressure and eviction, scheduling (the emulator's
``settle`` places pods). Real containers from the same manifests run in ``test_podman_kube_play.py``.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .emulated_objects import now
from .emulator import ApiEmulator
from .local_images import LocalImage, LocalImages

TICK_S = 0.1  # how often pods are synced (the kubelet's PLEG relists every second; faster keeps tests short)
BACKOFF_INITIAL_S = 10.0  # the kubelet's container restart back-off: 10 s, doubling ...
BACKOFF_MAX_S = 300.0  # ... up to 5 minutes
BACKOFF_RESET_S = 600.0  # an exit this long after the last back-off starts it again at 10 s
DEFAULT_GRACE_S = 30.0  # a pod's terminationGracePeriodSeconds when its spec has none
STOP_GRACE_S = 10.0  # at most this long for containers to stop on ``stop()``, then SIGKILL
PROBE_WORKERS = 8
_UNSET = object()


@dataclass
class _Probe:
    """One probe of one container run (the kubelet's prober worker): its spec and consecutive results."""

    kind: str  # "startup", "readiness" or "liveness"
    spec: dict[str, Any]
    due: float  # monotonic seconds
    successes: int = 0
    failures: int = 0
    pending: Future[str | None] | None = None  # the probe in flight: None for a success, else why it failed

    @property
    def period(self) -> float:
        return float(self.spec.get("periodSeconds", 10))

    def threshold(self, outcome: str) -> int:
        return int(self.spec.get(f"{outcome}Threshold", 1 if outcome == "success" else 3))


@dataclass
class _Run:
    """One run of a container: its process (leader of its own process group), log file and probes."""

    process: subprocess.Popen[bytes]
    log: Path
    started_at: str
    container_id: str
    probes: dict[str, _Probe]
    started: bool  # the startup probe succeeded (or there is none)
    ready: bool = False
    kill_deadline: float | None = None  # SIGTERM was sent; SIGKILL for the group after this (monotonic)


@dataclass
class _Container:
    """One container of a pod across its runs: restarts, last termination, back-off, waiting reason, logs."""

    spec: dict[str, Any]
    run: _Run | None = None
    restarts: int = 0
    ever_started: bool = False
    last_terminated: dict[str, Any] | None = None
    waiting: dict[str, str] | None = field(default_factory=lambda: {"reason": "ContainerCreating"})
    start_at: float = 0.0  # monotonic: when it may (re)start or retry its image pull
    backoff_s: float | None = None  # the restart back-off entry (None: none yet)
    backoff_updated: float = 0.0
    pull_backoff_s: float | None = None
    logs: list[Path] = field(default_factory=list)  # the last two runs' logs, oldest first

    @property
    def name(self) -> str:
        return str(self.spec["name"])


@dataclass
class _Pod:
    namespace: str
    name: str
    uid: str
    ip: str
    node: str
    host_ip: str | None
    grace_s: float
    containers: list[_Container]
    start_time: str = field(default_factory=now)
    conditions: dict[str, tuple[str, str]] = field(default_factory=dict)  # type -> (status, lastTransitionTime)
    written: Any = _UNSET  # the status last written


class EmulatedKubelet:
    """Runs the emulator's pods as processes from ``images``; files (container logs) under ``root`` (None: a new
    temporary folder). ``start()`` begins the background thread; ``stop()`` ends it and stops every container.

    While it runs it owns the emulator's pod statuses (``emulator.pod_status``: ``settle`` keeps a pod's stored
    status and gives a new pod a Pending one) and its container logs (``emulator.pod_logs``)."""

    def __init__(self, emulator: ApiEmulator, images: LocalImages, root: Path | None = None):
        self.emulator = emulator
        self.images = images
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="emulated-kubelet-"))
        self.errors: list[str] = []  # what went wrong in the thread (a test may assert it stays empty)
        self._pods: dict[tuple[str, str], _Pod] = {}  # (namespace, name) -> pod
        self._stopping: list[tuple[_Run, float]] = []  # runs of deleted pods being stopped, with their grace
        self._events: dict[tuple[str, str, str], dict[str, Any]] = {}  # (pod uid, reason, message) -> Event
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._probes = ThreadPoolExecutor(PROBE_WORKERS, thread_name_prefix="kubelet-probe")
        self._http = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))
        self._ip_offset = random.randrange(250 * 250)
        self._saved: tuple[Any, Any] = (None, None)

    # lifecycle

    def start(self) -> EmulatedKubelet:
        """Take over the emulator's pod statuses and logs and start syncing in a daemon thread."""
        self._saved = (self.emulator.pod_status, self.emulator.pod_logs)
        self.emulator.pod_status = self._settled_status
        self.emulator.pod_logs = _LiveLogs(self, self.emulator.pod_logs)
        self._thread = threading.Thread(target=self._loop, name="emulated-kubelet", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop syncing; SIGTERM every container, SIGKILL what is left of them after ``STOP_GRACE_S``."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
        with self._lock:
            runs = [c.run for p in self._pods.values() for c in p.containers if c.run] + [r for r, _ in self._stopping]
            self._pods.clear()
            self._stopping.clear()
        for run in runs:
            _terminate(run, STOP_GRACE_S)
        deadline = time.monotonic() + STOP_GRACE_S
        while any(run.process.poll() is None for run in runs) and time.monotonic() < deadline:
            time.sleep(0.05)
        for run in runs:
            _kill_group(run)
        self._probes.shutdown(wait=False, cancel_futures=True)
        self._http.close()
        self.emulator.pod_status, self.emulator.pod_logs = self._saved

    def __enter__(self) -> EmulatedKubelet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # what tests ask

    def pid(self, pod: str, container: str | None = None) -> int | None:
        """The process id of a pod's running container (its first when ``container`` is None), or None."""
        run = self._run_of(pod, container)
        return run.process.pid if run else None

    def pod_at(self, ip: str) -> str | None:
        """The name of the pod whose IP is ``ip``, or None."""
        with self._lock:
            return next((p.name for p in self._pods.values() if p.ip == ip), None)

    def kill(self, pod: str, container: str | None = None, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` to a pod's running container's main process (as an OOM kill or a crash would end it); its
        pid. Raises LookupError when that container is not running."""
        run = self._run_of(pod, container)
        if run is None:
            raise LookupError(f"pod {pod} has no running container {container or ''}".rstrip())
        os.kill(run.process.pid, sig)
        return run.process.pid

    def log_text(self, pod: str, container: str, previous: bool) -> str | None:
        """What ``pods/log`` answers: the current run's log (while waiting to restart, the last run's), or with
        ``previous`` the last terminated run's; None when there is none."""
        with self._lock:
            found = next((c for p in self._pods.values() if p.name == pod for c in p.containers
                          if c.name == container), None)
            if found is None or not found.logs:
                return None
            if previous:
                if found.last_terminated is None:
                    return None
                log = found.logs[-2] if found.run and len(found.logs) > 1 else found.logs[-1]
            else:
                log = found.logs[-1]
        try:
            return log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # the loop

    def _loop(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self.emulator.settle()
                self._sync()
            except Exception as error:  # noqa: BLE001 - kept for the test to see; the kubelet goes on
                self.errors.append(f"{type(error).__name__}: {error}")

    def _sync(self) -> None:
        """One pass: start containers of new pods, stop those of deleted pods, restart exited containers, probe,
        and write each pod's status when it changed."""
        namespaces = sorted(self.emulator.namespaces)
        stored = {(p["metadata"]["namespace"], p["metadata"]["name"]): p
                  for namespace in namespaces for p in self.emulator.list_objects("Pod", namespace)}
        with self._lock:
            for key, pod in list(self._pods.items()):
                found = stored.get(key)
                if found is None or found["metadata"].get("uid") != pod.uid:
                    del self._pods[key]
                    self._stopping.extend((c.run, pod.grace_s) for c in pod.containers if c.run)
                    for container in pod.containers:
                        if container.run:
                            _terminate(container.run, pod.grace_s)
            for key, found in stored.items():
                if key not in self._pods and _runnable(found):
                    self._pods[key] = self._admit(found)
            self._stopping = [(run, grace) for run, grace in self._stopping if not _reaped(run)]
            pods = list(self._pods.values())
        clock = time.monotonic()
        for pod in pods:
            for container in pod.containers:
                self._sync_container(pod, container, clock)
            self._write_status(pod)

    def _admit(self, found: dict[str, Any]) -> _Pod:
        meta, spec = found["metadata"], found.get("spec") or {}
        containers = [_Container(spec=dict(c)) for c in spec.get("containers") or []]
        return _Pod(namespace=meta["namespace"], name=meta["name"], uid=meta.get("uid", ""),
                    ip=self._allocate_ip(containers), node=spec.get("nodeName", "emulated-node"),
                    host_ip=(found.get("status") or {}).get("hostIP"),
                    grace_s=float(spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_S)), containers=containers)

    def _sync_container(self, pod: _Pod, container: _Container, clock: float) -> None:
        run = container.run
        if run is not None:
            code = run.process.poll()
            if code is None and run.kill_deadline is not None and clock >= run.kill_deadline:
                _kill_group(run)  # its grace period is over
                code = run.process.poll()
            if code is None:
                self._probe(pod, container, run, clock)
                return
            self._exited(pod, container, run, code, clock)
        if clock >= container.start_at:
            self._start(pod, container, clock)

    def _exited(self, pod: _Pod, container: _Container, run: _Run, code: int, clock: float) -> None:
        """Record the run's termination; restart at once unless the back-off holds it (CrashLoopBackOff)."""
        _kill_group(run)  # the container ends with its main process
        code = 128 - code if code < 0 else code
        container.last_terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                                     "startedAt": run.started_at, "finishedAt": now(),
                                     "containerID": run.container_id}
        container.run = None
        in_backoff = (container.backoff_s is not None
                      and clock - container.backoff_updated <= 2 * BACKOFF_MAX_S)
        if in_backoff:
            assert container.backoff_s is not None
            container.start_at = clock + container.backoff_s
            message = (f"back-off {container.backoff_s:.0f}s restarting failed container={container.name} "
                       f"pod={pod.name}_{pod.namespace}({pod.uid})")
            container.waiting = {"reason": "CrashLoopBackOff", "message": message}
            self._event(pod, container, "Warning", "BackOff", "Back-off restarting failed container "
                        f"{container.name} in pod {pod.name}_{pod.namespace}({pod.uid})")
        else:
            container.start_at = clock

    def _start(self, pod: _Pod, container: _Container, clock: float) -> None:
        """Pull (from the store), then start a run of ``container``; a failed pull or config waits with a reason."""
        image_name = str(container.spec.get("image", ""))
        image = self.images.get(image_name)
        if image is None:
            self._pull_failed(pod, container, image_name, clock)
            return
        env, problem = _container_env(container.spec, pod)
        if problem:
            container.waiting = {"reason": "CreateContainerConfigError", "message": problem}
            container.start_at = clock + BACKOFF_INITIAL_S
            self._event(pod, container, "Warning", "Failed", f"Error: {problem}")
            return
        if container.last_terminated is not None:  # a restart: the back-off entry moves on (the kubelet's Next)
            expired = container.backoff_s is None or clock - container.backoff_updated > 2 * BACKOFF_MAX_S
            container.backoff_s = BACKOFF_INITIAL_S if expired else min(2 * container.backoff_s, BACKOFF_MAX_S)
            container.backoff_updated = clock
            container.restarts += 1
        if not container.ever_started:
            self._event(pod, container, "Normal", "Pulled", f'Container image "{image_name}" already present on '
                                                             "machine")
        run = self._launch(pod, container, image, env)
        container.run, container.waiting, container.ever_started = run, None, True
        container.pull_backoff_s = None
        self._event(pod, container, "Normal", "Created", f"Created container {container.name}")
        self._event(pod, container, "Normal", "Started", f"Started container {container.name}")

    def _launch(self, pod: _Pod, container: _Container, image: LocalImage, env: dict[str, str]) -> _Run:
        spec = container.spec
        command, args = spec.get("command"), spec.get("args")
        argv = list(command or []) + list(args if args is not None else ([] if command else image.cmd))
        argv = [pod.ip if arg == "0.0.0.0" else arg for arg in image.host_argv(argv)]
        folder = self.root / f"{pod.namespace}_{pod.name}_{pod.uid}" / container.name
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / f"{container.restarts}.log"
        container.logs = [*container.logs, log][-2:]
        full_env = image.host_env({"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOSTNAME": pod.name,
                                   **image.env, **env})
        workdir = Path(image.host_path(str(spec.get("workingDir") or image.workdir)))
        with open(log, "wb") as output:
            process = subprocess.Popen(argv, cwd=workdir if workdir.is_dir() else image.root, env=full_env,
                                       stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        clock = time.monotonic()
        probes = {kind: _Probe(kind, spec[f"{kind}Probe"], clock + float(spec[f"{kind}Probe"].get(
            "initialDelaySeconds", 0))) for kind in ("startup", "readiness", "liveness") if spec.get(f"{kind}Probe")}
        return _Run(process=process, log=log, started_at=now(), container_id=f"emulated://{uuid.uuid4().hex}",
                    probes=probes, started="startup" not in probes)

    def _pull_failed(self, pod: _Pod, container: _Container, image: str, clock: float) -> None:
        """The image is not in the store: ErrImagePull, then ImagePullBackOff, retried with the back-off."""
        message = (f'failed to pull and unpack image "{image}": {image}: not found (the emulated image store has '
                   "no such image)")
        first = container.pull_backoff_s is None
        container.pull_backoff_s = BACKOFF_INITIAL_S if first else min(2 * (container.pull_backoff_s or 0),
                                                                      BACKOFF_MAX_S)
        container.start_at = clock + container.pull_backoff_s
        container.waiting = {"reason": "ErrImagePull" if first else "ImagePullBackOff",
                             "message": message if first else f'Back-off pulling image "{image}"'}
        self._event(pod, container, "Warning", "Failed", f'Failed to pull image "{image}": {message}')

    # probes

    def _probe(self, pod: _Pod, container: _Container, run: _Run, clock: float) -> None:
        """Collect finished probes and start those that are due (startup first; the others once it succeeded)."""
        for probe in run.probes.values():
            if probe.pending is not None and probe.pending.done():
                failure = probe.pending.result()
                probe.pending = None
                self._probed(pod, container, run, probe, failure)
            active = (probe.kind == "startup") != run.started  # startup until it succeeds, then the others
            if active and probe.pending is None and clock >= probe.due and run.kill_deadline is None:
                probe.due = clock + probe.period
                probe.pending = self._probes.submit(self._get, pod.ip, container.spec, probe.spec)

    def _probed(self, pod: _Pod, container: _Container, run: _Run, probe: _Probe, failure: str | None) -> None:
        if failure is None:
            probe.successes, probe.failures = probe.successes + 1, 0
        else:
            probe.successes, probe.failures = 0, probe.failures + 1
            self._event(pod, container, "Warning", "Unhealthy", f"{probe.kind.capitalize()} probe failed: {failure}")
        if probe.kind == "startup" and probe.successes >= probe.threshold("success"):
            run.started = True
            for other in run.probes.values():  # readiness is asked at once once started
                if other.kind != "startup":
                    other.due = min(other.due, time.monotonic())
        elif probe.kind == "readiness":
            if probe.successes >= probe.threshold("success"):
                run.ready = True
            elif probe.failures >= probe.threshold("failure"):
                run.ready = False
        if probe.kind in ("startup", "liveness") and probe.failures >= probe.threshold("failure") \
                and run.kill_deadline is None:
            self._event(pod, container, "Normal", "Killing", f"Container {container.name} failed {probe.kind} probe, "
                                                             "will be restarted")
            run.ready = False
            _terminate(run, pod.grace_s)

    def _get(self, ip: str, container: dict[str, Any], probe: dict[str, Any]) -> str | None:
        """One HTTP GET probe; None for a success (200-399), else what failed, as the kubelet says it."""
        get = probe.get("httpGet")
        if not get:
            return None  # exec and TCP probes are not emulated: they pass
        port = _port(get.get("port"), container)
        url = f"{str(get.get('scheme', 'HTTP')).lower()}://{get.get('host') or ip}:{port}{get.get('path', '/')}"
        try:
            answer = self._http.get(url, timeout=float(probe.get("timeoutSeconds", 1)))
        except httpx.TimeoutException:
            return f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
        except httpx.HTTPError as error:
            return f'Get "{url}": {error}'
        return None if 200 <= answer.status_code < 400 else f"HTTP probe failed with statuscode: {answer.status_code}"

    # status and events

    def _write_status(self, pod: _Pod) -> None:
        statuses = [self._container_status(c) for c in pod.containers]
        ready = all(s["ready"] for s in statuses)
        running = any(c.ever_started for c in pod.containers)
        reason = None if ready else "ContainersNotReady"
        conditions = [self._condition(pod, "PodScheduled", True), self._condition(pod, "Initialized", True),
                      self._condition(pod, "ContainersReady", ready, reason), self._condition(pod, "Ready", ready,
                                                                                               reason)]
        status: dict[str, Any] = {"phase": "Running" if running else "Pending", "conditions": conditions,
                                  "podIP": pod.ip, "podIPs": [{"ip": pod.ip}], "startTime": pod.start_time,
                                  "containerStatuses": statuses, "qosClass": "Burstable"}
        if pod.host_ip:
            status["hostIP"] = pod.host_ip
        if status == pod.written:
            return
        with self.emulator._lock:  # read and write as one: a pod deleted meanwhile must not come back
            stored = self.emulator.get_object("Pod", pod.name, pod.namespace)
            if stored is None or stored["metadata"].get("uid") != pod.uid:
                return
            stored["status"] = status
            self.emulator.put(stored)
        pod.written = status

    def _container_status(self, container: _Container) -> dict[str, Any]:
        run = container.run
        status: dict[str, Any] = {"name": container.name, "image": container.spec.get("image", ""),
                                  "imageID": "", "restartCount": container.restarts,
                                  "ready": bool(run and run.ready and run.kill_deadline is None),
                                  "started": bool(run and run.started)}
        if run is not None:
            status["state"] = {"running": {"startedAt": run.started_at}}
            status["containerID"] = run.container_id
            status["imageID"] = f"emulated://{container.spec.get('image', '')}"
        else:
            status["state"] = {"waiting": dict(container.waiting or {"reason": "ContainerCreating"})}
        status["lastState"] = {"terminated": dict(container.last_terminated)} if container.last_terminated else {}
        return status

    @staticmethod
    def _condition(pod: _Pod, kind: str, true: bool, reason: str | None = None) -> dict[str, Any]:
        value = "True" if true else "False"
        old = pod.conditions.get(kind)
        if old is None or old[0] != value:
            pod.conditions[kind] = (value, now())
        condition = {"type": kind, "status": value, "lastTransitionTime": pod.conditions[kind][1]}
        if reason:
            condition["reason"] = reason
        return condition

    def _event(self, pod: _Pod, container: _Container, kind: str, reason: str, message: str) -> None:
        """Write (or count once more) an Event about ``container`` of ``pod``, from the kubelet."""
        key = (pod.uid, reason, message)
        stamp = now()
        event = self._events.get(key)
        if event is None:
            event = {"apiVersion": "v1", "kind": "Event",
                     "metadata": {"name": f"{pod.name}.{uuid.uuid4().hex[:16]}", "namespace": pod.namespace},
                     "involvedObject": {"kind": "Pod", "name": pod.name, "namespace": pod.namespace, "uid": pod.uid,
                                        "apiVersion": "v1", "fieldPath": f"spec.containers{{{container.name}}}"},
                     "reason": reason, "message": message, "type": kind, "firstTimestamp": stamp, "count": 0,
                     "source": {"component": "kubelet", "host": pod.node}}
            self._events[key] = event
        event.update(count=event["count"] + 1, lastTimestamp=stamp)
        self.emulator.put(event)

    # settle's statuses, addresses

    def _settled_status(self, deployment: str, index: int) -> dict[str, Any]:
        """``settle``'s status for pod ``index`` of ``deployment``: the one stored (this kubelet writes it), or
        Pending for a pod that does not exist yet."""
        pattern = re.compile(rf"{re.escape(deployment)}-[0-9a-f]{{10}}-{index}")
        for namespace in sorted(self.emulator.namespaces):
            for pod in self.emulator.list_objects("Pod", namespace):
                if pattern.fullmatch(pod["metadata"]["name"]) and pod.get("status"):
                    return pod["status"]
        return {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now()},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now()},
            {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady"},
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}]}

    def _allocate_ip(self, containers: list[_Container]) -> str:
        """A loopback address no pod of this kubelet has, whose container ports are free on this machine."""
        ports = [int(p["containerPort"]) for c in containers for p in c.spec.get("ports") or []] or [80]
        taken = {p.ip for p in self._pods.values()}
        for step in range(250 * 250):
            number = (self._ip_offset + step) % (250 * 250)
            ip = f"127.0.{number // 250 + 1}.{number % 250 + 2}"
            if ip not in taken and all(_free(ip, port) for port in ports):
                self._ip_offset = number + 1
                return ip
        raise RuntimeError("no free loopback address for a pod")

    def _run_of(self, pod: str, container: str | None) -> _Run | None:
        with self._lock:
            found = next((p for p in self._pods.values() if p.name == pod), None)
            if found is None:
                return None
            chosen = next((c for c in found.containers if container in (None, c.name)), None)
            return chosen.run if chosen else None


class _LiveLogs(dict):
    """``emulator.pod_logs`` while a kubelet runs: its containers' log files, read when asked, over the texts a
    test put there."""

    def __init__(self, kubelet: EmulatedKubelet, texts: dict[tuple[str, str, bool], str]):
        super().__init__(texts)
        self.kubelet = kubelet

    def get(self, key: tuple[str, str, bool], default: Any = None) -> Any:  # type: ignore[override]
        text = self.kubelet.log_text(*key)
        return text if text is not None else super().get(key, default)


def _runnable(pod: dict[str, Any]) -> bool:
    """A pod a kubelet runs: placed on a node, not being deleted, not finished."""
    status = pod.get("status") or {}
    return bool((pod.get("spec") or {}).get("nodeName")) and not pod["metadata"].get("deletionTimestamp") \
        and status.get("phase") not in ("Succeeded", "Failed")


def _container_env(spec: dict[str, Any], pod: _Pod) -> tuple[dict[str, str], str | None]:
    """The container's ``env`` as names to values, and a problem when one cannot be resolved here."""
    env: dict[str, str] = {}
    for item in spec.get("env") or []:
        if "value" in item or "valueFrom" not in item:
            env[item["name"]] = str(item.get("value", ""))
        elif (item["valueFrom"].get("fieldRef") or {}).get("fieldPath") in ("metadata.name", "status.podIP"):
            env[item["name"]] = pod.name if item["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name" else pod.ip
        else:
            return env, f"the emulated kubelet cannot resolve env {item['name']} from {sorted(item['valueFrom'])}"
    return env, None


def _port(port: Any, container: dict[str, Any]) -> int:
    """A probe's port: a number, or the name of one of the container's ports."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    return next(int(p["containerPort"]) for p in container.get("ports") or [] if p.get("name") == port)


def _free(ip: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((ip, port))
        except OSError:
            return False
    return True


def _terminate(run: _Run, grace_s: float) -> None:
    """SIGTERM the container's main process; ``_kill_group`` after ``grace_s`` seconds if it is still there."""
    if run.kill_deadline is None:
        run.kill_deadline = time.monotonic() + grace_s
        with contextlib.suppress(ProcessLookupError):
            run.process.send_signal(signal.SIGTERM)


def _kill_group(run: _Run) -> None:
    """SIGKILL every process left in the container (its process group), and reap the main one."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(run.process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        run.process.wait(timeout=5)


def _reaped(run: _Run) -> bool:
    """Whether a stopping run is gone (its group killed once it exited or its grace ran out)."""
    if run.process.poll() is not None or (run.kill_deadline is not None and time.monotonic() >= run.kill_deadline):
        _kill_group(run)
        return True
    return False

