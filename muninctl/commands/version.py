"""`muninctl version`: both ends' versions and the protocol they speak."""

from __future__ import annotations

import click

from muninctl import __version__, context, output


@click.command("version")
@context.json_option
def command() -> None:
    """Show the versions of muninctl and of the running daemon."""
    result = context.call("version")
    if context.options().json:
        output.echo_json(result)
        return
    click.echo(f"muninctl {__version__}")
    click.echo(f"muninmaild {result['version']} (control protocol {result['protocol']})")
