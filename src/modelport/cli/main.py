"""``modelport``: the command line entry point; each verb group lives in its own module."""

import click

from .. import __version__
from ..runtime.cli import serve_command
from .computetarget import computetarget_group
from .endpoint import endpoint_group
from .environment import environment_group
from .kubernetes import kubernetes_group
from .model import model_group
from .server import server_group
from .service import deploy_command, service_group
from .studio import studio_command
from .workspace import workspace_group


@click.group()
@click.version_option(__version__, prog_name="modelport")
def cli() -> None:
    """Deploy Azure ML v1 style models (score.py with init()/run()) as web services."""


for command in (serve_command, server_group, workspace_group, model_group, environment_group, service_group,
                endpoint_group, computetarget_group, kubernetes_group, studio_command):
    cli.add_command(command)

model_group.add_command(deploy_command)

if __name__ == "__main__":
    cli()
