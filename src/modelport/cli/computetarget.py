"""``modelport computetarget attach kubernetes|detach|list|show|refresh`` (``az ml computetarget``'s verbs).

``attach aks`` (Azure's resource id) and ``create aks`` are refused with the way to attach the cluster through its
kubeconfig instead. Each command goes through the SDK (``sdk/compute.py``); the kubeconfig and TLS key are read
here and sent to the control plane, never printed. ``refresh --kubeconfig`` replaces rotated credentials, and exits
1 when the target is Failed (after printing it), so scripts notice.
"""

from __future__ import annotations

import sys
import warnings

import click

from ..errors import InvalidInput
from ..spec.compute import DEV_TEST, FAST_PROD, IMAGE_BUILDERS, INGRESS_SERVICE_TYPES
from .output import emit, friendly_errors, output_option
from .workspace_options import workspace_from, workspace_option

COLUMNS = ["name", "type", "provisioning_state", "server", "namespace", "context", "cluster_purpose"]
DETAILS = COLUMNS + ["ingress_service_type", "ssl_cname", "image_registry", "image_builder", "server_version",
                     "vcpus", "provisioning_errors", "warnings", "created_at", "checked_at"]
# show's and refresh's table: what matters of one target (-o json gives every DETAILS field); its problems and
# warnings follow it, one line each
SHOWN = ["name", "type", "provisioning_state", "namespace", "server", "cluster_purpose", "vcpus", "checked_at"]
_AZURE_ONLY = dict(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})


@click.group("computetarget")
def computetarget_group() -> None:
    """Attach, list, show, refresh and detach compute targets (the clusters services run on)."""


@computetarget_group.group("attach")
def attach_group() -> None:
    """Attach an existing cluster."""


@attach_group.command("kubernetes")
@click.option("--name", "-n", required=True, help="Compute target name (3-24 letters, digits and dashes).")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None,
              help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).")
@click.option("--context", default=None, help="kubeconfig context (default: its current-context).")
@click.option("--namespace", default="default", show_default=True, help="Namespace modelport's objects go in.")
@click.option("--cluster-purpose", type=click.Choice([FAST_PROD, DEV_TEST]), default=FAST_PROD,
              show_default=True, help="FastProd needs 12 vCPU or more, DevTest 2 (not for production).")
@click.option("--ingress-service-type", type=click.Choice(INGRESS_SERVICE_TYPES),
              default="LoadBalancer", show_default=True, help="How the front end's Service is exposed.")
@click.option("--ssl-cert-pem-file", type=click.Path(dir_okay=False), default=None, help="Front end TLS certificate.")
@click.option("--ssl-key-pem-file", type=click.Path(dir_okay=False), default=None, help="Its private key.")
@click.option("--ssl-cname", default=None, help="The host name the certificate is for.")
@click.option("--image-registry", default=None, help="host[:port]/path to push and pull images (default: none).")
@click.option("--image-builder", type=click.Choice(IMAGE_BUILDERS), default="podman", show_default=True)
@workspace_option
@output_option
@friendly_errors
def attach_kubernetes(name, kubeconfig, context, namespace, cluster_purpose, ingress_service_type, ssl_cert_pem_file,
                      ssl_key_pem_file, ssl_cname, image_registry, image_builder, workspace_choice, output) -> None:
    """Attach a Kubernetes cluster as NAME: the cluster is checked first, and every problem found is listed."""
    from ..sdk.compute import ComputeTarget, ComputeTargetWarning, KubernetesCompute

    config = KubernetesCompute.attach_configuration(
        kubeconfig=kubeconfig, context=context, namespace=namespace, cluster_purpose=cluster_purpose,
        ingress_service_type=ingress_service_type, ssl_cert_pem_file=ssl_cert_pem_file,
        ssl_key_pem_file=ssl_key_pem_file, ssl_cname=ssl_cname, image_registry=image_registry,
        image_builder=image_builder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ComputeTargetWarning)  # printed below, as every CLI warning is
        target = ComputeTarget.attach(workspace_from(workspace_choice), name, config)
    for warning in target.warnings:
        click.echo(f"Warning: {warning}", err=True)
    emit(output, _row(target), COLUMNS)


@attach_group.command("aks", **_AZURE_ONLY)
@click.argument("azure_arguments", nargs=-1, type=click.UNPROCESSED)
@friendly_errors
def attach_aks(azure_arguments) -> None:
    """Azure's AKS attach: refused with the way to attach the cluster through its kubeconfig."""
    from ..sdk.compute import aks_names, azure_arguments_refused

    raise azure_arguments_refused(["--compute-resource-id"], *aks_names(_resource_id(list(azure_arguments))))


