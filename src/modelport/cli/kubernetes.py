"""``modelport kubernetes ...``: Kubernetes compute target tools; ``render`` prints what a deploy would apply.

``render`` reads a deploy's files and flags exactly as ``modelport model deploy`` does (``deploy_flags``) and
prints, as YAML and with no cluster, every object the deploy would apply: the scoring Deployment and Service,
the keys Secret (key auth; placeholders, never keys) and the front end's objects. ``cli/main.py`` registers
``kubernetes_group``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .deploy_flags import deploy_flags, deployment_config, inference_config
from .output import friendly_errors
from .workspace_options import WorkspaceChoice, workspace_option

DEFAULT_TARGET = "kubernetes"  # the compute target name rendered with when none is given
PLACEHOLDER_KEYS = {"primary": "<primary key>", "secondary": "<secondary key>"}


def render_objects(workload, front_end, key_auth: bool) -> list[dict[str, Any]]:
    """What a deploy applies, in order: ``workload``'s (a ``ScoringWorkload``) Deployment and Service, its
    endpoint's keys Secret when ``key_auth`` (with placeholder keys), and ``front_end``'s (a ``FrontEndSpec``)
    objects."""
    from ..backends.kubernetes.frontend_manifests import front_end_objects
    from ..backends.kubernetes.manifests import keys_secret, scoring_objects

    rendered = scoring_objects(workload)
    if key_auth:
        rendered.append(keys_secret(workload.workspace, workload.target, workload.endpoint, PLACEHOLDER_KEYS))
    return rendered + front_end_objects(front_end)


@click.group("kubernetes")
def kubernetes_group() -> None:
    """Kubernetes compute targets: see what a deploy applies to a cluster."""


@kubernetes_group.command("render")
@click.option("--name", "-n", required=True, help="Service name.")
@click.option("--model", "-m", "models", multiple=True, required=True,
              help="NAME:VERSION (repeatable); NAME alone is its latest version in the workspace.")
@click.option("--ic", "--inference-config-file", "ic", type=click.Path(dir_okay=False), default=None,
              help="inferenceconfig.json as Azure ML writes it.")
@click.option("--dc", "--deploy-config-file", "dc", type=click.Path(dir_okay=False), default=None,
              help="deploymentconfig.json as Azure ML writes it (computeType AKS or Kubernetes).")
@click.option("--ct", "--compute-target", "compute_target", default=None,
              help=f"The compute target (default: the config's, else {DEFAULT_TARGET!r}): an attached one's settings "
                   "are used; otherwise the namespace, Service type and TLS flags'.")
@click.option("--image", default=None,
              help="The scoring image (default: the app image name a deploy builds, which needs a workspace).")
@click.option("--front-end-image", default=None,
              help="The front end's image (Envoy and modelport; default: the one a deploy builds, under the target's "
                   "image registry).")
@click.option("--ingress-service-type", type=click.Choice(["LoadBalancer", "NodePort", "ClusterIP"]), default=None,
              help="How the front end's Service is exposed, for a target not attached (default: LoadBalancer).")
@click.option("--tls", is_flag=True, help="The front end also serves HTTPS (port 443) from the modelport-tls Secret, "
                                          "for a target not attached.")
@deploy_flags
@workspace_option
@friendly_errors
def render(name, models, ic, dc, compute_target, image, front_end_image, ingress_service_type, tls, settings,
           inference_flags, strict, workspace_choice) -> None:
    """Print, as YAML, every Kubernetes object deploying these models would apply (no cluster needed; flags as
    az ml model deploy's, over the files). Keys are placeholders."""
    from ..backends.kubernetes.frontend_manifests import TLS_SECRET, FrontEndSpec
    from ..backends.kubernetes.images import front_end_image_name
    from ..backends.kubernetes.manifests import ScoringWorkload, runtime_env, to_yaml
    from ..errors import InvalidInput
    from ..sdk.deploy_config import AKS, ENDPOINT, check_service_name
    from ..spec.endpoint import DEFAULT_VERSION

    check_service_name(name)
    workspace = _workspace(workspace_choice)
    config = deployment_config(dc, settings, strict)
    if config.compute_type not in (AKS, ENDPOINT):
        raise InvalidInput(f"render shows a Kubernetes deployment, not computeType {config.compute_type!r}; give a "
                           "deploymentconfig.json with computeType AKS, Kubernetes or AKSENDPOINT, or none for "
                           "Azure's defaults")
    version = config.version_name or DEFAULT_VERSION  # an endpoint's version, else a web service's one
    inference = inference_config(ic, inference_flags, workspace, strict)
    target = _target(workspace, compute_target or config.compute_target_name or DEFAULT_TARGET, config.namespace,
                     ingress_service_type, tls)
    spec = _replica_set_spec(name, version, config.to_settings(), inference,
                             [_model(workspace, model) for model in models])
    workload = ScoringWorkload(workspace=workspace.name if workspace else "default", target=target, endpoint=name,
                               version=version, replica_set=spec.replica_set,
                               image=image or _app_image(spec, workspace, target), replicas=_replicas(config),
                               deploy=spec.deploy, env=runtime_env(spec))
    front_end = FrontEndSpec(workload.workspace, target,
                             front_end_image or front_end_image_name(target.image_registry),
                             TLS_SECRET if target.has_tls else None)
    click.echo(to_yaml(render_objects(workload, front_end, config.auth_enabled)), nl=False)


def _workspace(choice: WorkspaceChoice):
    """The chosen workspace; None when none was asked for and this folder is in none (render then uses the names
    given)."""
    from ..errors import NotFound
    from .workspace_options import workspace_from

    try:
        return workspace_from(choice)
    except NotFound:
        if choice == WorkspaceChoice():
            return None
        raise


def _target(workspace, name: str, namespace: str | None, ingress_service_type: str | None, tls: bool):
    """The ``KubernetesTarget`` rendered for: the one attached as ``name`` when the workspace has it (its namespace,
    Service type, TLS and image registry), else one made of the flags (no cluster is contacted either way)."""
    from urllib.parse import quote

    from ..errors import InvalidInput, NotFound
    from ..spec.compute import KUBERNETES, KubernetesTarget

    try:
        view = workspace._client.json("GET", f"/computes/{quote(name, safe='')}") if workspace is not None else None
    except NotFound:
        view = None
    if view is None:
        return KubernetesTarget(name=name, server="https://kubernetes.invalid", namespace=namespace or "default",
                                ingress_service_type=ingress_service_type or "LoadBalancer", has_tls=tls)
    if view["type"] != KUBERNETES:
        raise InvalidInput(f"compute target {name!r} is {view['type']}, not a Kubernetes cluster; give --ct the name "
                           "of an attached cluster (or of one to be attached)")
    target = KubernetesTarget.from_dict(view)
    flags = [flag for flag, given in (("--ingress-service-type", ingress_service_type), ("--tls", tls)) if given]
    if flags:
        raise InvalidInput(f"{' and '.join(flags)}: compute target {name!r} is attached and its settings are used; "
                           "leave the flags out (attach it again to change them)")
    if namespace not in (None, target.namespace):
        raise InvalidInput(f"namespace {namespace!r} is not compute target {name!r}'s ({target.namespace!r}), where "
                           "its services run; leave the namespace out")
    return target


def _model(workspace, given: str) -> dict[str, Any]:
    """A model reference as ``ReplicaSetSpec.models`` holds it: resolved in the workspace, else ``NAME:VERSION``
    as given (name and version only)."""
    from ..errors import InvalidInput
    from ..sdk.model import Model

    if workspace is not None:
        record = (Model(workspace, id=given) if ":" in given else Model(workspace, given)).serialize()
        return {key: record[key] for key in ("name", "version", "artifact_sha256", "artifact_kind", "artifact_name")}
    model_name, _, version = given.partition(":")
    if not (model_name and version.isdigit()):
        raise InvalidInput(f"model {given!r}: without a workspace give NAME:VERSION (e.g. mnist:3), or run in a "
                           "workspace folder (-w) to use a registered model's latest version")
    return {"name": model_name, "version": int(version)}


def _replica_set_spec(service: str, version: str, deploy: dict[str, Any], inference, models: list[dict[str, Any]]):
    """The ``ReplicaSetSpec`` the reconciler would make for a new endpoint's first version (its runtime settings
    as environment variables, as ``reconcile.reconciler`` sets them)."""
    from ..environments.spec import EnvironmentSpec
    from ..reconcile.backend import ReplicaSetSpec

    environment = inference.environment._to_dict() if inference.environment else {}
    variables = EnvironmentSpec.from_dict(environment).environment_variables if environment else {}
    env = {**variables, "SERVICE_NAME": service, "SERVICE_VERSION": version,
           "SCORING_TIMEOUT_MS": str(deploy["scoring_timeout_ms"]),
           "MODELPORT_MAX_CONCURRENT_REQUESTS": str(deploy["replica_max_concurrent_requests"]),
           "MODELPORT_MAX_QUEUE_WAIT_MS": str(deploy["max_request_wait_time"])}
    source = inference.source_path.name if inference.source_directory is not None else None  # as a deploy stores it
    return ReplicaSetSpec(service=service, replica_set=f"{version}-1", environment=environment,  # generation 1
                          snapshot=_snapshot_sha(inference), models=tuple(models), entry_script=inference.entry_script,
                          replicas=deploy["num_replicas"] or deploy["autoscale_min_replicas"], source_directory=source,
                          env=env, version=version, deploy=deploy)


def _replicas(config) -> int | None:
    """None when autoscaled (the controller owns the count), else ``num_replicas``."""
    return None if config.autoscale_enabled else config.num_replicas


class _Hashes:
    """The two calls ``store.artifacts.put_tree`` makes of a store, computing sha256s and storing nothing: the
    snapshot's sha256 as a deploy would upload it, with nothing written to the workspace."""

    @staticmethod
    def put_file(path: Path) -> str:
        import hashlib

        with open(path, "rb") as source:
            return hashlib.file_digest(source, "sha256").hexdigest()

    @staticmethod
    def put_bytes(data: bytes) -> str:
        import hashlib

        return hashlib.sha256(data).hexdigest()


def _snapshot_sha(inference) -> str:
    from ..store.artifacts import put_tree

    sha256, _ = put_tree(_Hashes(), inference.source_files())
    return sha256


def _app_image(spec, workspace, target) -> str:
    """The app image a deploy builds (``images.app_image_name``); it hashes the models' artifacts, so a workspace
    must resolve them."""
    from ..backends.kubernetes.images import app_image_name
    from ..errors import InvalidInput

    if workspace is None:
        raise InvalidInput("no workspace here to resolve the models and name the app image: give --image IMAGE, "
                           "or run in a workspace folder (-w)")
    return app_image_name(spec.environment, spec.snapshot, spec.models, target.image_registry, spec.entry_script,
                          spec.source_directory)
