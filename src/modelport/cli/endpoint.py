"""``modelport endpoint ...``: endpoints (Azure ML's ``AksEndpoint``), versions behind one scoring URI, each with its
share of the traffic; ``model deploy`` with a ``computeType: AKSENDPOINT`` file creates one too.

``endpoint create|show|list|update|logs|delete``, ``endpoint version create|update|delete|list`` (``az ml endpoint
realtime create-version``'s flags, with ``model deploy``'s setting and inference flags), and modelport's own
``endpoint promote|rollback|history``. Every command prints a table or, with ``-o json``, the control plane's view.
"""

from __future__ import annotations

import dataclasses

import click

from .deploy_flags import SETTING_FLAGS, deploy_flags, deployment_config, inference_config, inference_given, key_values
from .output import emit, friendly_errors, output_option
from .workspace_options import workspace_from, workspace_option

COLUMNS = ["name", "state", "scoring_uri", "auth", "traffic", "error"]
VERSION_COLUMNS = ["name", "state", "traffic_percentile", "effective_percentile", "is_default", "type",
                   "mirror_percentile", "replica_set", "reason"]
HISTORY_COLUMNS = ["at", "reason", "default", "control", "percentiles"]

name_option = click.option("--name", "-n", required=True, help="Endpoint name.")
version_option = click.option("--version-name", "--vn", "version_name", required=True, help="Version name.")


def _traffic_options(command):
    """``az ml endpoint realtime create-version``'s traffic flags and modelport's ``--mirror-percent``."""
    for option in reversed((
            click.option("--traffic-percentile", "--tp", "traffic_percentile", type=click.FloatRange(0, 100),
                         default=None, help="The version's share of the requests, 0-100 (the sum over the "
                                            "versions at most 100; the default version gets the rest)."),
            click.option("--is-default", is_flag=True, default=None,
                         help="Make it the default version (the others stop being it)."),
            click.option("--is-control-version-type", "is_control", is_flag=True, default=None,
                         help="Make it the control version (the others become treatments)."),
            click.option("--mirror-percent", "mirror_percentile", type=click.FloatRange(0, 100), default=None,
                         help="It also gets a copy of this share of the endpoint's requests, answers discarded, "
                              "and no share of its own (modelport's own)."))):
        command = option(command)
    return command


def _endpoint(workspace_choice, name):
    """The endpoint ``name``; InvalidInput for a web service."""
    from ..errors import InvalidInput
    from ..sdk.endpoint import AksEndpoint
    from ..sdk.webservice import Webservice

    service = Webservice(workspace_from(workspace_choice), name)
    if not isinstance(service, AksEndpoint):
        raise InvalidInput(f"'{name}' is a web service, not an endpoint: use modelport service ... for it, or deploy "
                           "an endpoint with modelport endpoint create")
    return service


def _row(endpoint, output: str) -> dict:
    """An endpoint's view; in a table its versions' shares as one cell and its error as one line."""
    from ..sdk.webservice import one_line

    view = endpoint.serialize()
    if output == "json":
        return view
    traffic = " ".join(f"{v.name}={v.effective_percentile:g}%" + ("(default)" if v.is_default else "")
                       + (f"(mirror {v.mirror_percentile:g}%)" if v.mirror_percentile else "")
                       for v in endpoint.versions.values())
    return {**view, "traffic": traffic, "error": one_line(view.get("error"))}


def _versions(endpoint, output: str) -> list[dict]:
    """The endpoint's versions' views; in a table each reason as one line."""
    from ..sdk.webservice import one_line

    views = list(endpoint.serialize()["versions"].values())
    return views if output == "json" else [{**v, "reason": one_line(v["reason"])} for v in views]


def _show(endpoint, output: str) -> None:
    """The endpoint and, in a table, its versions below it."""
    emit(output, _row(endpoint, output), COLUMNS)
    if output == "table":
        click.echo()
        emit(output, _versions(endpoint, output), VERSION_COLUMNS)


@click.group("endpoint")
def endpoint_group() -> None:
    """Endpoints: versions behind one scoring URI, each with its share of the traffic (Azure ML's AksEndpoint)."""


@endpoint_group.command("create")
@name_option
@click.option("--model", "-m", "models", multiple=True, required=True, help="NAME:VERSION (repeatable).")
@click.option("--ic", "--inference-config-file", "ic", type=click.Path(dir_okay=False), default=None,
              help="inferenceconfig.json as Azure ML writes it.")
@click.option("--dc", "--deploy-config-file", "dc", type=click.Path(dir_okay=False), default=None,
              help="deploymentconfig.json (computeType aks or AKSENDPOINT) as Azure ML writes it.")
@click.option("--version-name", "--vn", "version_name", default=None,
              help="The first version's name (default: the file's versionName, else 'default').")
@click.option("--traffic-percentile", "--tp", "traffic_percentile", type=click.FloatRange(0, 100), default=None,
              help="The first version's traffic percentile (it is the default version: it gets the rest anyway).")
