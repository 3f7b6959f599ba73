"""Pods, events and Deployments (dicts shaped as the Kubernetes API returns them) as replica states and the
diagnosis a user reads: what went wrong, in which layer, and what to change."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from modelport.backends.kubernetes.status import (
    PULL_GRACE_S,
    UNSCHEDULABLE_GRACE_S,
    deployment_progress,
    diagnose,
    events_text,
    replica_states,
    rollout_stuck,
)
from modelport.errors import ModelportError
from modelport.spec.state import State

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
IMAGE = "registry.example.com:5000/modelport/app-3f2a9c:1"
DEPLOY = {"cpu_cores": 0.5, "memory_gb": 0.5, "memory_gb_limit": 1.0, "period_seconds": 10, "failure_threshold": 3,
          "timeout_seconds": 2, "initial_delay_seconds": 310}
TRACEBACK = """2025-03-01 12:00:11 INFO modelport.runtime: loading score.py
Traceback (most recent call last):
  File "/var/azureml-app/score.py", line 9, in init
    model = joblib.load(path)
FileNotFoundError: [Errno 2] No such file or directory: '/var/azureml-app/azureml-models/m/1/model.pkl'
"""


def ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(name: str = "sklearn-v1-1-7d9c5b6f4-x2k8q", *, created: float = 0, phase: str = "Running",
        ip: str | None = "10.244.1.7", ready: bool = False, ready_changed: float = 2,
        state: dict[str, Any] | None = None, last_state: dict[str, Any] | None = None, restarts: int = 0,
        unschedulable: str | None = None, scheduled_changed: float = 0, **metadata: Any) -> dict[str, Any]:
    """A scoring pod: one ``scoring`` container (request 0.5 cores / 512Mi, limit 1Gi)."""
    conditions = [{"type": "PodScheduled", "status": "False" if unschedulable else "True",
                   "lastTransitionTime": ts(scheduled_changed)}]
    if unschedulable:
        conditions[0].update(reason="Unschedulable", message=unschedulable)
        phase, ip = "Pending", None
    else:
        conditions += [{"type": "Initialized", "status": "True", "lastTransitionTime": ts(1)},
                       {"type": "ContainersReady", "status": str(ready), "lastTransitionTime": ts(ready_changed)},
                       {"type": "Ready", "status": str(ready), "lastTransitionTime": ts(ready_changed)}]
    status: dict[str, Any] = {"phase": phase, "conditions": conditions, "hostIP": "10.224.0.4", "startTime": ts(1)}
    if ip:
        status["podIP"] = ip
    if not unschedulable:
        status["containerStatuses"] = [{
            "name": "scoring", "image": IMAGE, "imageID": "", "ready": ready, "restartCount": restarts,
            "started": state is None or "running" in state,
            "state": state or {"running": {"startedAt": ts(5)}}, "lastState": last_state or {}}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "models", "creationTimestamp": ts(created),
                         "labels": {"modelport.io/endpoint": "sklearn"}, **metadata},
            "spec": {"nodeName": None if unschedulable else "aks-nodepool1-0",
                     "containers": [{"name": "scoring", "image": IMAGE,
                                     "resources": {"requests": {"cpu": "500m", "memory": "512Mi"},
                                                   "limits": {"memory": "1Gi"}}}]},
            "status": status}


def event(pod_name: str, reason: str, message: str, at: float, count: int = 1, kind: str = "Pod",
          type_: str = "Warning") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{pod_name}.17f{int(at)}", "namespace": "models"},
            "involvedObject": {"kind": kind, "name": pod_name, "namespace": "models",
                               "fieldPath": "spec.containers{scoring}"},
            "reason": reason, "message": message, "type": type_, "count": count,
            "firstTimestamp": ts(at), "lastTimestamp": ts(at), "source": {"component": "kubelet"}}


def crashed(exit_code: int, reason: str = "Error", started: float = 10, finished: float = 20) -> dict[str, Any]:
    return {"terminated": {"exitCode": exit_code, "reason": reason, "startedAt": ts(started),
                           "finishedAt": ts(finished)}}


BACKOFF = {"waiting": {"reason": "CrashLoopBackOff",
                       "message": "back-off 40s restarting failed container=scoring pod=sklearn-v1-1-7d9c5b6f4-x2k8q"}}


class Logs:
    """log_tail as the backend gives it: the text a pod's container (or its previous run) logged."""

    def __init__(self, text: str = "", error: bool = False):
        self.text, self.error, self.calls = text, error, []

    def __call__(self, pod_name: str, container: str, previous: bool) -> str:
        self.calls.append((pod_name, container, previous))
        if self.error:
            raise ModelportError('previous terminated container "scoring" in pod not found')
        return self.text


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- replica states ----------------------------------------------------------------------------------------------

