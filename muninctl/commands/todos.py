"""`muninctl todos`: the to-dos found in all mail, the most pressing first."""

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
@click.option("--all", "everything", is_flag=True, help="Closed to-dos too, with their state.")
@click.option("--overdue", is_flag=True, help="Only open to-dos past their due date.")
@context.json_option
def command(limit: int, everything: bool, overdue: bool) -> None:
    """List open to-dos: dated ones by date, then by priority; overdue ones are marked.

    ID is the to-do's own id, for `muninctl done ID` and `undone ID`; MSG is its message's.
    """
    if everything and overdue:
        raise click.UsageError("--all and --overdue do not go together")
    args: dict[str, Any] = {"limit": limit}
    if everything:
        args["all"] = True
    if overdue:
        args["overdue"] = True
    todos = context.call("todos", args)["todos"]
    if context.options().json:
        output.echo_json_lines(todos)
    elif todos:
        output.echo_lines(table(todos, with_state=everything))
    else:
        click.echo("no overdue to-dos" if overdue else "no open to-dos")


HEADERS = ("ID", "DUE", "PRIORITY", "MSG", "TASK")


def table(todos: list[dict[str, Any]], *, with_state: bool = False) -> list[str]:
    headers = ("ID", "STATE", *HEADERS[1:]) if with_state else HEADERS
    return output.table(headers, [_row(t, with_state) for t in todos])


def _row(t: dict[str, Any], with_state: bool) -> list[output.Cell]:
    row: list[output.Cell] = [str(t.get("todo_id", "-"))]
    if with_state:
        done = t.get("done", False)
        row.append(("done", "green") if done else "open")
    return [
        *row,
        _due(t),
        (t["priority"], output.PRIORITY_COLOURS.get(t["priority"])),
        str(t["id"]),
        t["task"],
    ]


def _due(t: dict[str, Any]) -> output.Cell:
    if t.get("overdue"):
        return (f"{t['due']} OVERDUE", "red")
    return str(t["due"] or "-")
