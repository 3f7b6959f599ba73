"""The Kubernetes objects of one replica set (a scoring Deployment and its Service) and of an endpoint's keys.

The Kubernetes backend applies these (server-side apply); ``modelport kubernetes render`` prints them. Objects are
plain dicts in the API's JSON shape, in the order they should be applied. A replica set (``<version>-<generation>``)
never changes once deployed: an update makes a new one, so its Deployment's selector and pod template are fixed
for its life, and the front end moves traffic between replica sets (azureml-fe's model, not a Deployment rollout).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import yaml

from ...reconcile.backend import ReplicaSetSpec
from ...runtime.layout import MODELS_FOLDER
from ...spec.compute import KubernetesTarget
from . import objects
from .images import APP_ROOT  # where the app (source + azureml-models) lies, as in Azure ML

SCORING_CONTAINER = "scoring"
SCORING_SERVICE_PORT = 80
RUN_AS_USER = 1000
GPU_RESOURCE = "nvidia.com/gpu"  # the NVIDIA device plugin's resource (what AKS GPU node pools advertise)
DRAIN_MARGIN_S = 5  # past the longest request, for the front end to stop routing to a terminating replica


@dataclass(frozen=True)
class ScoringWorkload:
    """One replica set to run on a cluster.

    ``replica_set``: ``<version>-<generation>``; ``image``: the app image (built by ``images``/``builders``);
    ``replicas``: a fixed count, or None when the autoscaler owns the count (``spec.replicas`` is then left out,
    so server-side apply leaves the field to the controller, which scales through the scale subresource);
    ``deploy``: the stored DeploymentConfig dict (``cpu_cores`` in cores, ``memory_gb`` in GB, probe settings
    in seconds, ``scoring_timeout_ms`` in ms, ...); ``env``: the runtime's environment variables (see
    ``runtime_env``); ``init_containers``/``volumes``/``mounts`` (the scoring container's volumeMounts): where an
    init container that fetches the app from an artifact store plugs in, instead of the image carrying it.
    """

    workspace: str
    target: KubernetesTarget
    endpoint: str
    version: str
    replica_set: str
    image: str
    replicas: int | None
    deploy: dict[str, Any]
    env: dict[str, str]
    init_containers: tuple[dict[str, Any], ...] = ()
    volumes: tuple[dict[str, Any], ...] = ()
    mounts: tuple[dict[str, Any], ...] = ()

    @property
    def name(self) -> str:
        """The Deployment's and Service's name (a DNS label, at most 63 characters)."""
        return objects.replica_set_name(self.endpoint, self.replica_set)

    @property
    def labels(self) -> dict[str, str]:
        """The version labels: on the Deployment, its selector, its pods and the Service's selector."""
        return objects.version_labels(self.workspace, self.target.name, self.endpoint, self.version, self.replica_set)


def runtime_env(spec: ReplicaSetSpec) -> dict[str, str]:
    """A replica set's environment variables in a scoring container: the reconciler's ``spec.env`` (environment
    variables, service and runtime settings) plus what the local backend gives its replicas as flags and working
    folder: the entry script and source folder inside ``APP_ROOT`` and, as Azure ML set it, ``AZUREML_MODEL_DIR``
    (``azureml-models/<name>/<version>`` for one model, ``azureml-models`` for several). The app image sets the same
    (``images.app_context``); the pod repeats them so an app that an init container delivers onto an environment
    image runs alike."""
    env = dict(spec.env)
    if spec.source_directory:
        env["AZUREML_SOURCE_DIRECTORY"] = spec.source_directory
    env["AZUREML_ENTRY_SCRIPT"] = (f"{spec.source_directory}/{spec.entry_script}" if spec.source_directory
                                   else spec.entry_script)
    if spec.models:
        models = f"{APP_ROOT}/{MODELS_FOLDER}"
        only = spec.models[0]
        env["AZUREML_MODEL_DIR"] = f"{models}/{only['name']}/{only['version']}" if len(spec.models) == 1 else models
    return env


def scoring_objects(w: ScoringWorkload) -> list[dict[str, Any]]:
    """The replica set's Deployment and its ClusterIP Service (port 80 to the runtime's ``SCORING_PORT``), both
    named ``w.name``."""
    return [_deployment(w), _service(w)]


class _Dumper(yaml.SafeDumper):
    """Writes a value shared by several places (one labels dict as metadata, selector and template) in full each
    time, never as a YAML alias, which kubectl reads but a person (or a diff) does not; see also ``_text``."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    """A string of several lines (a ConfigMap's file, a script) as a literal block, as it reads in its file."""
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_Dumper.add_representer(str, _text)


def to_yaml(items: list[dict[str, Any]]) -> str:
    """``items`` as one multi-document YAML text (``---`` before each object), keys in the order rendered."""
    return yaml.dump_all(items, Dumper=_Dumper, sort_keys=False, default_flow_style=False, explicit_start=True)


def cpu_quantity(cores: float) -> str:
    """Cores as a Kubernetes CPU quantity: whole cores as ``"2"``, else millicores (``0.1`` -> ``"100m"``)."""
    millicores = round(cores * 1000)
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def memory_quantity(gb: float) -> str:
    """GB (read as GiB) as a Kubernetes memory quantity in the largest binary unit that keeps it to the KiB:
    ``1`` -> ``"1Gi"``, ``0.5`` -> ``"512Mi"``, ``0.1`` -> ``"104858Ki"``."""
    kibibytes = round(gb * 1024 * 1024)
    for unit, size in (("Gi", 1024 * 1024), ("Mi", 1024)):
        if kibibytes % size == 0:
            return f"{kibibytes // size}{unit}"
    return f"{kibibytes}Ki"


def _metadata(name: str, target: KubernetesTarget, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": target.namespace, "labels": dict(labels)}


def _deployment(w: ScoringWorkload) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if w.replicas is not None:
        spec["replicas"] = w.replicas
    spec.update({
        "selector": {"matchLabels": w.labels},  # the version labels: all fixed for a replica set's life
        # a new pod is ready before an old one goes, so a one-replica service serves through an update
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": {"metadata": {"labels": w.labels}, "spec": _pod_spec(w)},
    })
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _metadata(w.name, w.target, w.labels),
            "spec": spec}


def _pod_spec(w: ScoringWorkload) -> dict[str, Any]:
    deploy = w.deploy
    longest_request_s = (deploy["scoring_timeout_ms"] + deploy["max_request_wait_time"]) / 1000
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,  # scoring code gets no credentials to the cluster's API
        "enableServiceLinks": False,  # no <SERVICE>_PORT variables of every Service in the namespace
        "securityContext": {"runAsNonRoot": True, "runAsUser": RUN_AS_USER, "runAsGroup": RUN_AS_USER,
                            "fsGroup": RUN_AS_USER, "seccompProfile": {"type": "RuntimeDefault"}},
        # a replica told to stop finishes the requests it holds (each at most its wait plus scoring_timeout_ms)
        "terminationGracePeriodSeconds": math.ceil(longest_request_s) + DRAIN_MARGIN_S,
    }
    if w.init_containers:
        pod["initContainers"] = [dict(container) for container in w.init_containers]
    pod["containers"] = [_scoring_container(w)]
    pod["volumes"] = [{"name": "tmp", "emptyDir": {}}, *(dict(volume) for volume in w.volumes)]
    return pod


def _scoring_container(w: ScoringWorkload) -> dict[str, Any]:
    env = {**w.env, "AML_APP_ROOT": APP_ROOT}
    return {
        "name": SCORING_CONTAINER,
        "image": w.image,  # its default command runs the runtime on SCORING_PORT
        "imagePullPolicy": "IfNotPresent",  # app images are tagged by content: a tag never changes
        "ports": [{"name": "http", "containerPort": objects.SCORING_PORT, "protocol": "TCP"}],
        "env": [{"name": name, "value": value} for name, value in env.items()],
        "resources": _resources(w.deploy),
        **_probes(w.deploy),
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *(dict(mount) for mount in w.mounts)],
    }


