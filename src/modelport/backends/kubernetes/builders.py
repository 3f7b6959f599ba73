"""Image builders: what turns a build context (``images``) into an image where a cluster can pull it.

Called by ``image_builds`` (background builds) with one of these, chosen by ``builder_for`` from the compute
target's ``image_builder``:

- ``CliBuilder("podman")`` / ``CliBuilder("docker")``: the container engine on the control plane's machine.
  Builds run with ``--network=none`` (the contexts carry their packages, see ``images``); images stay in the
  engine's store (``localhost/...`` names) or are pushed to the target's registry. Registry settings (insecure
  registries, mirrors, credentials) are the engine's own: ``registries.conf``/``auth.json`` for podman,
  ``daemon.json``/``docker login`` for docker.
- ``KanikoBuilder``: a Job in the cluster running the kaniko executor, for a control plane with no container
  engine. The context travels as a gzipped tar in a ConfigMap (``binaryData``) mounted into the Job, so it must
  stay under ``KANIKO_CONTEXT_LIMIT`` (a ConfigMap holds at most 1 MiB): kaniko builds get the pip-in-build
  recipe (a small context; pip and the package index must be reachable from the cluster), and an app whose
  source and models are bigger is refused with the way out. Kaniko pushes as it builds, so a registry is
  required; its credentials are a ``kubernetes.io/dockerconfigjson`` Secret the user names.

Before any build ``exists`` is asked (Azure ML's image cache): the local store for a ``localhost/`` name, the
registry for any other.
"""

from __future__ import annotations

import base64
import io
import os
import re
import subprocess
import tarfile
import time
from collections import deque
from pathlib import Path
from typing import IO, Any, Protocol

import httpx

from ...errors import InvalidInput, ModelportError
from ...spec.compute import KubernetesTarget
from . import objects

LOG_TAIL_LINES = 20
BASE_IMAGE_VARIABLE = "MODELPORT_BASE_IMAGE"  # the environment images' base image (images.base_image)
_PULL_FAILED = re.compile(r"pull|initializing source|manifest unknown|no such host|dial tcp|unauthorized",
                          re.IGNORECASE)
KANIKO_IMAGE = os.environ.get("MODELPORT_KANIKO_IMAGE", "gcr.io/kaniko-project/executor:v1.23.2")
KANIKO_CONTEXT_LIMIT = 900 * 1024  # bytes of gzipped context; a ConfigMap (with its metadata) holds 1 MiB
KANIKO_TIMEOUT_S = 3600.0
KANIKO_POLL_S = 2.0
KANIKO_TTL_S = 600  # a finished build Job (and its pod, with the log) is kept this long by the cluster
BUILD = "image-build"  # COMPONENT of a build Job and its context ConfigMap
REGISTRY_TIMEOUT_S = 10.0
_MANIFESTS = ", ".join(("application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
                        "application/vnd.docker.distribution.manifest.list.v2+json",
                        "application/vnd.docker.distribution.manifest.v2+json"))


class ImageBuildFailed(ModelportError):
    """Building or pushing an image failed. The message names the image and what failed, and ends with the
    build log's last lines; ``image`` and ``log_tail`` keep them apart."""

    def __init__(self, image: str, what: str, log_tail: str = ""):
        super().__init__(f"{what} for image {image}; fix the cause shown in the build log's last lines, then update "
                         "the service" + (f"\n{log_tail}" if log_tail else ""))
        self.image = image
        self.log_tail = log_tail


class Builder(Protocol):
    """Builds images from ``images`` build contexts. ``installs_on_host``: the context may carry packages installed
    on this machine (any size); False: it must be small, and installs its packages inside the build."""

    installs_on_host: bool

    def exists(self, image: str) -> bool:
        """Whether ``image`` is already where pods get it from (the local store, or its registry)."""

    def build(self, context: Path, image: str, log: IO[str]) -> None:
        """Build ``context`` (a folder with a ``Containerfile``) as ``image``, writing the output to ``log``.
        Raises ImageBuildFailed with the log's last lines."""

    def push(self, image: str, log: IO[str]) -> None:
        """Push a built ``image`` to its registry. Raises ImageBuildFailed with the log's last lines."""


