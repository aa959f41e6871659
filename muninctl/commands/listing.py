"""`muninctl list`: the queue's messages, newest first."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from muninctl import context, output
from muninmaild import protocol

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
RELATIVE = re.compile(r"^(\d+)([smhdw])$")


def since_value(text: str, now: datetime | None = None) -> str:
    """`2h`, `3d` (ago), or an ISO date or time, as the ISO time the protocol takes."""
    match = RELATIVE.match(text.strip())
    if match:
        ago = timedelta(seconds=int(match[1]) * UNITS[match[2]])
        return ((now or datetime.now(UTC)) - ago).isoformat(timespec="seconds")
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: use an age such as 30m, 2h, 7d, or a date such as 2026-11-29"
        ) from None
    return (when if when.tzinfo else when.astimezone()).isoformat()


@click.command("list")
@click.option("--status", type=click.Choice(protocol.STATUSES), help="Only messages in this state.")
@click.option("--since", metavar="WHEN", help="Queued since: an age (30m, 2h, 7d) or a date/time.")
@click.option(
    "--limit",
    type=click.IntRange(1, protocol.MAX_LIMIT),
    default=protocol.DEFAULT_LIST_LIMIT,
    show_default=True,
)
@click.option("--details", is_flag=True, help="Add each message's summary, flags and to-dos.")
@context.json_option
def command(status: str | None, since: str | None, limit: int, details: bool) -> None:
    """List messages, newest first."""
    args: dict[str, Any] = {"limit": limit, "details": details}
    if status:
        args["status"] = status
    if since:
        args["since"] = since_value(since)
    messages = context.call("list", args)["messages"]
    if context.options().json:
        output.echo_json_lines(messages)
    elif details:
        output.echo_lines(_details(messages))
    elif messages:
        output.echo_lines(output.table(HEADERS, [_row(m) for m in messages]))
    else:
        click.echo("no messages")


HEADERS = ("ID", "STATUS", "ATT", "DATE", "FROM", "FLAGS", "SUBJECT")


def _row(m: dict[str, Any]) -> list[output.Cell]:
    return [
        str(m["id"]),
        (m["status"], output.STATUS_COLOURS.get(m["status"])),
        str(m["attempts"]),
        output.when(m["date"]),
        output.sender(m["from"]),
        ",".join(m["flags"]) or "-",
        m["subject"] or "(no subject)",
    ]


def _details(messages: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for m in messages:
        if lines:
            lines.append("")
        status = output.paint(m["status"], output.STATUS_COLOURS.get(m["status"]))
        title = output.paint(f"#{m['id']} {m['subject'] or '(no subject)'}", None, bold=True)
        lines.append(f"{title}  [{status}]")
        lines += message_lines(m)
    return lines


def message_lines(m: dict[str, Any]) -> list[str]:
    """The indented detail lines shared by `list --details` and `show`."""
    lines = [f"  from:    {m['from']}", f"  date:    {output.when(m['date'])}"]
    if m.get("summary"):
        lines.append(f"  summary: {m['summary']}")
    if m.get("skip_reason"):
        lines.append(f"  note:    {m['skip_reason']}")
    if m.get("origin") in ORIGIN_WORDS:  # older daemons do not send it
        lines.append(f"  answer:  {origin_line(m)}")
    if m.get("flags"):
        lines.append(f"  flags:   {', '.join(m['flags'])}")
    for todo in m.get("todos") or []:
        due = f" due {todo['due']}" if todo.get("due") else ""
        priority = output.paint(todo["priority"], output.PRIORITY_COLOURS.get(todo["priority"]))
        closed = " (done)" if todo.get("done") else ""
        lines.append(f"  todo [{priority}]{due}: {todo['task']}{closed}")
    if m.get("last_error"):
        lines.append(f"  error:   {output.paint(m['last_error'], 'red')}")
    return lines


ORIGIN_WORDS = {
    "cache": "from the answer cache: the same request was answered before (no model request)",
    "skipped": "by the offline rules, the model was not asked (ai.skip: {note})",
}


def origin_line(m: dict[str, Any]) -> str:
    """Where an answer that cost no request came from (`origin` "cache" or "skipped")."""
    return ORIGIN_WORDS[m["origin"]].format(note=m.get("origin_note") or "?")
