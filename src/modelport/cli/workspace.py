"""``modelport workspace create|show``."""

from __future__ import annotations

import click

from .output import emit, friendly_errors, output_option
from .workspace_options import workspace_from, workspace_option


@click.group("workspace")
def workspace_group() -> None:
    """Create and inspect workspaces."""


@workspace_group.command("create")
@click.option("--name", "-n", required=True, help="Workspace name.")
@click.option("--path", "-p", default=".", type=click.Path(file_okay=False), help="Folder to create it in.")
@click.option("--db", "store_url", default=None, help="Database URL (default: a SQLite file in the workspace).")
@click.option("--exist-ok", is_flag=True, help="Succeed if this workspace exists already.")
@output_option
@friendly_errors
def create(name, path, store_url, exist_ok, output) -> None:
    """Create a workspace in PATH/.modelport."""
    from ..sdk.workspace import Workspace

    workspace = Workspace.create(name, path, exist_ok=exist_ok, store_url=store_url)
    emit(output, workspace.get_details(), ["name", "path", "store", "created"])


@workspace_group.command("show")
@workspace_option
@output_option
@friendly_errors
def show(workspace_choice, output) -> None:
    """Show the workspace of this folder (or --workspace)."""
    emit(output, workspace_from(workspace_choice).get_details(), ["name", "path", "store", "created"])
