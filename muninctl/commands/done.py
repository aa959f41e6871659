"""`muninctl done ID...` and `muninctl undone ID...`: close and reopen to-dos."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from muninctl import context, id_args, output
from muninctl.commands.todos import table
from muninmaild import protocol


def _command(name: str, verb: str) -> click.Command:
    @click.command(name)
    @click.argument("ids", nargs=-1, required=True)
    @context.json_option
    def command(ids: tuple[str, ...]) -> None:
        wanted = parse_ids(ids, sys.stdin.read)
        if not wanted:
            raise click.UsageError("no to-do ids on standard input")
        if len(wanted) > protocol.MAX_IDS:
            raise click.UsageError(f"at most {protocol.MAX_IDS} to-do ids at once")
        result = context.call(name, {"ids": wanted})
        if context.options().json:
            output.echo_json(result)
            return
        click.echo(f"{verb} {result['changed']} to-do(s)")
        output.echo_lines(table(result["todos"], with_state=True))

    command.help = (
        f"Mark to-dos {'done' if name == 'done' else 'open again'}, by the ids `muninctl todos` "
        "shows, or - to read them from standard input (ids, or the JSON Lines of "
        "`muninctl --json todos`). An unknown id changes nothing."
    )
    return command


done = _command("done", "closed")
undone = _command("undone", "reopened")


def parse_ids(args: tuple[str, ...], read_stdin: Callable[[], str]) -> list[int]:
    return id_args.parse_ids(args, read_stdin, key="todo_id", what="to-do")