@computetarget_group.group("create")
def create_group() -> None:
    """Refused: modelport attaches clusters that exist."""


@create_group.command("aks", **_AZURE_ONLY)
@click.argument("azure_arguments", nargs=-1, type=click.UNPROCESSED)
@friendly_errors
def create_aks(azure_arguments) -> None:
    """Refused: create the cluster with its provider, then attach it."""
    from ..sdk.compute import NO_CREATE

    raise InvalidInput(NO_CREATE)


@computetarget_group.command("detach")
@click.option("--name", "-n", required=True)
@click.option("--force", is_flag=True, help="Forget the target even when its cluster cannot be reached (its objects "
                                            "stay there).")
@workspace_option
@friendly_errors
def detach(name, force, workspace_choice) -> None:
    """Remove modelport's objects from the cluster's namespace and forget the target and its credentials."""
    from ..sdk.compute import ComputeTarget

    removed = ComputeTarget(workspace_from(workspace_choice), name).detach(force=force)
    count = f"{len(removed)} object" + ("" if len(removed) == 1 else "s")
    click.echo(f"Detached {name}; removed {count}" + (f": {', '.join(removed)}" if removed else ""))


@computetarget_group.command("list")
@workspace_option
@output_option
@friendly_errors
def list_targets(workspace_choice, output) -> None:
    """List compute targets: local (this machine) and the attached clusters."""
    from ..sdk.compute import ComputeTarget

    emit(output, [_row(target) for target in ComputeTarget.list(workspace_from(workspace_choice))], COLUMNS)


@computetarget_group.command("show")
@click.option("--name", "-n", required=True)
@workspace_option
@output_option
@friendly_errors
def show(name, workspace_choice, output) -> None:
    """Show one compute target (as of its last check)."""
    from ..sdk.compute import ComputeTarget

    _emit_one(output, _row(ComputeTarget(workspace_from(workspace_choice), name)))


@computetarget_group.command("refresh")
@click.option("--name", "-n", required=True)
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None,
              help="New credentials (e.g. after a token rotation): a kubeconfig for the same cluster, checked as "
                   "attach checks it, then stored in place of the old one.")
@click.option("--context", default=None, help="Its context (default: its current-context); alone, it is read from "
                                              "$KUBECONFIG, else ~/.kube/config.")
@workspace_option
@output_option
@friendly_errors
def refresh(name, kubeconfig, context, workspace_choice, output) -> None:
    """Check the cluster again: provisioning_state becomes Failed with every problem listed (exit 1), or
    Succeeded. With --kubeconfig/--context, replace the stored credentials when the new ones pass the checks."""
    from ..sdk.compute import ComputeTarget, KubernetesCompute

    target = ComputeTarget(workspace_from(workspace_choice), name)
    if kubeconfig is None and context is None:
        target.refresh_state()
    elif isinstance(target, KubernetesCompute):
        target.update_credentials(kubeconfig, context)
    else:
        raise InvalidInput(f"'{name}' is this machine: it has no kubeconfig to replace; --kubeconfig and --context "
                           "are for attached clusters")
    row = _row(target)
    _emit_one(output, row)
    if row["provisioning_state"] == "Failed":
        click.echo(f"Error: compute target '{name}' is Failed: fix the problems above and refresh again", err=True)
        sys.exit(1)


def _emit_one(output: str, row: dict) -> None:
    """One target: every field as JSON, or the ``SHOWN`` columns with a ``Problem:`` line per provisioning error
    and a ``Warning:`` line per warning on stderr."""
    if output == "json":
        emit(output, row, DETAILS)
        return
    emit(output, row, SHOWN)
    for problem in row.get("provisioning_errors") or []:
        click.echo(f"Problem: {problem}", err=True)
    for warning in row.get("warnings") or []:
        click.echo(f"Warning: {warning}", err=True)


def _resource_id(arguments: list[str]) -> str | None:
    """The value of ``-i``/``--compute-resource-id`` among Azure's CLI arguments, None without one."""
    for index, argument in enumerate(arguments):
        flag, equals, value = argument.partition("=")
        if flag in ("-i", "--compute-resource-id"):
            if equals:
                return value
            return arguments[index + 1] if index + 1 < len(arguments) else None
    return None


def _row(target) -> dict:
    """A target as one flat record: ``name``, ``type``, ``provisioning_state``, ``provisioning_errors`` and its
    properties."""
    serialized = target.serialize()
    return {"name": serialized["name"], "type": serialized["type"],
            "provisioning_state": serialized["provisioningState"],
            "provisioning_errors": serialized["provisioningErrors"], **serialized["properties"]}
