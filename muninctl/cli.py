"""`muninctl`: the client. The control protocol it speaks arrives with the control socket."""

from __future__ import annotations

import click

from muninctl import __version__


@click.group()
@click.version_option(__version__, prog_name="muninctl")
def cli() -> None:
    """Steer muninmaild over its control socket."""


def main() -> None:
    cli()
