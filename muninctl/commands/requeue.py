"""`muninctl requeue`: send messages through the model again, chosen by id and by filter."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from muninctl import context, id_args, output
from muninctl.commands.listing import since_value
from muninctl.exits import REFUSED, Failure
from muninmaild import protocol

FILTERS = ("since", "until", "account", "flag", "status")


@click.command("requeue")
@click.argument("ids", nargs=-1)
@click.option("--failed", is_flag=True, help="Failed messages (the same as --status failed).")
@click.option("--since", metavar="WHEN", help="Dated at or after: an age (7d) or a date/time.")
@click.option("--until", metavar="WHEN", help="Dated before: an age (7d) or a date/time.")
@click.option("--account", metavar="NAME", help="Messages of this account.")
@click.option("--flag", metavar="NAME", help="Messages the model gave this flag.")
@click.option("--status", type=click.Choice(protocol.REQUEUE_STATUSES), help="In this state.")
@click.option("--skipped", is_flag=True, help="Mail the backfill window left out.")
@click.option("--yes", is_flag=True, help=f"Requeue more than {protocol.CONFIRM_ABOVE:,}.")
@context.json_option
def command(ids: tuple[str, ...], failed: bool, skipped: bool, yes: bool, **filters: Any) -> None:
    """Requeue messages by id, ids read from stdin (-), and/or filters; all given must match.

    Standard input may hold ids separated by white space, or the JSON Lines of
    `muninctl list --json`, so `muninctl list --status failed --json | muninctl requeue -` works.
    --since and --until are the message's date (its Date header). Attempts start again from
    zero; a message being processed right now is left alone. More than 1,000 messages need
    --yes: without it nothing is requeued and the count is shown (exit 1).
    """
    args = _filter_args(failed, skipped, filters)
    if not ids and not args:
        raise click.UsageError(
            "choose messages: ids, - (ids from stdin), --failed, --status, --since, --until, "
            "--account, --flag or --skipped"
        )
    wanted = parse_ids(ids, sys.stdin.read) if ids else None
    if wanted == []:
        raise click.UsageError("no message ids on standard input")
    count = _requeue(wanted, args, yes)
    if context.options().json:
        output.echo_json({"requeued": count})
        return
    click.echo(f"requeued {count} message(s)")
    if wanted is not None and not args and count < len(wanted):
        missed = len(wanted) - count
        click.echo(f"{missed} id(s) not requeued: unknown, or being processed right now", err=True)


def _filter_args(failed: bool, skipped: bool, filters: dict[str, Any]) -> dict[str, Any]:
    args: dict[str, Any] = {k: v for k, v in filters.items() if k in FILTERS and v is not None}
    for key in ("since", "until"):
        if key in args:
            args[key] = since_value(args[key])
    if failed:
        args["failed"] = True
    if skipped:
        args["skipped"] = True
    return args


def _requeue(ids: list[int] | None, args: dict[str, Any], yes: bool) -> int:
    with context.connect() as conn:
        if ids is None:
            return int(conn.call("requeue", args | {"yes": yes})["requeued"])
        step = protocol.MAX_IDS
        chunks = [ids[i : i + step] for i in range(0, len(ids), step)]
        if len(ids) > protocol.CONFIRM_ABOVE and not yes:
            # Each request is within the limit: the whole is counted here first.
            count_only = args | {"count_only": True}
            matched = sum(
                int(conn.call("requeue", count_only | {"ids": c})["matched"]) for c in chunks
            )
            if matched > protocol.CONFIRM_ABOVE:
                raise Failure(
                    f"{matched} messages match: nothing was requeued; add --yes to requeue "
                    f"more than {protocol.CONFIRM_ABOVE} at once ({protocol.CONFIRM})",
                    REFUSED,
                )
        return sum(
            int(conn.call("requeue", args | {"ids": c, "yes": True})["requeued"]) for c in chunks
        )


def parse_ids(args: tuple[str, ...], read_stdin: Callable[[], str]) -> list[int]:
    return id_args.parse_ids(args, read_stdin, key="id", what="message")
