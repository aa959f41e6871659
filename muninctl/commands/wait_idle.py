"""`muninctl wait-idle`: block until there is nothing left to do, for scripts and the demo."""

from __future__ import annotations

import sys
from typing import Any

import click

from muninctl import context, output, progress
from muninctl.client import Connection
from muninmaild import protocol


@click.command("wait-idle")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True, max=protocol.MAX_WAIT_S),
    default=protocol.DEFAULT_WAIT_S,
    show_default=True,
    help="Give up after this many seconds (exit 75).",
)
@click.option(
    "--ignore-retries",
    is_flag=True,
    help="Do not wait for messages whose retry is scheduled for later.",
)
@context.json_option
def command(timeout: float, ignore_retries: bool) -> None:
    """Wait until every fetcher has caught up and nothing is pending or processing.

    A message waiting for a later retry counts as pending, so without --ignore-retries the wait
    runs into its timeout; so does a paused processor with work queued. On a terminal a line
    shows the progress meanwhile (done of total, the pace, the time left).
    """
    args = {"timeout": timeout, "ignore_retries": ignore_retries}

    opts = context.options()  # read here: click's context does not reach another thread

    def wait() -> dict[str, Any]:
        with Connection(opts.socket, opts.timeout) as conn:
            return conn.call("wait-idle", args, timeout=conn.timeout + timeout)

    on_terminal = sys.stdout.isatty() and not context.options().json
    result = progress.wait_with_progress(context.connect, wait) if on_terminal else wait()
    if context.options().json:
        output.echo_json(result)
    else:
        click.echo(f"idle (waited {result['waited_s']:.1f} s)")
