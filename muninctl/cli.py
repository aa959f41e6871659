"""`muninctl`: the command-line client of muninmaild's control socket.

It imports the shared protocol module and click, nothing of the daemon (a test checks), so it
starts in a few tens of milliseconds.
"""

from __future__ import annotations

import sys

import click

from muninctl import __version__, context
from muninctl.client import DEFAULT_SOCKET
from muninctl.commands import (
    check,
    digest,
    done,
    fetch_now,
    listing,
    metrics,
    pause,
    ping,
    reload,
    requeue,
    show,
    status,
    todos,
    version,
    wait_idle,
)
from muninctl.exits import Failure


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--socket",
    "socket_path",
    envvar="MUNINCTL_SOCKET",
    default=DEFAULT_SOCKET,
    show_default=True,
    metavar="PATH",
    help="The daemon's control socket (also $MUNINCTL_SOCKET).",
)
@click.option("--json", "as_json", is_flag=True, help="Print answers as JSON (lists: JSON Lines).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Seconds to wait for the daemon (exit 75 when it does not answer).",
)
@click.version_option(__version__, prog_name="muninctl")
@click.pass_context
def cli(ctx: click.Context, socket_path: str, as_json: bool, timeout: float) -> None:
    """Steer muninmaild over its control socket.

    Exit codes: 0 done; 1 the daemon refused; 2 usage; 69 the daemon cannot be reached;
    73 a file could not be written; 75 timed out; 76 the peer does not speak the protocol;
    77 not allowed. `check` has its own: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
    """
    ctx.obj = context.Options(socket_path, timeout, as_json)


for _command in (
    ping.command,
    version.command,
    status.command,
    pause.pause,
    pause.resume,
    requeue.command,
    listing.command,
    show.command,
    todos.command,
    fetch_now.command,
    reload.command,
    wait_idle.command,
    metrics.command,
    check.command,
    done.done,
    done.undone,
    digest.command,
):
    cli.add_command(_command)


def main() -> None:
    try:
        cli()
    except Failure as exc:
        click.echo(f"muninctl: {exc.message}", err=True)
        sys.exit(exc.exit_code)
