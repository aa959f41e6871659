"""Ids given on the command line, where `-` reads more from standard input: ids separated by
white space, or JSON Lines with the id under a key (what `list --json` and `todos --json` print).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import click

from muninmaild import protocol


def parse_ids(
    args: tuple[str, ...], read_stdin: Callable[[], str], *, key: str, what: str
) -> list[int]:
    """The ids in order, each once; `what` names them in errors ("message", "to-do")."""
    words: list[str] = []
    for arg in args:
        words += _words(read_stdin(), key) if arg == "-" else [arg]
    try:
        ids = [int(w) for w in words]
    except ValueError as exc:
        raise click.BadParameter(f"not a {what} id: {exc}", param_hint="IDS") from None
    if any(not 0 < i <= protocol.MAX_ID for i in ids):
        raise click.BadParameter(f"{what} ids are positive integers", param_hint="IDS")
    return list(dict.fromkeys(ids))


def _words(text: str, key: str) -> list[str]:
    words: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                words.append(str(json.loads(line)[key]))
            except (ValueError, KeyError, TypeError):
                raise click.BadParameter(f"no {key} in {line[:60]!r}", param_hint="-") from None
        else:
            words += line.split()
    return words
