"""`muninctl requeue`: send held (failed) messages, or any given ones, through the model again."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import click

from muninctl import context, output
from muninmaild import protocol


@click.command("requeue")
@click.argument("ids", nargs=-1)
@click.option("--failed", is_flag=True, help="Requeue every failed message.")
@context.json_option
def command(ids: tuple[str, ...], failed: bool) -> None:
    """Requeue messages by id, every failed one (--failed), or ids read from stdin (-).

    Standard input may hold ids separated by white space, or the JSON Lines of
    `muninctl list --json`, so `muninctl list --status failed --json | muninctl requeue -` works.
    Attempts start again from zero. A message being processed right now is left alone.
    """
    if failed == bool(ids):
        raise click.UsageError("give message ids, - to read them from stdin, or --failed")
    wanted = None if failed else parse_ids(ids, sys.stdin.read)
    if wanted == []:
        raise click.UsageError("no message ids on standard input")
    count = _requeue(wanted)
    if context.options().json:
        output.echo_json({"requeued": count})
        return
    click.echo(f"requeued {count} message(s)")
    if wanted is not None and count < len(wanted):
        missed = len(wanted) - count
        click.echo(f"{missed} id(s) not requeued: unknown, or being processed right now", err=True)


def _requeue(ids: list[int] | None) -> int:
    with context.connect() as conn:
        if ids is None:
            return int(conn.call("requeue", {"failed": True})["requeued"])
        step = protocol.MAX_IDS
        chunks = [ids[i : i + step] for i in range(0, len(ids), step)]
        return sum(int(conn.call("requeue", {"ids": c})["requeued"]) for c in chunks)


def parse_ids(args: tuple[str, ...], read_stdin: Callable[[], str]) -> list[int]:
    words: list[str] = []
    for arg in args:
        if arg == "-":
            words += _words(read_stdin())
        else:
            words.append(arg)
    try:
        ids = [int(w) for w in words]
    except ValueError as exc:
        raise click.BadParameter(f"not a message id: {exc}", param_hint="IDS") from None
    if any(not 0 < i <= protocol.MAX_ID for i in ids):
        raise click.BadParameter("message ids are positive integers", param_hint="IDS")
    return list(dict.fromkeys(ids))


def _words(text: str) -> list[str]:
    words: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                words.append(str(json.loads(line)["id"]))
            except (ValueError, KeyError, TypeError):
                raise click.BadParameter(f"no id in {line[:60]!r}", param_hint="-") from None
        else:
            words += line.split()
    return words
