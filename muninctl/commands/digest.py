"""`muninctl digest`: the period's mail and the open to-dos, or delivered into a mailbox."""

from __future__ import annotations

import re
from typing import Any

import click

from muninctl import context, output
from muninmaild import protocol

UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
AGE = re.compile(r"^(\d+)([mhdw])$")
DELIVER_WAIT_S = 120.0  # the daemon tries a broken connection again before it gives up


def seconds(text: str) -> int:
    match = AGE.match(text.strip())
    value = int(match[1]) * UNITS[match[2]] if match else 0
    if not 60 <= value <= protocol.MAX_DIGEST_S:
        raise click.BadParameter(
            f"{text!r}: use a period such as 30m, 24h, 7d or 2w (1 minute to a year)",
            param_hint="--since",
        )
    return value


@click.command("digest")
@click.option("--since", default="24h", show_default=True, metavar="AGE", help="The period.")
@click.option("--account", metavar="NAME", help="Only this account's mail and to-dos.")
@click.option(
    "--deliver",
    is_flag=True,
    help="Put the digest into the mailbox of [digest] in the daemon's configuration, once a "
    "period.",
)
@context.json_option
def command(since: str, account: str | None, deliver: bool) -> None:
    """The period's mail: what needs a reply, is urgent or a meeting request first, each with
    its summary; then the rest, bulk mail one line per sender; then the open to-dos by due date.

    With --deliver the daemon appends the same digest to a mailbox as a message; a second
    delivery for the same period appends nothing and says so.
    """
    args: dict[str, Any] = {"seconds": seconds(since)}
    if account:
        args["account"] = account
    if deliver:
        args["deliver"] = True
    result = context.call("digest", args, wait=DELIVER_WAIT_S if deliver else 0)
    if context.options().json:
        output.echo_json(result)
    elif deliver:
        click.echo(delivered(result["delivery"]))
    else:
        click.echo(result["text"], nl=False)


def delivered(d: dict[str, Any]) -> str:
    where = f"{d['account']}/{d['mailbox']}"
    if d["appended"]:
        return f"digest {d['period']} delivered to {where}"
    return (
        f"the digest {d['period']} is already in {where} (delivered "
        f"{output.when(d['delivered_at'])}): nothing appended"
    )
