"""``modelport studio``: open the workspace's web UI."""

from __future__ import annotations

import os
import sys
import webbrowser

import click

from .output import friendly_errors
from .workspace_options import workspace_option


def _has_graphical_browser() -> bool:
    """Whether a browser window can open here (a console browser would take over the terminal)."""
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


@click.command("studio")
@click.option("--no-browser", is_flag=True, help="Print the sign-in link only; do not open a browser.")
@click.option("--end-sessions", is_flag=True, help="End every Studio session (every browser signs in again); "
              "prints no link.")
@workspace_option
@friendly_errors
def studio_command(no_browser, end_sessions, workspace_choice) -> None:
    """Open Studio, the workspace's web UI, served by its control plane.

    Starts the control plane if none runs, prints Studio's address and a one-time sign-in link (valid once,
    for 5 minutes), and opens the link in the default browser when there is one. Without the link, sign in
    with the workspace token (the file .modelport/token). Signing out ends that browser's session;
    --end-sessions ends them all.
    """
    from ..api.client import Client

    workspace = workspace_choice.directory()
    client = Client(workspace)
    try:
        if end_sessions:
            client.request("DELETE", "/studio/sessions")
            click.echo(f"Ended every Studio session of workspace '{workspace.name}'.")
            return
        link = client.json("POST", "/studio/links")["url"]
    finally:
        client.close()
    click.echo(f"Studio of workspace '{workspace.name}': {link.split('/studio/')[0]}/studio/")
    click.echo(f"Sign in once with this link (valid for 5 minutes): {link}")
    if not no_browser and _has_graphical_browser() and webbrowser.open(link):
        click.echo("Opened it in your browser.")
