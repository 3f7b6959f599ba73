"""``modelport model deploy`` and ``modelport service ...``: deploy, inspect, score, update, delete services."""

from __future__ import annotations

import sys

import click

from .deploy_flags import deploy_flags, deployment_config, inference_config, inference_given, setting_changes
from .output import answer_output_option, emit, emit_answer, friendly_errors, output_option
from .workspace_options import workspace_from, workspace_option

COLUMNS = ["name", "state", "scoring_uri", "models", "error"]


def _row(service, output: str = "table") -> dict:
    """A service's view; in a table its error is one line (the whole reason stays in ``-o json`` and ``show``)."""
    from ..sdk.webservice import one_line

    view = service.serialize()
    if output == "json":
        return view
    return {**view, "models": " ".join(view.get("models", [])), "error": one_line(view.get("error"))}


@click.command("deploy")
@click.option("--name", "-n", required=True, help="Service name.")
@click.option("--model", "-m", "models", multiple=True, required=True, help="NAME:VERSION (repeatable).")
@click.option("--ic", "--inference-config-file", "ic", type=click.Path(dir_okay=False), default=None,
              help="inferenceconfig.json as Azure ML writes it.")
@click.option("--dc", "--deploy-config-file", "dc", type=click.Path(dir_okay=False), default=None,
              help="deploymentconfig.json as Azure ML writes it.")
@click.option("--ct", "--compute-target", "compute_target", default=None,
              help="The compute target: 'local' (this machine, the default) or an attached Kubernetes cluster "
                   "(modelport computetarget list).")
@click.option("--overwrite", is_flag=True, help="Replace a service of the same name.")
@click.option("--no-wait", is_flag=True, help="Return at once instead of waiting for Healthy.")
@deploy_flags
@workspace_option
@output_option
@friendly_errors
def deploy_command(name, models, ic, dc, compute_target, overwrite, no_wait, settings, inference_flags, strict,
                   workspace_choice, output) -> None:
    """Deploy models as a web service on this machine (az ml model deploy's files and flags; flags win)."""
    from ..sdk.model import Model

    workspace = workspace_from(workspace_choice)
    config = deployment_config(dc, settings, strict)
    inference = inference_config(ic, inference_flags, workspace, strict)
    service = Model.deploy(workspace, name, [Model(workspace, id=m) if ":" in m else Model(workspace, m)
                                             for m in models], inference, config,
                           deployment_target=compute_target, overwrite=overwrite)
    if not no_wait:
        service.wait_for_deployment(show_output=True)
    emit(output, _row(service, output), COLUMNS)


@click.group("service")
def service_group() -> None:
    """Inspect, score, update and delete deployed services."""


def _service(workspace_choice, name):
    from ..sdk.webservice import Webservice

    return Webservice(workspace_from(workspace_choice), name)


@service_group.command("list")
@click.option("--model-name", default=None, help="Only services using this model.")
@workspace_option
@output_option
@friendly_errors
def list_services(model_name, workspace_choice, output) -> None:
    """List services with their state, scoring URI, models and a one-line error."""
    from ..sdk.webservice import Webservice

    services = Webservice.list(workspace_from(workspace_choice), model_name=model_name)
    emit(output, [_row(s, output) for s in services], COLUMNS)


@service_group.command("show")
@click.option("--name", "-n", required=True)
@workspace_option
@output_option
@friendly_errors
def show(name, workspace_choice, output) -> None:
    """Show one service; a table is followed by the whole reason (e.g. the replica log tail) when it has one."""
    service = _service(workspace_choice, name)
    emit(output, _row(service, output), COLUMNS + ["swagger_uri"])
    if output == "table" and service.error:
        click.echo(f"\nerror:\n{service.error}")


@service_group.command("logs")
@click.option("--name", "-n", required=True)
@click.option("--num-lines", "-l", type=int, default=5000)
@click.option("--init", is_flag=True, help="The build that ran before the replicas started (the environment's, or "
                                           "on Kubernetes the image's), as Azure ML's init container logs.")
@workspace_option
@friendly_errors
def logs(name, num_lines, init, workspace_choice) -> None:
    """Print the last lines of the serving version's replica logs (with --init: of its build)."""
    click.echo(logs_or_why_none(_service(workspace_choice, name).get_logs(num_lines, init=init), name, init))


def logs_or_why_none(text: str, name: str, init: bool) -> str:
    """``text``, or a line saying why there is none and where to look."""
    if text.strip():
        return text
    if init:
        return f"(no build log: {name}'s environment was built before, or has not started building)"
    return (f"(no replica log yet: no replica of {name} has started; modelport service show -n {name} says what it "
            f"waits for, and modelport service logs -n {name} --init shows its build)")


