"""`muninctl ping`: is the daemon there and answering?"""

from __future__ import annotations

import time

import click

from muninctl import context, output


@click.command("ping")
@context.json_option
def command() -> None:
    """Check that muninmaild answers, and how fast."""
    started = time.perf_counter()
    with context.connect() as conn:
        result = conn.call("ping")
        version = conn.server.get("version", "?")
    elapsed_ms = (time.perf_counter() - started) * 1000
    if context.options().json:
        output.echo_json(result)
    else:
        click.echo(f"pong from muninmaild {version} on {conn.path} in {elapsed_ms:.1f} ms")