@click.option("--overwrite", is_flag=True, help="Replace an endpoint or service of the same name.")
@click.option("--no-wait", is_flag=True, help="Return at once instead of waiting for Healthy.")
@deploy_flags
@workspace_option
@output_option
@friendly_errors
def create(name, models, ic, dc, version_name, traffic_percentile, overwrite, no_wait, settings, inference_flags,
           strict, workspace_choice, output) -> None:
    """Deploy models as an endpoint whose first version is the default and control version (model deploy's files
    and flags; flags win)."""
    from ..errors import InvalidInput
    from ..sdk.deploy_config import AKS, ENDPOINT
    from ..sdk.model import Model

    workspace = workspace_from(workspace_choice)
    config = deployment_config(dc, settings, strict)
    if config.compute_type not in (AKS, ENDPOINT):
        raise InvalidInput(f"an endpoint needs computeType aks or AKSENDPOINT in {dc}, not {config.compute_type}")
    config = dataclasses.replace(config, compute_type=ENDPOINT, version_name=version_name or config.version_name,
                                 traffic_percentile=config.traffic_percentile if traffic_percentile is None
                                 else traffic_percentile)
    endpoint = Model.deploy(workspace, name, _models(workspace, models),
                            inference_config(ic, inference_flags, workspace, strict), config, overwrite=overwrite)
    if not no_wait:
        endpoint.wait_for_deployment(show_output=True)
    _show(endpoint, output)


@endpoint_group.command("show")
@name_option
@workspace_option
@output_option
@friendly_errors
def show(name, workspace_choice, output) -> None:
    """Show an endpoint and its versions; a table is followed by the whole reason when it has one."""
    endpoint = _endpoint(workspace_choice, name)
    _show(endpoint, output)
    if output == "table" and endpoint.error:
        click.echo(f"\nerror:\n{endpoint.error}")


@endpoint_group.command("list")
@workspace_option
@output_option
@friendly_errors
def list_endpoints(workspace_choice, output) -> None:
    """List endpoints with their state, scoring URI and each version's share."""
    from ..sdk.endpoint import AksEndpoint
    from ..sdk.webservice import Webservice

    endpoints = [s for s in Webservice.list(workspace_from(workspace_choice)) if isinstance(s, AksEndpoint)]
    emit(output, [_row(e, output) for e in endpoints], COLUMNS)


_ENDPOINT_FLAGS = [flag for flag in SETTING_FLAGS
                   if flag[2] in ("auth_enabled", "token_auth_enabled", "description", "cors_origins")]


def _endpoint_setting_flags(command):
    options = [click.option(long, *([short] if short else []), param, type=kind, default=None, help=text)
               for long, short, param, kind, text in _ENDPOINT_FLAGS]
    options.append(click.option("--tag", "tags", multiple=True, help="key=value (repeatable): the endpoint's tags."))
    for option in reversed(options):
        command = option(command)
    return command


@endpoint_group.command("update")
@name_option
@_endpoint_setting_flags
@workspace_option
@output_option
@friendly_errors
def update(name, tags, workspace_choice, output, **settings) -> None:
    """Change the endpoint's own settings (auth, description, tags, CORS); returns once the front end enforces
    them. Versions change with 'endpoint version update'."""
    endpoint = _endpoint(workspace_choice, name)
    endpoint.update(tags=key_values(tags, "--tag"), **settings)
    _show(endpoint, output)


@endpoint_group.command("logs")
@name_option
@click.option("--version-name", "--vn", "version_name", default=None, help="Version (default: the default one).")
@click.option("--num-lines", "-l", type=int, default=5000, show_default=True)
@click.option("--init", is_flag=True, help="The version's build (environment, or on Kubernetes image) instead.")
@workspace_option
@output_option
@friendly_errors
def logs(name, version_name, num_lines, init, workspace_choice, output) -> None:
    """Print the last lines of a version's replica logs (-o json: as {"name", "version", "logs"})."""
    from .service import logs_or_why_none

    text = _endpoint(workspace_choice, name).get_logs(num_lines, init=init, version_name=version_name)
    if output == "json":
        emit(output, {"name": name, "version": version_name, "logs": text}, [])
    else:
        click.echo(logs_or_why_none(text, name, init))


@endpoint_group.command("delete")
@name_option
@workspace_option
@output_option
@friendly_errors
def delete(name, workspace_choice, output) -> None:
    """Delete the endpoint and every version; their replicas stop before this returns."""
    _endpoint(workspace_choice, name).delete()
    emit(output, {"deleted": name}, ["deleted"])


@endpoint_group.command("promote")
@click.argument("endpoint_name", metavar="ENDPOINT")
@click.argument("version_name", metavar="VERSION")
@workspace_option
@output_option
@friendly_errors
def promote(endpoint_name, version_name, workspace_choice, output) -> None:
    """VERSION takes 100 % of ENDPOINT's traffic and becomes its default and control version (modelport's own;
    undo with 'endpoint rollback')."""
    endpoint = _endpoint(workspace_choice, endpoint_name)
    endpoint.promote(version_name)
    _show(endpoint, output)