@service_group.command("keys")
@click.option("--name", "-n", required=True)
@workspace_option
@output_option
@friendly_errors
def keys(name, workspace_choice, output) -> None:
    """Show the primary and secondary key of a key-auth service."""
    _emit_keys(output, _service(workspace_choice, name))


def _emit_keys(output: str, service) -> None:
    primary, secondary = service.get_keys()
    emit(output, {"primaryKey": primary, "secondaryKey": secondary}, ["primaryKey", "secondaryKey"])


@service_group.command("regen-key")
@click.option("--name", "-n", required=True)
@click.option("--key", "-k", type=click.Choice(["Primary", "Secondary"], case_sensitive=False), required=True)
@click.option("--set-key", "-s", default=None, help="Use this value instead of a random one.")
@workspace_option
@output_option
@friendly_errors
def regen_key(name, key, set_key, workspace_choice, output) -> None:
    """Regenerate (or set) the primary or secondary key (the old value stops working); show both keys, as az ml
    service regen-key did."""
    service = _service(workspace_choice, name)
    service.regen_key(key, set_key)
    _emit_keys(output, service)


@service_group.command("get-access-token")
@click.option("--name", "-n", required=True)
@workspace_option
@output_option
@friendly_errors
def get_access_token(name, workspace_choice, output) -> None:
    """A token for a token-auth service: accessToken, tokenType, refreshAfter, expiryOn (local times)."""
    token = _service(workspace_choice, name).get_access_token().serialize()
    emit(output, token, list(token))


@service_group.command("run")
@click.option("--name", "-n", required=True)
@click.option("--input-data", "-d", required=True,
              help="The request body: JSON text, @FILE to read a file, or - to read standard input (as curl).")
@workspace_option
@answer_output_option
@friendly_errors
def run(name, input_data, workspace_choice, output) -> None:
    """Score the service with its key or token; print its answer (JSON, or -o table)."""
    emit_answer(output, _service(workspace_choice, name).run(_body(input_data)))


def _body(input_data: str) -> str:
    """curl's ``-d`` convention: ``-`` is standard input, ``@path`` a file's content, anything else the body."""
    from ..errors import InvalidInput

    if input_data == "-":
        return sys.stdin.read()
    if not input_data.startswith("@"):
        return input_data
    try:
        with open(input_data[1:]) as source:
            return source.read()
    except OSError as err:
        raise InvalidInput(f"cannot read the input file {input_data[1:]!r}: {err.strerror}; give an existing file "
                           "after @, - for standard input, or the JSON text itself") from None


@service_group.command("update")
@click.option("--name", "-n", required=True, help="The service to update.")
@click.option("--model", "-m", "models", multiple=True, help="NAME:VERSION (repeatable): the new model set.")
@click.option("--ic", "--inference-config-file", "ic", type=click.Path(dir_okay=False), default=None,
              help="inferenceconfig.json as Azure ML writes it: the new entry script, source and environment.")
@click.option("--dc", "--deploy-config-file", "dc", type=click.Path(dir_okay=False), default=None,
              help="deploymentconfig.json as Azure ML writes it: the new settings.")
@deploy_flags
@workspace_option
@output_option
@friendly_errors
def update(name, models, ic, dc, settings, inference_flags, strict, workspace_choice, output) -> None:
    """Rolling update (az ml service update's files and flags; flags win): new replicas take over when ready."""
    from ..sdk.model import Model
    from ..sdk.webservice import Webservice

    workspace = workspace_from(workspace_choice)
    changes = setting_changes(dc, settings, strict)  # the files' errors come before any call
    inference = inference_config(ic, inference_flags, workspace, strict) \
        if inference_given(ic, inference_flags) else None
    service = Webservice(workspace, name)
    if not dc and "tags" in changes:
        changes["tags"] = {**service.tags, **changes["tags"]}  # --tag adds, as az's --add-tag
    service.update(models=[Model(workspace, id=m) for m in models] or None, inference_config=inference, **changes)
    service.wait_for_deployment(show_output=True)
    emit(output, _row(service, output), COLUMNS)


@service_group.command("delete")
@click.option("--name", "-n", required=True)
@workspace_option
@friendly_errors
def delete(name, workspace_choice) -> None:
    """Delete the service; its replicas stop before this returns."""
    _service(workspace_choice, name).delete()
    click.echo(f"Deleted {name}.")
