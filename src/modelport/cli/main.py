"""``modelport``: the command line entry point; each verb group lives in its own module."""

import click

from .. import __version__
from ..runtime.cli import serve_command


@click.group()
@click.version_option(__version__, prog_name="modelport")
def cli() -> None:
    """Deploy Azure ML v1 style models (score.py with init()/run()) as web services."""


cli.add_command(serve_command)

if __name__ == "__main__":
    cli()
