"""``modelport kubernetes ...``: Kubernetes compute target tools; ``render`` prints what a deploy would apply.

``render`` reads a deploy's files and flags exactly as ``modelport model deploy`` does (``deploy_flags``) and
prints, as YAML and with no cluster, every object a deploy of that one service applies and publishes: the scoring
Deployment and Service, the front end's objects, and the routing state the front end's controller reads (the
routes ConfigMap holding the service's route and the auth Secret, ``frontend.routing_state``), as a first deploy
publishes them (revision 1), with placeholder keys and no token key set. ``cli/main.py`` registers
``kubernetes_group``.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import click

from .deploy_flags import deploy_flags, deployment_config, inference_config
from .output import friendly_errors
from .workspace_options import WorkspaceChoice, workspace_option

DEFAULT_TARGET = "kubernetes"  # the compute target name rendered with when none is given
PLACEHOLDER_KEYS = {"primary": "<primary key>", "secondary": "<secondary key>"}
REVISION = 1  # the routing revision a first deploy to a new front end publishes
AUTH_NOTE = ("# Placeholders: the Secret a deploy writes holds the service's real keys in keys.json (key auth "
             "checks them)\n# and, for token auth, the workspace's token public key set in jwks.json (null here).\n")


def render_objects(workload, front_end, key_auth: bool | None = None) -> list[dict[str, Any]]:
    """What a deploy of ``workload`` (a ``ScoringWorkload``) applies and publishes, in order: its Deployment and
    Service, then ``front_end``'s (a ``FrontEndSpec``) objects with, instead of the front end's initial empty
    routes ConfigMap, the auth Secret and the routes ConfigMap holding this service's route (``service_route``),
    as ``KubernetesFrontEnd.apply`` writes them. ``key_auth``: whether the service checks keys (default: the
    workload's ``auth_enabled``); token auth is its ``token_auth_enabled``."""
    from ..backends.kubernetes.frontend_manifests import front_end_objects
    from ..backends.kubernetes.manifests import scoring_objects
    from ..backends.kubernetes.objects import ROUTES_CONFIGMAP

    rendered = scoring_objects(workload)
    for item in front_end_objects(front_end):
        if item["kind"] == "ConfigMap" and item["metadata"]["name"] == ROUTES_CONFIGMAP:
            rendered += routing_objects(workload, service_route(workload, key_auth))
        else:
            rendered.append(item)
    return rendered


def service_route(workload, key_auth: bool | None = None):
    """The ``ServiceRoute`` the reconciler gives the front end for ``workload`` as a first deploy makes it: the
    endpoint's one version (default and control; an AKSENDPOINT config's ``traffic_percentile``, the rest going
    to it as the default) routed to ``workload.replica_set``, its auth, CORS origins and time limit, and
    ``PLACEHOLDER_KEYS`` for the keys a deploy generates. ``key_auth`` as ``render_objects``'."""
    from ..reconcile.service_route import VersionObserved, service_route
    from ..sdk.deploy_config import ENDPOINT
    from ..spec import State, traffic
    from ..spec.endpoint import ENDPOINT as ENDPOINT_KIND
    from ..spec.endpoint import WEBSERVICE, Endpoint, EndpointVersion

    deploy = workload.deploy
    is_endpoint = deploy.get("compute_type") == ENDPOINT
    checks_keys = deploy.get("auth_enabled", True) if key_auth is None else key_auth
    auth = "token" if deploy.get("token_auth_enabled") else "key" if checks_keys else "none"
    version = EndpointVersion(name=workload.version, models=(), entry_script="", snapshot="", environment={},
                              deploy=deploy, traffic_percentile=deploy.get("traffic_percentile", 0) if is_endpoint
                              else 0, is_default=True, is_control=True)
    endpoint = traffic.check(Endpoint(name=workload.endpoint, versions=(version,),
                                      kind=ENDPOINT_KIND if is_endpoint else WEBSERVICE, auth=auth,
                                      keys=dict(PLACEHOLDER_KEYS),
                                      cors_origins=tuple(deploy.get("cors_origins") or ())))
    # not started yet: no ready replica to lend a share to, so each version keeps its split share
    seen = {version.name: VersionObserved(State.TRANSITIONING, "", workload.replica_set)}
    return service_route(endpoint, seen)


def routing_objects(workload, route) -> list[dict[str, Any]]:
    """The auth Secret and routes ConfigMap of revision ``REVISION`` publishing ``route`` (a ``ServiceRoute``) alone,
    built as ``KubernetesFrontEnd.apply`` builds them: each version's Deployment named after its replica set, its
    autoscale settings when the workload autoscales, no token key set."""
    from ..backends.kubernetes.objects import replica_set_name, target_labels
    from ..frontend.routing_state import auth_secret, routes_configmap
    from ..reconcile.autoscale import AutoscaleSettings

    autoscaled, settings = AutoscaleSettings.of(workload.deploy)
    deployments = {(route.name, v.name): replica_set_name(route.name, v.replica_set or v.name)
                   for v in route.versions}
    autoscale = {(route.name, v.name): settings if autoscaled else None for v in route.versions}
    labels = target_labels(workload.workspace, workload.target.name)
    namespace = workload.target.namespace
    return [auth_secret(REVISION, [route], None, namespace, labels),
            routes_configmap(REVISION, [route], deployments, autoscale, namespace, labels)]


def render_yaml(rendered: list[dict[str, Any]]) -> str:
    """``rendered`` as ``to_yaml`` writes it, the auth Secret preceded by comments saying it holds placeholders
    and what its base64 files decode to."""
    from ..backends.kubernetes.manifests import to_yaml
    from ..backends.kubernetes.objects import AUTH_SECRET

    text = ""
    for item in rendered:
        document = to_yaml([item])
        if item["kind"] == "Secret" and item["metadata"]["name"] == AUTH_SECRET:
            decoded = "".join(f"# {name}: {base64.b64decode(value).decode()}\n"
                              for name, value in item.get("data", {}).items())
            start, _, rest = document.partition("\n")
            document = f"{start}\n{AUTH_NOTE}{decoded}{rest}"
        text += document
    return text


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
                   "are used; otherwise the namespace, Service type and TLS flags are.")
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
    az ml model deploy's, over the files): the scoring Deployment and Service, the front end, and the routes
    ConfigMap and auth Secret with this service's route. The keys are placeholders: the Secret a deploy writes
    holds the real ones (and, for token auth, the token public keys)."""
    from ..backends.kubernetes.frontend_manifests import TLS_SECRET, FrontEndSpec
    from ..backends.kubernetes.images import front_end_image_name
    from ..backends.kubernetes.manifests import ScoringWorkload, runtime_env
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
    click.echo(render_yaml(render_objects(workload, front_end)), nl=False)


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