def test_replica_states_give_address_readiness_exit_code_and_restarts_in_creation_order():
    pods = [pod("b-second", created=5, ready=True, ip="10.244.1.8"),
            pod("a-first", created=1, state=BACKOFF, last_state=crashed(3), restarts=4, ip="10.244.1.9"),
            pod("c-pending", created=9, unschedulable="0/3 nodes are available: 3 Insufficient cpu."),
            pod("d-terminating", created=0, ready=True, deletionTimestamp=ts(30)),
            {**pod("e-evicted", created=0), "status": {"phase": "Failed", "reason": "Evicted"}}]
    states = replica_states(pods, 5001)
    assert [(s.index, s.address, s.ready, s.exit_code, s.restarts) for s in states] == [
        (0, ("10.244.1.9", 5001), False, 3, 4),
        (1, ("10.244.1.8", 5001), True, None, 0),
        (2, None, False, None, 0)]
    assert states[0].init_failed and all(s.pid is None and s.log is None for s in states)


# --- nothing wrong -------------------------------------------------------------------------------------------------

def test_ready_or_starting_pods_need_no_diagnosis():
    starting = pod("starting", phase="Pending", ip=None,
                   state={"waiting": {"reason": "ContainerCreating"}})
    served_once = pod("restarted-long-ago", ready=True, restarts=1, last_state=crashed(137, "OOMKilled"))
    assert diagnose([pod("ok", ready=True), starting, served_once], [], DEPLOY, Logs(), now=at(60)) is None


# --- image pulls -----------------------------------------------------------------------------------------------------

