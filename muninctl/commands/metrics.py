"""`muninctl metrics`: the daemon's Prometheus metrics as text, for node_exporter's textfile
collector on hosts that do not scrape the daemon itself (docs/monitoring.md)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import click

from muninctl import context, exits, output
from muninctl.exits import Failure


@click.command("metrics")
@click.option(
    "--output",
    "-o",
    "target",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write FILE (e.g. .../textfile/muninmail.prom) whole or not at all: a temporary file "
    "beside it, renamed over it.",
)
@context.json_option
def command(target: Path | None) -> None:
    """Print the daemon's metrics in the Prometheus text format."""
    result = context.call("metrics")
    if context.options().json:
        output.echo_json(result)
    elif target is None:
        click.echo(result["text"], nl=False)
    else:
        write_whole(target, result["text"])


def write_whole(target: Path, text: str) -> None:
    """Readers (node_exporter) see the old file or the new one, never half of one. The
    temporary name does not end in .prom, so the collector never reads it."""
    folder = target.parent
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=folder)
    except OSError as exc:
        raise Failure(f"cannot write in {folder}: {exc.strerror}", exits.CANNOT_WRITE) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(temporary, 0o644)  # node_exporter runs as a user of its own
        os.replace(temporary, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise Failure(f"cannot write {target}: {exc.strerror}", exits.CANNOT_WRITE) from None