def _resources(deploy: dict[str, Any]) -> dict[str, Any]:
    """Requests from ``cpu_cores``/``memory_gb``; limits from ``cpu_cores_limit``/``memory_gb_limit``. Without a
    memory limit the request is the limit: a replica over it is OOM-killed and reported against memory_gb, rather
    than evicted later from a node that ran short. Without a CPU limit a replica may use idle cores."""
    requests = {"cpu": cpu_quantity(deploy["cpu_cores"]), "memory": memory_quantity(deploy["memory_gb"])}
    limits = {"memory": memory_quantity(deploy["memory_gb_limit"] or deploy["memory_gb"])}
    if deploy["cpu_cores_limit"]:
        limits["cpu"] = cpu_quantity(deploy["cpu_cores_limit"])
    gpus = deploy["gpu_cores"]
    if gpus > 0:  # extended resources: the request must equal the limit
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(gpus)
    return {"requests": requests, "limits": limits}


def _probes(deploy: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Azure ML's probe settings (``period_seconds``, ``timeout_seconds``, ``success_threshold``,
    ``failure_threshold``) on the runtime's ``/-/ready`` (readiness) and ``/-/live`` (liveness; Kubernetes needs
    its success threshold to be 1). ``initial_delay_seconds`` becomes a startup probe's budget on ``/-/ready``:
    liveness starts only once ``init()`` finished, so a slow ``init()`` is never killed as dead before its time."""
    period = deploy["period_seconds"]
    timing = {"periodSeconds": period, "timeoutSeconds": deploy["timeout_seconds"]}
    failures = deploy["failure_threshold"]
    startup_failures = max(1, math.ceil(deploy["initial_delay_seconds"] / period))
    return {
        "startupProbe": {"httpGet": _get("/-/ready"), **timing, "successThreshold": 1,
                         "failureThreshold": startup_failures},
        "readinessProbe": {"httpGet": _get("/-/ready"), **timing,
                           "successThreshold": deploy["success_threshold"], "failureThreshold": failures},
        "livenessProbe": {"httpGet": _get("/-/live"), **timing, "successThreshold": 1, "failureThreshold": failures},
    }


def _get(path: str) -> dict[str, Any]:
    return {"path": path, "port": objects.SCORING_PORT, "scheme": "HTTP"}


def _service(w: ScoringWorkload) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": _metadata(w.name, w.target, w.labels),
            "spec": {"type": "ClusterIP", "selector": w.labels,
                     "ports": [{"name": "http", "port": SCORING_SERVICE_PORT, "targetPort": objects.SCORING_PORT,
                                "protocol": "TCP"}]}}
