"""``modelport environment register|list|show|build``."""

from __future__ import annotations

import click

from .output import emit, friendly_errors, output_option
from .workspace_options import workspace_from, workspace_option

COLUMNS = ["name", "version", "python", "pip_packages"]


def _row(env) -> dict:
    deps = env.python.conda_dependencies
    python = next((p.split("=", 1)[1] for p in deps.conda_packages if p.startswith("python=")), "")
    return {"name": env.name, "version": env.version, "python": python,
            "pip_packages": " ".join(deps.pip_packages), "spec": env._to_dict()}


@click.group("environment")
def environment_group() -> None:
    """Register, list and build environments."""


@environment_group.command("register")
@click.option("--name", "-n", default=None, help="Name (default: the name inside a JSON file).")
@click.option("--conda-file", type=click.Path(dir_okay=False), default=None, help="A conda environment YAML.")
@click.option("--pip-requirements", type=click.Path(dir_okay=False), default=None, help="A requirements.txt.")
@click.option("--environment-file", type=click.Path(dir_okay=False), default=None,
              help="An Azure ML Environment JSON object (as in inferenceconfig.json).")
@workspace_option
@output_option
@friendly_errors
def register(name, conda_file, pip_requirements, environment_file, workspace_choice, output) -> None:
    """Register an environment from one of: a conda YAML, a requirements file, an Environment JSON."""
    from ..sdk.environment import Environment

    given = [f for f in (conda_file, pip_requirements, environment_file) if f]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --conda-file, --pip-requirements, --environment-file")
    if environment_file:
        env = Environment.load_from_file(environment_file)  # the key rule; condaDependenciesFile read
        if name:
            env.name = name
    elif not name:
        raise click.UsageError("--name is required with --conda-file or --pip-requirements")
    elif conda_file:
        env = Environment.from_conda_specification(name, conda_file)
    else:
        env = Environment.from_pip_requirements(name, pip_requirements)
    emit(output, _row(env.register(workspace_from(workspace_choice))), COLUMNS)


@environment_group.command("list")
@workspace_option
@output_option
@friendly_errors
def list_environments(workspace_choice, output) -> None:
    """List the latest version of each environment."""
    from ..sdk.environment import Environment

    emit(output, [_row(e) for e in Environment.list(workspace_from(workspace_choice)).values()], COLUMNS)


@environment_group.command("show")
@click.option("--name", "-n", required=True)
@click.option("--version", "-v", default=None)
@workspace_option
@output_option
@friendly_errors
def show(name, version, workspace_choice, output) -> None:
    """Show one environment version."""
    from ..sdk.environment import Environment

    emit(output, _row(Environment.get(workspace_from(workspace_choice), name, version)), COLUMNS)


@environment_group.command("build")
@click.option("--name", "-n", required=True)
@click.option("--version", "-v", default=None)
@click.option("--quiet", "-q", is_flag=True, help="No build output, only the result.")
@workspace_option
@friendly_errors
def build(name, version, quiet, workspace_choice) -> None:
    """Build (or reuse) the environment's local virtual environment."""
    from ..sdk.environment import Environment

    workspace = workspace_from(workspace_choice)
    result = Environment.get(workspace, name, version).build_local(workspace, show_output=not quiet)
    click.echo(result["python"])
