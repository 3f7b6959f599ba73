"""What a version's pods, their events and its Deployment say, as replica states and one diagnosis.

Pure functions over API objects as plain dicts (camelCase, as the Kubernetes API returns them). The
Kubernetes backend calls ``replica_states`` for ``observe`` and ``diagnose`` for ``diagnose`` (the
reconciler shows its state and reason until the replicas are ready), ``events_text`` for ``get_logs()``
of a pod that has no log yet, and ``deployment_progress``/``rollout_stuck`` for a Deployment's rollout.

The failure modes and their states follow Azure ML on AKS: an image that cannot be pulled or an
``init()`` that raises or runs out of memory is Failed (it needs an update); a replica that crashes,
runs out of memory after init(), or is killed by its startup or liveness probe is Unhealthy; pods the
cluster cannot place are Failed after Azure's 5 minutes of trying.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from kubernetes.utils import parse_quantity

from ...errors import ModelportError
from ...reconcile.backend import INIT_FAILED_EXIT_CODE, ReplicaState
from ...spec.state import State
from .image_pulls import pull_advice
from .manifests import SCORING_CONTAINER
from .scheduling import GB

UNSCHEDULABLE_GRACE_S = 300.0  # Azure ML: "Couldn't Schedule ... after trying for 00:05:00"
PULL_GRACE_S = 120.0  # an image pull still failing this long after the pod was created is Failed
PULL_FAILURES = 3  # ... or after this many failed pulls
CONFIG_GRACE_S = 60.0  # a Secret/ConfigMap still missing this long after the pod was created is Failed
LOG_TAIL_LINES = 30
_WAITING_FINE = ("ContainerCreating", "PodInitializing")
_MISSING_OBJECT = re.compile(r'(secret|configmap)s? "?([^"\s]+)"? not found', re.IGNORECASE)
_SEVERITY = {State.FAILED: 3, State.UNHEALTHY: 2, State.TRANSITIONING: 1, State.HEALTHY: 0}
_NEVER = datetime.min.replace(tzinfo=timezone.utc)
LogTail = Callable[[str, str, bool], str]  # (pod, container, previous) -> the log's last lines


@dataclass(frozen=True)
class Diagnosis:
    """What is wrong with a version's pods. ``state``: the version's state while none is ready; ``reason``: one
    paragraph saying what happened and what to do (a log or event excerpt may follow it); ``layer``: where it
    went wrong (``scheduling``, ``image pull``, ``pod configuration``, ``init()``, ``memory``, ``startup probe``,
    ``liveness probe``, ``container``, ``admission``); ``permanent``: it will not clear without an update of the
    service."""

    state: State
    reason: str
    layer: str
    permanent: bool


def current_pods(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods that are replicas: not being deleted, not terminated (an evicted pod lingers as Failed), in a
    stable order (creation time, then name)."""
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")
            and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
    return sorted(live, key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]))


def replica_states(pods: list[dict[str, Any]], port: int) -> list[ReplicaState]:
    """The replicas ``pods`` (a replica set's Pod dicts) stand for, indexed in ``current_pods`` order:
    ``address`` (pod IP, ``port``) once Running, ``ready`` from the Ready condition, ``exit_code`` and
    ``restarts`` from the scoring container (its current or last termination)."""
    states = []
    for index, pod in enumerate(current_pods(pods)):
        status = pod.get("status") or {}
        container = _container_status(pod) or {}
        terminated = _termination(container)[0]
        address = (status["podIP"], port) if status.get("phase") == "Running" and status.get("podIP") else None
        states.append(ReplicaState(index=index, pid=None, address=address, ready=_ready(pod),
                                   exit_code=terminated.get("exitCode") if terminated else None,
                                   restarts=int(container.get("restartCount") or 0), log=None))
    return states


