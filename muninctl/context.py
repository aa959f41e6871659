"""What every command shares: the global options, `--json`, and one call to the daemon."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from muninctl.client import Connection

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Options:
    socket: str
    timeout: float
    json: bool = False


def options() -> Options:
    found = click.get_current_context().find_object(Options)
    assert found is not None, "commands run under the muninctl group"
    return found


def _set_json(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        found = ctx.find_object(Options)
        if found is not None:
            found.json = True


def json_option(f: F) -> F:
    """`--json` after the command name too, as well as before it."""
    return click.option(
        "--json",
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        help="Print the daemon's answer as JSON (JSON Lines for lists).",
    )(f)


def connect() -> Connection:
    opts = options()
    return Connection(opts.socket, opts.timeout)


def call(cmd: str, args: Mapping[str, Any] | None = None, *, wait: float = 0) -> dict[str, Any]:
    """One request on a fresh connection; `wait` is added to the answer's deadline."""
    with connect() as conn:
        return conn.call(cmd, args, timeout=conn.timeout + wait if wait else None)
