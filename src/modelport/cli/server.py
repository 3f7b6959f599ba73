"""``modelport server`` (foreground) and ``modelport server stop|status``."""

from __future__ import annotations

from pathlib import Path

import click

from .output import emit, friendly_errors, output_option, workspace_option


def _workspace_dir(path: str | None):
    from ..api.workspace_dir import WorkspaceDir

    return WorkspaceDir.at(Path(path)) if path else WorkspaceDir.find()


@click.group("server", invoke_without_command=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, help="Port (default: a free one, written to the workspace).")
@click.option("--db", "store_url", default=None, help="Database URL, e.g. postgresql://user:pw@host/db.")
@workspace_option
@click.pass_context
@friendly_errors
def server_group(ctx, host, port, store_url, workspace_path) -> None:
    """Run the workspace's control plane API in the foreground.

    SDK and CLI calls start it in the background on their own; this is for teams (a shared
    PostgreSQL database) and for debugging.
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..api.server import serve

    serve(_workspace_dir(workspace_path), host=host, port=port, store_url=store_url)


@server_group.command("stop")
@workspace_option
@friendly_errors
def stop(workspace_path) -> None:
    """Stop the background server of the workspace."""
    from ..api.server import stop as stop_server

    click.echo("Stopped." if stop_server(_workspace_dir(workspace_path)) else "No server was running.")


@server_group.command("status")
@workspace_option
@output_option
@friendly_errors
def status(workspace_path, output) -> None:
    """Show whether the workspace's server runs, its pid and URL."""
    from ..api.server import status as server_status

    emit(output, server_status(_workspace_dir(workspace_path)), ["running", "pid", "url"])