def diagnose(pods: list[dict[str, Any]], events: list[dict[str, Any]], deploy: dict[str, Any], log_tail: LogTail,
             now: datetime | None = None, capacity_note: str | None = None) -> Diagnosis | None:
    """The most serious thing wrong with a replica set's pods, None when nothing is (pods starting, init() running).

    ``pods``: its Pod dicts; ``events``: Event dicts (core/v1) about them and about its ReplicaSet (events of
    other pods are ignored); ``deploy``: the version's DeploymentConfig dict (``memory_gb_limit``,
    ``period_seconds``, ``failure_threshold``, ``timeout_seconds``, ``initial_delay_seconds``...);
    ``log_tail(pod, container, previous)``: the container's last log lines (a ModelportError counts as no log);
    ``now``: the time to judge how long a failure persisted (default: the clock); ``capacity_note``: why pods do
    not fit, from ``scheduling.check_fit``, added to an Unschedulable reason."""
    now = now or datetime.now(timezone.utc)
    current = current_pods(pods)
    names = {p["metadata"]["name"] for p in current}
    related = [e for e in events if _involved(e).get("kind") != "Pod" or _involved(e).get("name") in names]
    findings: list[tuple[Diagnosis, str]] = []
    for pod in current:
        pod_events = [e for e in related if _involved(e).get("name") == pod["metadata"]["name"]
                      and _involved(e).get("kind") == "Pod"]
        found = _pod_diagnosis(pod, pod_events, deploy, log_tail, now, capacity_note)
        if found:
            findings.append((found, pod["metadata"]["name"]))
    if not findings:
        return _failed_create(current, related)
    worst, pod_name = max(findings, key=lambda item: _SEVERITY[item[0].state])  # the first pod among equals
    alike = sum(1 for found, _ in findings if found.layer == worst.layer) - 1
    others = f" and {alike} more like it" if alike else ""
    return Diagnosis(worst.state, f"pod {pod_name}{others}: {worst.reason}", worst.layer, worst.permanent)


def events_text(events: list[dict[str, Any]]) -> str:
    """Events as ``kubectl get events`` lines, oldest first: ``<time> <type> <reason> <kind>/<name>: <message>``
    (with ``(xN)`` when it repeated); what ``get_logs()`` shows for a pod that has no log."""
    lines = []
    for event in sorted(events, key=lambda e: _event_time(e) or _NEVER):
        when = _event_time(event)
        stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else "-"
        count = _event_count(event)
        involved = _involved(event)
        lines.append(f"{stamp} {event.get('type', 'Normal')} {event.get('reason', '')} "
                     f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}: "
                     f"{(event.get('message') or '').strip()}{f' (x{count})' if count > 1 else ''}")
    return "\n".join(lines)