def pull_failure(message: str, failures: int, age: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    name = "sklearn-v1-1-7d9c5b6f4-x2k8q"
    waiting = {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{IMAGE}"'}}
    events = [event(name, "Pulling", f'Pulling image "{IMAGE}"', at=2, count=failures, type_="Normal"),
              event(name, "Failed", f'Failed to pull image "{IMAGE}": {message}', at=age - 1, count=failures),
              event(name, "Failed", "Error: ErrImagePull", at=age - 1, count=failures),
              event(name, "BackOff", f'Back-off pulling image "{IMAGE}"', at=age, count=failures)]
    return [pod(name, phase="Pending", ip=None, state=waiting)], events


UNAUTHORIZED = (f'rpc error: code = Unknown desc = failed to pull and unpack image "{IMAGE}": failed to resolve '
                f'reference "{IMAGE}": failed to authorize: failed to fetch anonymous token: unexpected status: '
                "401 Unauthorized")


def test_an_image_pull_that_persists_is_failed_naming_the_image_and_an_auth_error():
    pods, events = pull_failure(UNAUTHORIZED, failures=3, age=70)
    found = diagnose(pods, events, DEPLOY, Logs(), now=at(70))
    assert found is not None and found.state is State.FAILED and found.permanent and found.layer == "image pull"
    assert IMAGE in found.reason and "registry.example.com:5000" in found.reason and "3 failed pulls" in found.reason
    assert "authentication" in found.reason and "imagePullSecret" in found.reason and "401 Unauthorized" in found.reason


def test_a_first_pull_failure_is_still_transitioning():
    pods, events = pull_failure(UNAUTHORIZED, failures=1, age=12)
    found = diagnose(pods, events, DEPLOY, Logs(), now=at(12))
    assert found is not None and found.state is State.TRANSITIONING and not found.permanent
    # ... and Failed once it has lasted the grace period, however few pulls the back-off allowed
    found = diagnose(pods, events, DEPLOY, Logs(), now=at(PULL_GRACE_S + 1))
    assert found is not None and found.state is State.FAILED


@pytest.mark.parametrize(("message", "kind"), [
    (f'rpc error: code = NotFound desc = failed to pull and unpack image "{IMAGE}": failed to resolve reference '
     f'"{IMAGE}": {IMAGE}: not found', "not found"),
    (f'rpc error: code = Unknown desc = failed to pull and unpack image "{IMAGE}": failed to resolve reference '
     f'"{IMAGE}": failed to do request: Head "https://registry.example.com:5000/v2/modelport/app-3f2a9c/manifests/1": '
     "dial tcp 10.0.0.9:5000: i/o timeout", "network"),
    ("Error response from daemon: manifest for modelport/app-3f2a9c:1 not found: manifest unknown: manifest unknown",
     "not found"),
    ("x509: certificate signed by unknown authority", "TLS certificate"),
    ("Error response from daemon: pull access denied for modelport/app-3f2a9c, repository does not exist or may "
     "require 'docker login': denied: requested access to the resource is denied",
     "does not exist or needs credentials"),
])
def test_the_kind_of_pull_error_is_named(message: str, kind: str):
    pods, events = pull_failure(message, failures=4, age=90)
    found = diagnose(pods, events, DEPLOY, Logs(), now=at(90))
    assert found is not None and found.state is State.FAILED and kind in found.reason


# --- init() failures, crashes, memory, probes ------------------------------------------------------------------------

def test_init_failure_is_failed_with_the_previous_containers_traceback():
    logs = Logs(TRACEBACK)
    pods = [pod(state=BACKOFF, last_state=crashed(3), restarts=2)]
    found = diagnose(pods, [], DEPLOY, logs, now=at(60))
    assert found is not None and found.state is State.FAILED and found.permanent and found.layer == "init()"
    assert "init() of the entry script failed" in found.reason
    assert "Traceback (most recent call last)" in found.reason and "FileNotFoundError" in found.reason
    assert "loading score.py" not in found.reason  # only the traceback, not the lines before it
    assert logs.calls == [("sklearn-v1-1-7d9c5b6f4-x2k8q", "scoring", True)]


def test_a_crash_without_a_log_quotes_the_pods_events():
    name = "sklearn-v1-1-7d9c5b6f4-x2k8q"
    events = [event(name, "BackOff", "Back-off restarting failed container scoring in pod " + name, at=50, count=5)]
    found = diagnose([pod(name, state=BACKOFF, last_state=crashed(1), restarts=5)], events, DEPLOY,
                     Logs(error=True), now=at(60))
    assert found is not None and found.state is State.UNHEALTHY and not found.permanent
    assert "exited with code 1" in found.reason and "restarted 5 time(s)" in found.reason
    assert "Back-off restarting failed container scoring" in found.reason and "(x5)" in found.reason


def test_oom_during_init_is_failed_naming_memory_gb_limit():
    # the Ready condition last changed (to False) at 2 s, before the killed run started at 10 s: it never served
    found = diagnose([pod(state=BACKOFF, last_state=crashed(137, "OOMKilled"), restarts=1)], [], DEPLOY, Logs(),
                     now=at(60))
    assert found is not None and found.state is State.FAILED and found.layer == "memory"
    assert "OOMKilled" in found.reason and "during init()" in found.reason
    assert "memory_gb_limit is 1.0 GB" in found.reason and "limit: 1 GB" in found.reason


def test_oom_after_serving_is_unhealthy():
    served = pod(state={"running": {"startedAt": ts(500)}}, last_state=crashed(137, "OOMKilled", 10, 480),
                 restarts=1, ready_changed=480)
    found = diagnose([served], [], {**DEPLOY, "memory_gb_limit": None}, Logs(), now=at(510))
    assert found is not None and found.state is State.UNHEALTHY and not found.permanent
    assert "memory_gb_limit is not set, so memory_gb (0.5 GB) is the limit" in found.reason


def liveness_events(name: str, at_s: float) -> list[dict[str, Any]]:
    return [event(name, "Unhealthy", 'Liveness probe failed: Get "http://10.244.1.7:5001/-/live": context deadline '
                  "exceeded (Client.Timeout exceeded while awaiting headers)", at=at_s - 1, count=3),
            event(name, "Killing", "Container scoring failed liveness probe, will be restarted", at=at_s,
                  type_="Normal")]


def test_a_liveness_kill_after_serving_names_the_probe_settings_not_a_crash():
    name = "sklearn-v1-1-7d9c5b6f4-x2k8q"
    killed = pod(name, state={"running": {"startedAt": ts(900)}}, last_state=crashed(137, "Error", 10, 890),
                 restarts=1, ready_changed=860)
    found = diagnose([killed], liveness_events(name, 890), DEPLOY, Logs(TRACEBACK), now=at(905))
    assert found is not None and found.state is State.UNHEALTHY and found.layer == "liveness probe"
    assert "failed its liveness probe 3 times in a row" in found.reason and "not a crash" in found.reason
    assert "period_seconds=10, failure_threshold=3, timeout_seconds=2" in found.reason
    assert "raise timeout_seconds, failure_threshold or period_seconds" in found.reason
    assert "context deadline exceeded" in found.reason


def test_a_startup_probe_kill_says_init_outran_initial_delay_seconds():
    name = "sklearn-v1-1-7d9c5b6f4-x2k8q"
    events = [event(name, "Unhealthy", "Startup probe failed: HTTP probe failed with statuscode: 503", at=318,
                    count=31),
              event(name, "Killing", "Container scoring failed startup probe, will be restarted", at=320,
                    type_="Normal")]
    killed = pod(name, state=BACKOFF, last_state=crashed(137, "Error", 10, 321), restarts=1)
    found = diagnose([killed], events, DEPLOY, Logs(), now=at(330))
    assert found is not None and found.state is State.UNHEALTHY and found.layer == "startup probe"
    assert "init() did not finish within initial_delay_seconds=310" in found.reason
    assert "statuscode: 503" in found.reason and "not a crash" in found.reason


def test_an_old_liveness_kill_does_not_explain_a_later_crash():
    name = "sklearn-v1-1-7d9c5b6f4-x2k8q"
    later = pod(name, state=BACKOFF, last_state=crashed(1, "Error", 1000, 1010), restarts=2, ready_changed=900)
    found = diagnose([later], liveness_events(name, 890), DEPLOY, Logs("ValueError: bad input"), now=at(1020))
    assert found is not None and found.layer == "container" and "exited with code 1" in found.reason


# --- scheduling, configuration, admission ----------------------------------------------------------------------------

def test_unschedulable_quotes_the_scheduler_and_the_capacity_and_fails_after_five_minutes():
    message = "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available."
    pending = [pod(unschedulable=message, scheduled_changed=0)]
    note = "each replica requests 8 cores, 2 GB (sidecars included); 0 of 1 fit now"
    found = diagnose(pending, [], DEPLOY, Logs(), now=at(30), capacity_note=note)
    assert found is not None and found.state is State.TRANSITIONING and found.layer == "scheduling"
    assert message.rstrip(".") in found.reason and note in found.reason
    found = diagnose(pending, [], DEPLOY, Logs(), now=at(UNSCHEDULABLE_GRACE_S + 5))
    assert found is not None and found.state is State.FAILED and "couldn't be scheduled" in found.reason


def test_a_missing_secret_is_named():
    waiting = {"waiting": {"reason": "CreateContainerConfigError", "message": 'secret "sklearn-keys" not found'}}
    found = diagnose([pod(phase="Pending", ip=None, state=waiting)], [], DEPLOY, Logs(), now=at(90))
    assert found is not None and found.state is State.FAILED and found.layer == "pod configuration"
    assert "Secret sklearn-keys is missing from namespace models" in found.reason


def test_a_replica_set_the_cluster_refuses_to_populate_says_why():
    quota = ('pods "sklearn-v1-1-7d9c5b6f4-abcde" is forbidden: exceeded quota: compute, requested: '
             "requests.cpu=500m, used: requests.cpu=4, limited: requests.cpu=4")
    events = [event("sklearn-v1-1-7d9c5b6f4", "FailedCreate", f"Error creating: {quota}", at=3, kind="ReplicaSet")]
    found = diagnose([], events, DEPLOY, Logs(), now=at(10))
    assert found is not None and found.layer == "admission" and "exceeded quota" in found.reason


def test_the_worst_pod_is_reported_and_how_many_share_it():
    pods = [pod("a", created=1, ready=True), pod("b", created=2, state=BACKOFF, last_state=crashed(1), restarts=3),
            pod("c", created=3, state=BACKOFF, last_state=crashed(3), restarts=3),
            pod("d", created=4, state=BACKOFF, last_state=crashed(3), restarts=3)]
    found = diagnose(pods, [], DEPLOY, Logs(TRACEBACK), now=at(60))
    assert found is not None and found.state is State.FAILED
    assert found.reason.startswith("pod c and 1 more like it: init() of the entry script failed")


# --- events and rollouts ---------------------------------------------------------------------------------------------

def test_events_text_reads_like_kubectl_get_events():
    events = [event("p", "BackOff", "Back-off restarting failed container", at=30, count=4),
              event("p", "Scheduled", "Successfully assigned models/p to aks-nodepool1-0", at=0, type_="Normal")]
    assert events_text(events).splitlines() == [
        "2025-03-01T12:00:00Z Normal Scheduled pod/p: Successfully assigned models/p to aks-nodepool1-0",
        "2025-03-01T12:00:30Z Warning BackOff pod/p: Back-off restarting failed container (x4)"]


def test_deployment_progress_and_a_stuck_rollout():
    deployment = {"metadata": {"name": "sklearn-v1-1"}, "spec": {"replicas": 3, "progressDeadlineSeconds": 600},
                  "status": {"replicas": 4, "updatedReplicas": 1, "readyReplicas": 3, "conditions": [
                      {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                      {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                       "message": 'ReplicaSet "sklearn-v1-1-5c9f" has timed out progressing.'}]}}
    assert deployment_progress(deployment) == (3, 1, 3)
    stuck = rollout_stuck(deployment)
    assert stuck is not None and "has timed out progressing" in stuck and "keep serving" in stuck
    progressing = {**deployment, "status": {"conditions": [
        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}}
    assert rollout_stuck(progressing) is None and deployment_progress({"spec": {}}) == (1, 0, 0)