@endpoint_group.command("rollback")
@click.argument("endpoint_name", metavar="ENDPOINT")
@workspace_option
@output_option
@friendly_errors
def rollback(endpoint_name, workspace_choice, output) -> None:
    """Put ENDPOINT's traffic back as it was before the last change (modelport's own; see 'endpoint history')."""
    endpoint = _endpoint(workspace_choice, endpoint_name)
    endpoint.rollback()
    _show(endpoint, output)


@endpoint_group.command("history")
@click.argument("endpoint_name", metavar="ENDPOINT")
@workspace_option
@output_option
@friendly_errors
def history(endpoint_name, workspace_choice, output) -> None:
    """ENDPOINT's traffic assignments, oldest first, the current one last (modelport's own)."""
    emit(output, [a.to_dict() for a in _endpoint(workspace_choice, endpoint_name).history()], HISTORY_COLUMNS)


@endpoint_group.group("version")
def version_group() -> None:
    """Create, change, delete and list an endpoint's versions (at most 6)."""


def _version_command(command):
    """The options of 'version create' and 'version update': endpoint, version, models, --ic, model deploy's
    setting and inference flags, the traffic flags, -o."""
    for option in reversed((
            name_option, version_option,
            click.option("--model", "-m", "models", multiple=True,
                         help="NAME:VERSION (repeatable); default: the default version's (create), unchanged "
                              "(update)."),
            click.option("--ic", "--inference-config-file", "ic", type=click.Path(dir_okay=False), default=None,
                         help="inferenceconfig.json as Azure ML writes it; default: as for --model."),
            _traffic_options, deploy_flags, workspace_option, output_option, friendly_errors)):
        command = option(command)
    return command


def _version_arguments(endpoint, models, ic, settings, inference_flags, strict, traffic) -> dict:
    """The SDK arguments of a version command's flags; InvalidInput for a flag that is the endpoint's."""
    from ..errors import InvalidInput
    from ..sdk.endpoint import VERSION_SETTINGS

    for long, _, param, _, _ in SETTING_FLAGS:
        if param in settings and param not in VERSION_SETTINGS:
            raise InvalidInput(f"{long} is a setting of the endpoint, not of a version: change it with modelport "
                               f"endpoint update -n {endpoint.name} {long} ...")
    arguments = {**settings, "traffic_percentile": traffic["traffic_percentile"],
                 "is_default": traffic["is_default"], "is_control_version_type": traffic["is_control"],
                 "mirror_percentile": traffic["mirror_percentile"]}
    if models:
        arguments["models"] = _models(endpoint.workspace, models)
    if inference_given(ic, inference_flags):
        arguments["inference_config"] = inference_config(ic, inference_flags, endpoint.workspace, strict)
    return arguments


@version_group.command("create")
@_version_command
def version_create(name, version_name, models, ic, settings, inference_flags, strict, workspace_choice, output,
                   **traffic) -> None:
    """Add a version to an endpoint (az ml endpoint realtime create-version): models, code and every setting not
    given are the default version's. Returns once its share is routed (the default version serves it until its
    replicas are ready)."""
    endpoint = _endpoint(workspace_choice, name)
    arguments = _version_arguments(endpoint, models, ic, settings, inference_flags, strict, traffic)
    endpoint.create_version(version_name, **{k: v for k, v in arguments.items() if v is not None})
    emit(output, endpoint.serialize() if output == "json" else _versions(endpoint, output), VERSION_COLUMNS)


@version_group.command("update")
@_version_command
def version_update(name, version_name, models, ic, settings, inference_flags, strict, workspace_choice, output,
                   **traffic) -> None:
    """Change a version: traffic flags apply at once; models, code or settings by a rolling update (its new
    replicas take over once ready). --tag adds to the version's tags."""
    endpoint = _endpoint(workspace_choice, name)
    if "tags" in settings and version_name in endpoint.versions:
        settings = {**settings, "tags": {**endpoint.versions[version_name].tags, **settings["tags"]}}
    arguments = _version_arguments(endpoint, models, ic, settings, inference_flags, strict, traffic)
    endpoint.update_version(version_name, **arguments)
    emit(output, endpoint.serialize() if output == "json" else _versions(endpoint, output), VERSION_COLUMNS)


@version_group.command("delete")
@name_option
@version_option
@workspace_option
@output_option
@friendly_errors
def version_delete(name, version_name, workspace_choice, output) -> None:
    """Delete a version (not the default one while others exist: make another one the default first)."""
    endpoint = _endpoint(workspace_choice, name)
    endpoint.delete_version(version_name)
    emit(output, endpoint.serialize() if output == "json" else _versions(endpoint, output), VERSION_COLUMNS)


@version_group.command("list")
@name_option
@workspace_option
@output_option
@friendly_errors
def version_list(name, workspace_choice, output) -> None:
    """List an endpoint's versions with their state, share, default and control flags and mirror share."""
    emit(output, _versions(_endpoint(workspace_choice, name), output), VERSION_COLUMNS)


def _models(workspace, ids) -> list:
    """``Model`` objects for ``NAME:VERSION`` (or ``NAME``: the latest version) flag values."""
    from ..sdk.model import Model

    return [Model(workspace, id=m) if ":" in m else Model(workspace, m) for m in ids]
