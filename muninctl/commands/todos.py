"""`muninctl todos`: the open to-dos found in all mail, the most pressing first."""

from __future__ import annotations

from typing import Any

import click

from muninctl import context, output
from muninmaild import protocol


@click.command("todos")
@click.option(
    "--limit",
    type=click.IntRange(1, protocol.MAX_LIMIT),
    default=protocol.DEFAULT_TODOS_LIMIT,
    show_default=True,
)
@context.json_option
def command(limit: int) -> None:
    """List open to-dos: dated ones by date, then by priority."""
    todos = context.call("todos", {"limit": limit})["todos"]
    if context.options().json:
        output.echo_json_lines(todos)
    elif todos:
        output.echo_lines(output.table(HEADERS, [_row(t) for t in todos]))
    else:
        click.echo("no open to-dos")


HEADERS = ("DUE", "PRIORITY", "MSG", "TASK")


def _row(t: dict[str, Any]) -> list[output.Cell]:
    return [
        t["due"] or "-",
        (t["priority"], output.PRIORITY_COLOURS.get(t["priority"])),
        str(t["id"]),
        t["task"],
    ]