class CliBuilder:
    """A container engine's command line: ``executable`` is ``podman`` or ``docker`` (a path or a name on PATH).
    ``env``: extra environment variables for every command (e.g. ``CONTAINERS_CONF``); the rest is inherited."""

    installs_on_host = True

    def __init__(self, executable: str = "podman", env: dict[str, str] | None = None):
        self.executable = executable
        self.env = {**os.environ, **(env or {})}
        self.podman = Path(executable).name.startswith("podman")

    def exists(self, image: str) -> bool:
        """The engine's store for a ``localhost/`` name; for another, the registry (``skopeo inspect`` beside podman,
        which shares podman's registry configuration and credentials; ``docker manifest inspect`` for docker)."""
        if _registry_host(image) is None:
            command = [self.executable, "image", "inspect", "--format", "{{.Id}}", image]
        elif self.podman:  # skopeo 1.9 does not read CONTAINERS_REGISTRIES_CONF, which podman does: pass it on
            conf = self.env.get("CONTAINERS_REGISTRIES_CONF")
            command = ["skopeo", *(["--registries-conf", conf] if conf else []), "inspect", "--raw",
                       f"docker://{image}"]
        else:
            command = [self.executable, "manifest", "inspect", image]
        try:
            return subprocess.run(command, capture_output=True, env=self.env, timeout=120).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def build(self, context: Path, image: str, log: IO[str]) -> None:
        try:
            self._run([self.executable, "build", "--network=none", "--file", str(context / "Containerfile"),
                       "--tag", image, str(context)], image, "the image build failed", log)
        except ImageBuildFailed as failed:
            base = _base_image(context) if failed.log_tail else None  # no log: the engine did not even start
            if base and base in failed.log_tail and _PULL_FAILED.search(failed.log_tail):
                raise ImageBuildFailed(image, f"the base image {base} could not be pulled: make it pullable by the "
                                       f"builder, or set {BASE_IMAGE_VARIABLE} to an image the builder has (then "
                                       "restart the control plane: modelport server stop)", failed.log_tail) from None
            raise

    def push(self, image: str, log: IO[str]) -> None:
        self._run([self.executable, "push", image], image, "pushing the image failed", log)

    def _run(self, command: list[str], image: str, failure: str, log: IO[str]) -> None:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        try:
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                       env=self.env, stdin=subprocess.DEVNULL)
        except OSError as error:
            raise ImageBuildFailed(image, f"{self.executable} could not be started ({error.strerror}); install it "
                                   "or choose another image_builder for the compute target") from None
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            tail.append(line.rstrip("\n"))
        log.flush()
        if process.wait() != 0:
            log.write(f"(exit status {process.returncode})\n")
            log.flush()
            raise ImageBuildFailed(image, failure, "\n".join(tail))


