"""`muninctl done ID...` and `muninctl undone ID...`: close and reopen to-dos."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import click

from muninctl import context, output
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
    words: list[str] = []
    for arg in args:
        words += _words(read_stdin()) if arg == "-" else [arg]
    try:
        ids = [int(w) for w in words]
    except ValueError as exc:
        raise click.BadParameter(f"not a to-do id: {exc}", param_hint="IDS") from None
    if any(not 0 < i <= protocol.MAX_ID for i in ids):
        raise click.BadParameter("to-do ids are positive integers", param_hint="IDS")
    return list(dict.fromkeys(ids))


def _words(text: str) -> list[str]:
    """Ids separated by white space, or JSON Lines with a `todo_id` each."""
    words: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                words.append(str(json.loads(line)["todo_id"]))
            except (ValueError, KeyError, TypeError):
                raise click.BadParameter(f"no todo_id in {line[:60]!r}", param_hint="-") from None
        else:
            words += line.split()
    return words
