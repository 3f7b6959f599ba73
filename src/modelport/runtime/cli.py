"""``modelport serve`` / ``python -m modelport.runtime``: run the scoring runtime in the foreground."""

from __future__ import annotations

import sys

import click

from .settings import RuntimeSettings, SettingsError


@click.command("serve")
@click.option("--entry-script", help="The entry script with init() and run() (AZUREML_ENTRY_SCRIPT).")
@click.option("--source-dir", type=click.Path(), help="Folder holding the entry script and its files; the app root.")
@click.option("--model-dir", type=click.Path(), help="AZUREML_MODEL_DIR: a model folder, used as it is.")
@click.option("--model", "models", multiple=True, metavar="NAME:VERSION=PATH",
              help="Lay out a model as azureml-models/NAME/VERSION (repeatable).")
@click.option("--host", default=None, help="Address to listen on.  [default: 127.0.0.1]")
@click.option("--port", type=int, default=None, help="Port to listen on.  [default: 5001]")
@click.option("--workers", type=int, default=None, help="Worker processes (WORKER_COUNT).  [default: 1]")
def serve_command(entry_script, source_dir, model_dir, models, host, port, workers) -> None:
    """Serve an Azure ML entry script (score.py) over HTTP, like azmlinfsrv."""
    from .supervisor import PortInUseError, serve

    try:
        settings = RuntimeSettings.from_args(entry_script, source_dir, model_dir, models, host, port, workers)
        code = serve(settings)
    except (SettingsError, PortInUseError) as err:
        click.echo(f"Error: {err}", err=True)
        sys.exit(2)
    sys.exit(code)