def deployment_progress(deployment: dict[str, Any]) -> tuple[int, int, int]:
    """A Deployment's (desired, updated, ready) replicas: ``spec.replicas`` (1 when unset, as Kubernetes
    defaults it), ``status.updatedReplicas``, ``status.readyReplicas``."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    replicas = spec.get("replicas")
    return (1 if replicas is None else int(replicas), int(status.get("updatedReplicas") or 0),
            int(status.get("readyReplicas") or 0))


def rollout_stuck(deployment: dict[str, Any]) -> str | None:
    """Why a Deployment's rollout stopped (its Progressing condition False with ``ProgressDeadlineExceeded``),
    None while it progresses or is complete."""
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        if (condition.get("type") == "Progressing" and condition.get("status") == "False"
                and condition.get("reason") == "ProgressDeadlineExceeded"):
            deadline = (deployment.get("spec") or {}).get("progressDeadlineSeconds", 600)
            return (f"the rollout of {deployment['metadata']['name']} made no progress for {deadline} s "
                    f"({condition.get('message', '').strip()}): its new pods never became ready, so the pods of the "
                    "previous template keep serving; see the version's state and get_logs(), then update the service")
    return None


def _pod_diagnosis(pod: dict[str, Any], events: list[dict[str, Any]], deploy: dict[str, Any], log_tail: LogTail,
                   now: datetime, capacity_note: str | None) -> Diagnosis | None:
    status = pod.get("status") or {}
    age = _seconds_since(pod["metadata"].get("creationTimestamp"), now)
    scheduled = _condition(pod, "PodScheduled")
    if scheduled and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        return _unschedulable(scheduled, age, now, capacity_note)
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (container.get("state") or {}).get("waiting") or {}
        found = _waiting(pod, container, waiting, events, age)
        if found:
            return found
    container = _container_status(pod)
    if container is None or container.get("ready"):
        return None
    terminated, previous = _termination(container)
    if terminated is None:
        return None
    name = container["name"]
    if terminated.get("exitCode") == INIT_FAILED_EXIT_CODE:
        return Diagnosis(State.FAILED, "init() of the entry script failed (the runtime exited with code "
                         f"{INIT_FAILED_EXIT_CODE}); Kubernetes restarts it, but it will fail again until the "
                         f"service is updated with a fixed score.py or model:\n"
                         f"{_log_or_events(pod, name, previous, log_tail, events)}", "init()", True)
    if terminated.get("reason") == "OOMKilled":
        return _oom(pod, container, terminated, deploy)
    probe = _probe_kill_of(events, terminated)
    if probe:
        return _probe_kill(probe, events, deploy)
    what = f"exited with code {terminated.get('exitCode')}" + (f" ({terminated['reason']})"
                                                              if terminated.get("reason") else "")
    return Diagnosis(State.UNHEALTHY, f"the scoring container {what} and was restarted "
                     f"{container.get('restartCount', 0)} time(s); Kubernetes keeps restarting it (CrashLoopBackOff "
                     f"backs off up to 5 minutes); its log:\n{_log_or_events(pod, name, previous, log_tail, events)}",
                     "container", False)


def _waiting(pod: dict[str, Any], container: dict[str, Any], waiting: dict[str, Any], events: list[dict[str, Any]],
             age: float | None) -> Diagnosis | None:
    reason = waiting.get("reason")
    if not reason or reason in _WAITING_FINE or reason == "CrashLoopBackOff":
        return None
    message = (waiting.get("message") or "").strip()
    image = _image(pod, container)
    if reason in ("ErrImagePull", "ImagePullBackOff"):
        pulls = [e for e in events if e.get("reason") == "Failed"
                 and "failed to pull" in (e.get("message") or "").lower()]
        failures = sum(_event_count(e) for e in pulls)
        detail = _latest(pulls)["message"] if pulls else message
        persisted = failures >= PULL_FAILURES or (age is not None and age >= PULL_GRACE_S)
        advice = pull_advice(image, detail)
        if not persisted:
            return Diagnosis(State.TRANSITIONING, f"pulling image {image} failed ({failures or 1} time(s) so far), "
                             f"Kubernetes retries: {advice}", "image pull", False)
        return Diagnosis(State.FAILED, f"image {image} cannot be pulled ({failures or 1} failed pulls): {advice}",
                         "image pull", True)
    if reason == "InvalidImageName":
        return Diagnosis(State.FAILED, f"image name {image!r} is invalid ({message}): check the compute target's "
                         "image_registry, then update the service", "image pull", True)
    if reason in ("CreateContainerConfigError", "CreateContainerError", "RunContainerError"):
        missing = _MISSING_OBJECT.search(message)
        fix = (f"the {'Secret' if missing.group(1).lower() == 'secret' else 'ConfigMap'} {missing.group(2)} "
               f"is missing from namespace {pod['metadata'].get('namespace', 'default')}: update the service so "
               "modelport applies it again (or restore it if it was deleted by hand)" if missing
               else "see the pod's events below")
        state = State.FAILED if age is not None and age >= CONFIG_GRACE_S else State.TRANSITIONING
        return Diagnosis(state, f"container {container['name']} cannot be created ({reason}: {message}); {fix}"
                         + ("" if missing else f":\n{events_text(events)}"), "pod configuration", False)
    return Diagnosis(State.UNHEALTHY, f"container {container['name']} is waiting ({reason}: {message}); the pod's "
                     f"events:\n{events_text(events)}", "container", False)


def _unschedulable(condition: dict[str, Any], age: float | None, now: datetime, capacity_note: str | None) -> Diagnosis:
    pending = _seconds_since(condition.get("lastTransitionTime"), now)
    pending = age if pending is None else pending
    note = f"; {capacity_note}" if capacity_note else ""
    fix = ("lower cpu_cores, memory_gb or gpu_cores, or the replica count, or add nodes (or let the cluster "
           "autoscaler add them)")
    message = (condition.get("message") or "").strip().rstrip(".")
    if pending is not None and pending >= UNSCHEDULABLE_GRACE_S:
        return Diagnosis(State.FAILED, f"couldn't be scheduled after trying for {int(pending)} s: {message}{note}; "
                         f"{fix}", "scheduling", False)
    return Diagnosis(State.TRANSITIONING, f"cannot be scheduled yet: {message}{note}; if it persists, {fix}",
                     "scheduling", False)


def _oom(pod: dict[str, Any], container: dict[str, Any], terminated: dict[str, Any],
         deploy: dict[str, Any]) -> Diagnosis:
    limits = next(((c.get("resources") or {}).get("limits") or {} for c in (pod.get("spec") or {}).get("containers")
                   or [] if c["name"] == container["name"]), {})
    applied = (f" (the container's limit: {float(parse_quantity(limits['memory'])) / GB:.3g} GB)"
               if limits.get("memory") else "")
    setting = deploy.get("memory_gb_limit")
    named = (f"memory_gb_limit is {setting} GB" if setting is not None
             else f"memory_gb_limit is not set, so memory_gb ({deploy.get('memory_gb', 0.5)} GB) is the limit")
    if _never_ready_since(pod, terminated):
        return Diagnosis(State.FAILED, f"the scoring container was killed for using more memory than its limit "
                         f"(OOMKilled) during init(), before it became ready: {named}{applied}; raise "
                         "memory_gb_limit (and memory_gb) to what the model needs, then update the service",
                         "memory", True)
    return Diagnosis(State.UNHEALTHY, f"the scoring container was killed for using more memory than its limit "
                     f"(OOMKilled) after it had served, and restarted {container.get('restartCount', 0)} time(s): "
                     f"{named}{applied}; raise memory_gb_limit, or lower replica_max_concurrent_requests if "
                     "concurrent requests use the memory", "memory", False)


def _probe_kill(probe: str, events: list[dict[str, Any]], deploy: dict[str, Any]) -> Diagnosis:
    """A kill by the startup probe (init() outran ``initial_delay_seconds``, the startup probe's budget) or by the
    liveness probe (a replica that stopped answering after init()), with the settings to raise."""
    failures = [e for e in events if e.get("reason") == "Unhealthy" and probe in (e.get("message") or "").lower()]
    last = f"; the last failure: {_latest(failures)['message'].strip()}" if failures else ""
    period, threshold = deploy.get("period_seconds", 10), deploy.get("failure_threshold", 3)
    if probe == "startup":
        delay = deploy.get("initial_delay_seconds", 310)
        return Diagnosis(State.UNHEALTHY, f"Kubernetes restarted the scoring container because init() did not finish "
                         f"within initial_delay_seconds={delay} (the startup probe's budget){last}; this is not a "
                         "crash of the script: raise initial_delay_seconds to more than init() takes (see get_logs()), "
                         "then update the service", "startup probe", False)
    return Diagnosis(State.UNHEALTHY, f"Kubernetes restarted the scoring container because it failed its liveness "
                     f"probe {threshold} times in a row (period_seconds={period}, failure_threshold={threshold}, "
                     f"timeout_seconds={deploy.get('timeout_seconds', 2)}){last}; this is not a crash of the script: "
                     "the replica stopped answering while serving (a run() that holds the server, or too much load): "
                     "raise timeout_seconds, failure_threshold or period_seconds, or add replicas",
                     "liveness probe", False)


def _failed_create(current: list[dict[str, Any]], events: list[dict[str, Any]]) -> Diagnosis | None:
    """A ReplicaSet that cannot create pods (a quota, an admission webhook, a policy), newer than every pod."""
    newest_pod = max((_time(p["metadata"].get("creationTimestamp")) or _NEVER for p in current), default=_NEVER)
    refused = [e for e in events if e.get("reason") == "FailedCreate" and _involved(e).get("kind") == "ReplicaSet"
               and (_event_time(e) or _NEVER) > newest_pod]
    if not refused:
        return None
    last = _latest(refused)
    return Diagnosis(State.FAILED, f"the cluster refuses to create the version's pods: {last.get('message', '')}; "
                     "ask the cluster's administrator about the namespace's quota or admission policy, or lower "
                     "the requests or replica count", "admission", False)


def _log_or_events(pod: dict[str, Any], container: str, previous: bool, log_tail: LogTail,
                   events: list[dict[str, Any]]) -> str:
    """The container's traceback (or its last lines), or the pod's events when it left no log."""
    try:
        log = log_tail(pod["metadata"]["name"], container, previous)
    except ModelportError:
        log = ""
    lines = log.rstrip().splitlines()
    if not lines:
        return f"(no log; the pod's events)\n{events_text(events)}"
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    tail = lines[starts[-1]:] if starts else lines
    return "\n".join(tail[-LOG_TAIL_LINES:])


def _probe_kill_of(events: list[dict[str, Any]], terminated: dict[str, Any]) -> str | None:
    """``startup`` or ``liveness`` when that probe's failure killed the run that ended in ``terminated`` (the
    kubelet's Killing event "Container scoring failed liveness probe, will be restarted" since it started)."""
    started = _time(terminated.get("startedAt"))
    for event in sorted(events, key=lambda e: _event_time(e) or _NEVER, reverse=True):
        message = (event.get("message") or "").lower()
        if event.get("reason") == "Killing" and (started is None or (_event_time(event) or started) >= started):
            probe = next((p for p in ("startup", "liveness") if f"failed {p} probe" in message), None)
            if probe:
                return probe
    return None


def _never_ready_since(pod: dict[str, Any], terminated: dict[str, Any]) -> bool:
    """Whether the run that ended in ``terminated`` never became ready: the pod has not been Ready since before
    that run started (a ready run flips the Ready condition after it starts). False when the times are missing."""
    ready = _condition(pod, "Ready")
    if ready is None or ready.get("status") == "True":
        return False
    changed, started = _time(ready.get("lastTransitionTime")), _time(terminated.get("startedAt"))
    return changed is not None and started is not None and changed <= started


def _container_status(pod: dict[str, Any]) -> dict[str, Any] | None:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return next((s for s in statuses if s.get("name") == SCORING_CONTAINER), statuses[0] if statuses else None)


def _termination(container: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """The container's current termination, else its last one, and whether that is a previous run's."""
    terminated = (container.get("state") or {}).get("terminated")
    if terminated:
        return terminated, False
    last = (container.get("lastState") or {}).get("terminated")
    return (last, True) if last else (None, False)


def _image(pod: dict[str, Any], container: dict[str, Any]) -> str:
    spec = pod.get("spec") or {}
    declared = {c["name"]: c.get("image") for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])}
    return declared.get(container["name"]) or container.get("image") or "?"


