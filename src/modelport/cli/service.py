"""``modelport model deploy`` and ``modelport service ...``: deploy, inspect, score, update, delete services."""

from __future__ import annotations

import json

import click

from .output import emit, friendly_errors, output_option, workspace_from, workspace_option

COLUMNS = ["name", "state", "scoring_uri", "models", "error"]


def _row(service) -> dict:
    view = service.serialize()
    return {**view, "models": " ".join(view.get("models", []))}


@click.command("deploy")
@click.option("--name", "-n", required=True, help="Service name.")
@click.option("--model", "-m", "models", multiple=True, required=True, help="NAME:VERSION (repeatable).")
@click.option("--ic", "--inference-config-file", "ic", required=True, type=click.Path(dir_okay=False),
              help="inferenceconfig.json as Azure ML writes it.")
@click.option("--dc", "--deploy-config-file", "dc", type=click.Path(dir_okay=False), default=None,
              help="deploymentconfig.json as Azure ML writes it.")
@click.option("--ct", "--compute-target", "compute_target", default="local", show_default=True,
              help="Only 'local' (this machine) for now.")
@click.option("--overwrite", is_flag=True, help="Replace a service of the same name.")
@click.option("--no-wait", is_flag=True, help="Return at once instead of waiting for Healthy.")
@workspace_option
@output_option
@friendly_errors
def deploy_command(name, models, ic, dc, compute_target, overwrite, no_wait, workspace_path, output) -> None:
    """Deploy models as a web service on this machine."""
    from ..errors import InvalidInput
    from ..sdk.deploy_config import DeploymentConfig, aks_deploy_configuration
    from ..sdk.inference_config import InferenceConfig
    from ..sdk.model import Model

    if compute_target != "local":
        raise InvalidInput(f"compute target {compute_target!r} is not attached; use --ct local")
    workspace = workspace_from(workspace_path)
    config = DeploymentConfig.from_file(dc) if dc else aks_deploy_configuration()
    service = Model.deploy(workspace, name, [Model(workspace, id=m) if ":" in m else Model(workspace, m)
                                             for m in models], InferenceConfig.from_file(ic), config,
                           overwrite=overwrite)
    if not no_wait:
        service.wait_for_deployment(show_output=output == "table")
    emit(output, _row(service), COLUMNS)


@click.group("service")
def service_group() -> None:
    """Inspect, score, update and delete deployed services."""


def _service(workspace_path, name):
    from ..sdk.webservice import Webservice

    return Webservice(workspace_from(workspace_path), name)


@service_group.command("list")
@click.option("--model-name", default=None, help="Only services using this model.")
@workspace_option
@output_option
@friendly_errors
def list_services(model_name, workspace_path, output) -> None:
    from ..sdk.webservice import Webservice

    emit(output, [_row(s) for s in Webservice.list(workspace_from(workspace_path), model_name=model_name)], COLUMNS)


@service_group.command("show")
@click.option("--name", "-n", required=True)
@workspace_option
@output_option
@friendly_errors
def show(name, workspace_path, output) -> None:
    emit(output, _row(_service(workspace_path, name)), COLUMNS + ["swagger_uri"])


@service_group.command("logs")
@click.option("--name", "-n", required=True)
@click.option("--num-lines", "-l", type=int, default=5000)
@workspace_option
@friendly_errors
def logs(name, num_lines, workspace_path) -> None:
    click.echo(_service(workspace_path, name).get_logs(num_lines))


@service_group.command("keys")
@click.option("--name", "-n", required=True)
@workspace_option
@output_option
@friendly_errors
def keys(name, workspace_path, output) -> None:
    primary, secondary = _service(workspace_path, name).get_keys()
    emit(output, {"primaryKey": primary, "secondaryKey": secondary}, ["primaryKey", "secondaryKey"])


@service_group.command("regen-key")
@click.option("--name", "-n", required=True)
@click.option("--key", "-k", type=click.Choice(["Primary", "Secondary"], case_sensitive=False), required=True)
@click.option("--set-key", default=None, help="Use this value instead of a random one.")
@workspace_option
@friendly_errors
def regen_key(name, key, set_key, workspace_path) -> None:
    _service(workspace_path, name).regen_key(key, set_key)
    click.echo(f"Regenerated the {key.lower()} key of {name}.")


@service_group.command("get-access-token")
@click.option("--name", "-n", required=True)
@workspace_option
@output_option
@friendly_errors
def get_access_token(name, workspace_path, output) -> None:
    token, refresh_by = _service(workspace_path, name).get_token()
    emit(output, {"accessToken": token, "refreshAfter": refresh_by}, ["accessToken", "refreshAfter"])


@service_group.command("run")
@click.option("--name", "-n", required=True)
@click.option("--input-data", "-d", required=True, help="JSON text, or @file.json.")
@workspace_option
@friendly_errors
def run(name, input_data, workspace_path) -> None:
    """Score the service with its key or token."""
    if input_data.startswith("@"):
        with open(input_data[1:]) as source:
            input_data = source.read()
    click.echo(json.dumps(_service(workspace_path, name).run(input_data)))


@service_group.command("update")
@click.option("--name", "-n", required=True)
@click.option("--model", "-m", "models", multiple=True, help="NAME:VERSION (repeatable): the new model set.")
@click.option("--ic", "--inference-config-file", "ic", type=click.Path(dir_okay=False), default=None)
@click.option("--dc", "--deploy-config-file", "dc", type=click.Path(dir_okay=False), default=None)
@workspace_option
@output_option
@friendly_errors
def update(name, models, ic, dc, workspace_path, output) -> None:
    """Rolling update: new replicas take over when ready."""
    from ..sdk.deploy_config import DeploymentConfig
    from ..sdk.inference_config import InferenceConfig
    from ..sdk.model import Model

    service = _service(workspace_path, name)
    settings = DeploymentConfig.from_file(dc).to_settings() if dc else {}
    service.update(models=[Model(service.workspace, id=m) for m in models] or None,
                   inference_config=InferenceConfig.from_file(ic) if ic else None, **settings)
    service.wait_for_deployment(show_output=output == "table")
    emit(output, _row(service), COLUMNS)


@service_group.command("delete")
@click.option("--name", "-n", required=True)
@workspace_option
@friendly_errors
def delete(name, workspace_path) -> None:
    _service(workspace_path, name).delete()
    click.echo(f"Deleted {name}.")
