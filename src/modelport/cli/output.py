"""Shared CLI plumbing: ``--output table|json``, one-line errors and warnings."""

from __future__ import annotations

import functools
import json
import re
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import click

from ..errors import ModelportError

OUTPUTS = ["table", "json"]
output_option = click.option("--output", "-o", type=click.Choice(OUTPUTS), default="table", show_default=True,
                             help="Output format.")
# For a service's answer, which is JSON already (az ml service run printed it so).
answer_output_option = click.option("--output", "-o", type=click.Choice(OUTPUTS), default="json",
                                    show_default=True, help="Output format.")


def friendly_errors(command: Callable) -> Callable:
    """Print a ModelportError as one line on stderr and exit 1, instead of a traceback; print each
    ``ConfigWarning`` (a user's file or setting that asks for what modelport does not do) as one
    ``Warning: ...`` line on stderr when it is raised."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            with config_warnings_shown():
                return command(*args, **kwargs)
        except ModelportError as err:
            click.echo(f"Error: {err}", err=True)
            sys.exit(1)

    return wrapper


@contextmanager
def config_warnings_shown() -> Iterator[None]:
    """Show each ConfigWarning raised inside as one ``Warning: ...`` line on stderr, when it is raised."""
    from ..sdk.files import ConfigWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always", ConfigWarning)
        show = warnings.showwarning

        def shown(message, category, filename, lineno, file=None, line=None) -> None:
            if issubclass(category, ConfigWarning):
                click.echo(f"Warning: {message}", err=True)
            else:
                show(message, category, filename, lineno, file, line)

        warnings.showwarning = shown
        yield


def emit(output: str, rows: list[dict] | dict, columns: Sequence[str]) -> None:
    """Print records as JSON, or as a table of ``columns``.

    On a terminal the table is drawn (rich); anywhere else (a pipe, a file, a CI log) it is tab-separated
    lines, a header first, never cut or wrapped, with tabs and line breaks inside a cell turned into spaces.
    """
    if output == "json":
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    records = rows if isinstance(rows, list) else [rows]
    console = Console()
    if not console.is_terminal:
        for cells in [list(columns), *([_cell(row.get(c)) for c in columns] for row in records)]:
            click.echo("\t".join(re.sub(r"[\t\r\n]+", " ", cell) for cell in cells))
        return
    table = Table(*columns, show_lines=False)
    for row in records:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    console.print(table)


def emit_answer(output: str, answer) -> None:
    """Print a service's answer: as one line of JSON, or as a table (an object: one row of its keys; a list of
    objects: a row each; anything else: a ``result`` column)."""
    if output == "json":
        click.echo(json.dumps(answer))
        return
    rows = answer if isinstance(answer, list) else [answer]
    if not all(isinstance(row, dict) for row in rows):
        rows = [{"result": json.dumps(row) if isinstance(row, list | dict) else row} for row in rows]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    emit(output, [{key: _json_cell(row.get(key)) for key in columns} for row in rows], columns)


def _json_cell(value):
    return json.dumps(value) if isinstance(value, list | dict) else value


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)
