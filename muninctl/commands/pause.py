"""`muninctl pause` and `muninctl resume`: stop and restart fetching, processing, or both.

The state is kept in the database: it survives restarts and holds for every instance that
shares the database.
"""

from __future__ import annotations

from typing import Any

import click

from muninctl import context, output

WHAT = click.Choice(["fetcher", "processor", "both"])


def _run(cmd: str, what: str) -> None:
    result = context.call(cmd, {"what": what})
    if context.options().json:
        output.echo_json(result)
    else:
        click.echo(describe(result["paused"]))


def describe(paused: dict[str, Any]) -> str:
    return ", ".join(
        f"{name} {output.paint('paused', 'yellow') if value else 'running'}"
        for name, value in paused.items()
    )


@click.command("pause")
@click.argument("what", type=WHAT, default="both")
@context.json_option
def pause(what: str) -> None:
    """Stop fetching new mail, processing the queue, or both (the default).

    Messages being processed are finished; nothing new is claimed.
    """
    _run("pause", what)


@click.command("resume")
@click.argument("what", type=WHAT, default="both")
@context.json_option
def resume(what: str) -> None:
    """Start fetching, processing, or both (the default) again."""
    _run("resume", what)
