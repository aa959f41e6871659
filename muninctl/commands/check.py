"""`muninctl check`: a monitoring plugin for Nagios, Icinga and their kin (docs/monitoring.md).

One line on stdout, `MUNINMAIL STATE: reason | perfdata`, and the state as the exit status:
0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. A daemon that cannot be reached or does not answer in
time is CRITICAL; a check that cannot do its job (bad options, no permission on the socket, a
peer that is not muninmaild) is UNKNOWN, and says so on the same one line.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import click

from muninctl import context, exits
from muninctl.exits import Failure
from muninctl.health import CRITICAL, UNKNOWN, Thresholds, Verdict, evaluate

DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# Exit codes of the client that mean the daemon is down or stuck; the others are the check's own.
DOWN = (exits.UNREACHABLE, exits.TIMED_OUT)


def duration(ctx: click.Context | None, param: click.Parameter | None, value: str) -> float:
    """Seconds, or an age such as 90s, 15m, 1h, 1d."""
    match = DURATION.match(str(value).strip())
    if not match:
        raise click.BadParameter(f"{value!r}: use seconds or an age such as 90s, 15m, 1h, 1d")
    return float(match[1]) * UNITS[match[2]]


class PluginCommand(click.Command):
    """A usage error is UNKNOWN (exit 3) on one line of stdout, as the guidelines ask, not
    click's exit 2, which a monitoring system would read as CRITICAL."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            click.echo(Verdict(UNKNOWN, f"usage: {exc.format_message()}").line())
            raise click.exceptions.Exit(UNKNOWN) from None


@click.command("check", cls=PluginCommand)
@click.option(
    "--fetch-warning",
    callback=duration,
    default="15m",
    show_default=True,
    help="WARNING when an account has not fetched successfully for longer.",
)
@click.option(
    "--fetch-critical",
    callback=duration,
    default="1h",
    show_default=True,
    help="CRITICAL when an account has not fetched successfully for longer.",
)
@click.option(
    "--failed-warning",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="WARNING when more messages than this have failed and are held.",
)
def command(fetch_warning: float, fetch_critical: float, failed_warning: int) -> None:
    """Check the daemon for Nagios, Icinga and the like (exit 0 OK ... 3 UNKNOWN).

    CRITICAL: the daemon cannot be reached, its database writes fail, or an account has not
    fetched successfully for longer than --fetch-critical. WARNING: an account not for longer
    than --fetch-warning, a paused fetcher, a paused processor with mail pending, more failed
    messages than --failed-warning, or a model quota spent (or the account refused).
    """
    if fetch_critical < fetch_warning:
        verdict = Verdict(UNKNOWN, "usage: --fetch-critical is shorter than --fetch-warning")
    else:
        verdict = _verdict(Thresholds(fetch_warning, fetch_critical, failed_warning))
    click.echo(verdict.line())
    raise click.exceptions.Exit(verdict.state)


def _verdict(limits: Thresholds) -> Verdict:
    try:
        status = context.call("status")
    except Failure as exc:
        state = CRITICAL if exc.exit_code in DOWN else UNKNOWN
        return Verdict(state, exc.message)
    try:
        return evaluate(status, datetime.now(UTC), limits)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return Verdict(UNKNOWN, f"cannot read the daemon's status: {type(exc).__name__}: {exc}")