class KanikoBuilder:
    """Builds in the cluster: a Job running ``kaniko_image`` with the context from a ConfigMap, labelled with the
    target's labels (``objects.target_labels``) and ``COMPONENT=image-build``, named after the image's tag (a
    build that is already running, e.g. started before a control plane restart, is waited for, not started twice).

    ``cluster``: a ``cluster.Cluster`` (needs create/get/delete of Jobs and ConfigMaps, list Pods, get pods/log);
    ``labels``: the target's labels; ``registry_secret``: a ``kubernetes.io/dockerconfigjson`` Secret in the
    namespace with credentials for the registry (None: anonymous pushes); ``insecure_registry``: the registry
    speaks plain HTTP (kaniko's ``--insecure``; lookups use http). ``timeout_s``: how long a build may take,
    ``poll_s``: how often the Job is read (seconds).
    """

    installs_on_host = False

    def __init__(self, cluster: Any, labels: dict[str, str], registry_secret: str | None = None,
                 insecure_registry: bool = False, kaniko_image: str = KANIKO_IMAGE,
                 timeout_s: float = KANIKO_TIMEOUT_S, poll_s: float = KANIKO_POLL_S):
        self.cluster = cluster
        self.labels = {**labels, objects.COMPONENT: BUILD}
        self.registry_secret = registry_secret
        self.insecure_registry = insecure_registry
        self.kaniko_image = kaniko_image
        self.timeout_s = timeout_s
        self.poll_s = poll_s

    def exists(self, image: str) -> bool:
        """Whether the registry has ``image`` (the registry API, anonymously or with an anonymous token)."""
        return registry_has(image, insecure=self.insecure_registry)

    def build(self, context: Path, image: str, log: IO[str]) -> None:
        """Run the build Job and wait (bounded by ``timeout_s``) until it succeeds or fails; its pod's log is
        copied to ``log``. The Job and its ConfigMap are deleted afterwards."""
        if _registry_host(image) is None:
            raise InvalidInput(f"kaniko pushes what it builds, but image {image} names no registry; set the compute "
                               "target's image_registry")
        archive = _tarball(context)
        if len(archive) > KANIKO_CONTEXT_LIMIT:
            raise ImageBuildFailed(image, f"the build context is {len(archive) / 2**20:.1f} MiB gzipped, over the "
                                   f"{KANIKO_CONTEXT_LIMIT // 1024} KiB a ConfigMap carries to a kaniko Job; build "
                                   "with podman or docker (image_builder) for an app this big")
        name = "modelport-build-" + _tag(image)[:40].lower()
        log.write(f"kaniko Job {name} builds {image}\n")
        log.flush()
        output = ""
        try:
            if self.cluster.get("Job", name) is None:
                self.cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": name, "labels": self.labels},
                                    "binaryData": {"context.tar.gz": base64.b64encode(archive).decode()}})
                self.cluster.apply(self.job(name, image))
            succeeded = self._wait(name, image)
            output = self._pod_log(name)
            log.write(output)
            log.flush()
        finally:
            self.cluster.delete("Job", name)
            self.cluster.delete("ConfigMap", name)
        if not succeeded:
            raise ImageBuildFailed(image, f"the kaniko build Job {name} failed",
                                   "\n".join(output.splitlines()[-LOG_TAIL_LINES:]))

    def push(self, image: str, log: IO[str]) -> None:
        """Nothing: kaniko pushed the image when it built it."""

    def job(self, name: str, image: str) -> dict[str, Any]:
        """The build Job's manifest: one kaniko container, context ``tar:///workspace/context.tar.gz`` from the
        ConfigMap ``name``, pushing to ``image``; no retries (a failed build fails the same way again)."""
        args = ["--context=tar:///workspace/context.tar.gz", "--dockerfile=Containerfile", f"--destination={image}",
                "--single-snapshot", "--verbosity=info"]
        if self.insecure_registry:
            args.append("--insecure")
        mounts = [{"name": "context", "mountPath": "/workspace", "readOnly": True}]
        volumes: list[dict[str, Any]] = [{"name": "context", "configMap": {"name": name}}]
        if self.registry_secret:
            mounts.append({"name": "registry", "mountPath": "/kaniko/.docker", "readOnly": True})
            volumes.append({"name": "registry", "secret": {"secretName": self.registry_secret,
                                                           "items": [{"key": ".dockerconfigjson",
                                                                      "path": "config.json"}]}})
        pod = {"restartPolicy": "Never", "automountServiceAccountToken": False,
               "containers": [{"name": "kaniko", "image": self.kaniko_image, "args": args, "volumeMounts": mounts}],
               "volumes": volumes}
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "labels": self.labels},
                "spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": KANIKO_TTL_S,
                         "activeDeadlineSeconds": int(self.timeout_s),
                         "template": {"metadata": {"labels": self.labels}, "spec": pod}}}

    def _wait(self, name: str, image: str) -> bool:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            job = self.cluster.get("Job", name)
            if job is None:
                raise ImageBuildFailed(image, f"the kaniko build Job {name} was deleted while it ran")
            status = job.get("status") or {}
            if status.get("succeeded"):
                return True
            if status.get("failed"):
                return False
            time.sleep(self.poll_s)
        raise ImageBuildFailed(image, f"the kaniko build Job {name} did not finish within {self.timeout_s:.0f} s")

    def _pod_log(self, name: str) -> str:
        pods = self.cluster.list("Pod", {"job-name": name})
        return "".join(self.cluster.pod_log(pod["metadata"]["name"], "kaniko") for pod in pods)


