"""Shared CLI plumbing: ``--output table|json``, the workspace option, and one-line errors."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Sequence

import click

from ..errors import ModelportError

output_option = click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table",
                             show_default=True, help="Output format.")
workspace_option = click.option("--workspace", "-w", "workspace_path", type=click.Path(file_okay=False),
                                default=None, help="Folder of the workspace (default: this folder or a parent).")


def friendly_errors(command: Callable) -> Callable:
    """Print a ModelportError as one line on stderr and exit 1, instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except ModelportError as err:
            click.echo(f"Error: {err}", err=True)
            sys.exit(1)

    return wrapper


def workspace_from(path: str | None):
    from ..sdk.workspace import Workspace

    return Workspace.from_config(path)


def emit(output: str, rows: list[dict] | dict, columns: Sequence[str]) -> None:
    """Print records as JSON, or as a table of ``columns``."""
    if output == "json":
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, show_lines=False)
    for row in rows if isinstance(rows, list) else [rows]:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    Console().print(table)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)
