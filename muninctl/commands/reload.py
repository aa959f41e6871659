"""`muninctl reload`: the same as `systemctl reload muninmaild` (SIGHUP)."""

from __future__ import annotations

import click

from muninctl import context, output


@click.command("reload")
@context.json_option
def command() -> None:
    """Re-read the configuration file.

    A broken file is refused with the reason (exit status 1) and the running configuration
    stays. Changes to [database], [[accounts]] and [ai] are named: they need a restart.
    """
    result = context.call("reload")
    if context.options().json:
        output.echo_json(result)
        return
    restart = result.get("restart_needed") or []
    if restart:
        sections = ", ".join(restart)
        click.echo(f"reloaded; changes to {sections} take effect after a restart")
    else:
        click.echo("reloaded")