def _ready(pod: dict[str, Any]) -> bool:
    condition = _condition(pod, "Ready")
    return bool(condition and condition.get("status") == "True")


def _condition(pod: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == kind), None)


def _involved(event: dict[str, Any]) -> dict[str, Any]:
    return event.get("involvedObject") or event.get("regarding") or {}


def _latest(events: list[dict[str, Any]]) -> dict[str, Any]:
    return max(events, key=lambda e: _event_time(e) or _NEVER)


def _event_count(event: dict[str, Any]) -> int:
    return int((event.get("series") or {}).get("count") or event.get("count") or 1)


def _event_time(event: dict[str, Any]) -> datetime | None:
    for value in (event.get("lastTimestamp"), (event.get("series") or {}).get("lastObservedTime"),
                  event.get("eventTime"), event.get("firstTimestamp"),
                  (event.get("metadata") or {}).get("creationTimestamp")):
        when = _time(value)
        if when:
            return when
    return None


def _time(value: str | None) -> datetime | None:
    """An API timestamp (RFC 3339, ``Z`` or an offset, maybe with microseconds) as an aware datetime."""
    if not value:
        return None
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _seconds_since(value: str | None, now: datetime) -> float | None:
    when = _time(value)
    return None if when is None else (now - when).total_seconds()
