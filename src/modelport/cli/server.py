"""``modelport server`` (foreground) and ``modelport server stop|status``."""

from __future__ import annotations

import click

from .output import emit, friendly_errors, output_option
from .workspace_options import workspace_option


@click.group("server", invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, help="Port (default: a free one, written to the workspace).")
@click.option("--db", "store_url", default=None, help="Database URL, e.g. postgresql://user:pw@host/db.")
@workspace_option
@click.pass_context
@friendly_errors
def server_group(ctx, host, port, store_url, workspace_choice) -> None:
    """Run the workspace's control plane API in the foreground.

    SDK and CLI calls start it in the background on their own; this is for teams (a shared
    PostgreSQL database) and for debugging.
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..api.server import serve

    serve(workspace_choice.directory(), host=host, port=port, store_url=store_url)


@server_group.command("stop")
@workspace_option
@friendly_errors
def stop(workspace_choice) -> None:
    """Stop the background server of the workspace."""
    from ..api.server import stop as stop_server

    click.echo("Stopped." if stop_server(workspace_choice.directory()) else "No server was running.")


@server_group.command("status")
@workspace_option
@output_option
@friendly_errors
def status(workspace_choice, output) -> None:
    """Show whether the workspace's server runs, its pid and URL."""
    from ..api.server import status as server_status

    emit(output, server_status(workspace_choice.directory()), ["running", "pid", "url"])
