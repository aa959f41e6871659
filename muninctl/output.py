"""Rendering for people (aligned tables, colour only on a terminal) and for scripts (JSON)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import click

# A cell is its text, or its text and a colour (used only where colour is on).
Cell = str | tuple[str, str | None]
STATUS_COLOURS = {"pending": "yellow", "processing": "cyan", "completed": "green", "failed": "red"}
PRIORITY_COLOURS = {"high": "red", "medium": "yellow", "low": None}


def colour_on() -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def paint(text: str, colour: str | None, *, bold: bool = False) -> str:
    if not colour_on() or (colour is None and not bold):
        return text
    return click.style(text, fg=colour, bold=bold or None)


def table(headers: Sequence[str], rows: Iterable[Sequence[Cell]]) -> list[str]:
    """Aligned columns, two spaces apart; on a terminal the last column is cut to fit."""
    cells = [[_split(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(text)) for w, (text, _) in zip(widths, row, strict=True)]
    room = _last_column_room(widths)
    lines = [_line([(h, None) for h in headers], widths, room, bold=True)]
    lines += [_line(row, widths, room) for row in cells]
    return lines


def _split(cell: Cell) -> tuple[str, str | None]:
    text, colour = (cell, None) if isinstance(cell, str) else cell
    return " ".join(text.split()), colour  # no newline or tab may break the columns


def _last_column_room(widths: list[int]) -> int | None:
    if not sys.stdout.isatty():
        return None
    used = sum(w + 2 for w in widths[:-1])
    return max(10, shutil.get_terminal_size().columns - used)


def _line(
    row: Sequence[tuple[str, str | None]], widths: list[int], room: int | None, bold: bool = False
) -> str:
    out = []
    for i, (text, colour) in enumerate(row):
        last = i == len(row) - 1
        if last and room is not None and len(text) > room:
            text = text[: room - 1] + "…"
        padded = text if last else text.ljust(widths[i])
        out.append(paint(padded, colour, bold=bold))
    return "  ".join(out).rstrip()


def echo_lines(lines: Iterable[str]) -> None:
    for line in lines:
        click.echo(line)


def echo_json(result: Any) -> None:
    click.echo(json.dumps(result, ensure_ascii=False))


def echo_json_lines(items: Iterable[Any]) -> None:
    """JSON Lines: one object a line, so `jq -c`, `grep` and `requeue -` can take them."""
    for item in items:
        echo_json(item)


def when(value: str | None) -> str:
    """An ISO time of the protocol in local time, to the minute; `-` when unknown."""
    if not value:
        return "-"
    try:
        return datetime.fromisoformat(value).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return value


def duration(seconds: float) -> str:
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def yes_no(value: object) -> str:
    return "yes" if value else "no"


def text_or_dash(value: object) -> str:
    return str(value) if value not in (None, "") else "-"


def sender(value: str, width: int = 28) -> str:
    """The display name of an address if it has one, else the address, cut to `width`."""
    name = value.split("<", 1)[0].strip().strip('"') if "<" in value else value.strip()
    name = name or value.strip()
    return name if len(name) <= width else name[: width - 1] + "…"