def builder_for(target: KubernetesTarget, cluster: Any = None, workspace: str = "",
                registry_secret: str | None = None) -> Builder:
    """The builder a compute target asks for (``target.image_builder``): podman or docker on this machine, or
    kaniko in ``cluster`` (needed then, with the ``workspace`` the target's labels name). Raises InvalidInput when
    kaniko is asked for without a cluster or without an image registry."""
    if target.image_builder in ("podman", "docker"):
        return CliBuilder(target.image_builder)
    if cluster is None:
        raise InvalidInput(f"compute target {target.name} builds with kaniko, which runs in the cluster; connect to it "
                           "first")
    if not target.image_registry:
        raise InvalidInput(f"compute target {target.name} builds with kaniko, which must push what it builds; set "
                           "its image_registry")
    return KanikoBuilder(cluster, objects.target_labels(workspace, target.name), registry_secret)


def registry_has(image: str, insecure: bool = False, timeout_s: float = REGISTRY_TIMEOUT_S) -> bool:
    """Whether the registry of ``image`` (``host[:port]/repository:tag``) has it, by the registry API (``HEAD
    /v2/<repository>/manifests/<tag>``), following a Bearer challenge with an anonymous token. ``insecure``: plain
    HTTP. False when it is absent, the registry refuses anonymous reads or cannot be reached."""
    host = _registry_host(image)
    if host is None:
        return False
    path = image[len(host) + 1:] if image.startswith(f"{host}/") else image
    repository, _, tag = path.rpartition(":")
    if not repository or "/" in tag:
        repository, tag = path, "latest"
    if host == "docker.io":  # Docker Hub's API host; its official images live under library/
        host, repository = "registry-1.docker.io", repository if "/" in repository else f"library/{repository}"
    url = f"{'http' if insecure else 'https'}://{host}/v2/{repository}/manifests/{tag}"
    try:
        with httpx.Client(timeout=timeout_s) as client:
            answer = client.head(url, headers={"Accept": _MANIFESTS})
            challenge = answer.headers.get("www-authenticate", "")
            if answer.status_code == 401 and challenge.lower().startswith("bearer "):
                params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
                token = client.get(params.pop("realm", ""), params=params).json().get("token", "")
                answer = client.head(url, headers={"Accept": _MANIFESTS, "Authorization": f"Bearer {token}"})
            return answer.status_code == 200
    except (httpx.HTTPError, ValueError):
        return False


def _base_image(context: Path) -> str | None:
    """The image a build context starts ``FROM`` (its Containerfile's first ``FROM``; None without one)."""
    containerfile = context / "Containerfile"
    if not containerfile.is_file():
        return None
    for line in containerfile.read_text().splitlines():
        if line.upper().startswith("FROM "):
            return line.split()[1]
    return None


def _registry_host(image: str) -> str | None:
    """The registry host of an image name, or None for a ``localhost/`` (local store) name. Docker's rule: the
    first path part is a host when it has a dot or a port, or is ``localhost``; otherwise Docker Hub."""
    first, _, rest = image.partition("/")
    if not rest:
        return "docker.io"
    if first == "localhost":
        return None
    return first if ("." in first or ":" in first) else "docker.io"


def _tag(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    return re.sub(r"[^a-z0-9-]", "-", last.partition(":")[2] or last).strip("-") or "latest"


def _tarball(context: Path) -> bytes:
    """The context folder as a gzipped tar, paths relative to it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(context.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(context)), recursive=False)
    return buffer.getvalue()
