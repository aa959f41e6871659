"""`muninctl reload`: the same as `systemctl reload muninmaild` (SIGHUP)."""

from __future__ import annotations

import click

from muninctl import context, output


@click.command("reload")
@context.json_option
def command() -> None:
    """Re-read the configuration file.

    A broken file is refused and the running configuration stays; the journal says which.
    """
    result = context.call("reload")
    if context.options().json:
        output.echo_json(result)
    else:
        click.echo("reload requested; the journal tells whether the new configuration was taken")
