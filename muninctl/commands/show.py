"""`muninctl show ID`: one message with what the model made of it."""

from __future__ import annotations

from typing import Any

import click

from muninctl import context, output
from muninctl.commands.listing import message_lines


@click.command("show")
@click.argument("message_id", metavar="ID", type=click.IntRange(min=1))
@context.json_option
def command(message_id: int) -> None:
    """Show one message: headers, summary, flags, to-dos, attempts, last error, tokens."""
    message = context.call("show", {"id": message_id})["message"]
    if context.options().json:
        output.echo_json(message)
    else:
        output.echo_lines(render(message))


SENT = {
    "all": "headers, subject, attachment names and body",
    "headers": "headers, subject and attachment names only (send_body = false)",
}


def render(m: dict[str, Any]) -> list[str]:
    status = output.paint(m["status"], output.STATUS_COLOURS.get(m["status"]))
    lines = [
        output.paint(f"#{m['id']} {m['subject'] or '(no subject)'}", None, bold=True),
        f"  status:  {status}, {m['attempts']} attempt(s)"
        + (f", next {output.when(m['next_attempt_at'])}" if m.get("next_attempt_at") else ""),
        f"  account: {m['account']} / {m['mailbox']} (uid {m['uid']})",
        f"  to:      {output.text_or_dash(m['to'])}",
    ]
    if m.get("cc"):
        lines.append(f"  cc:      {m['cc']}")
    lines += message_lines(m)
    if m.get("keywords"):  # accounts that write keywords; older daemons do not send it
        lines.append(f"  keywords: {keywords(m['keywords'])}")
    lines.append(f"  tokens:  {m['tokens']['in']} in, {m['tokens']['out']} out{_no_request(m)}")
    if m.get("sent"):  # older daemons do not send it; None before it was recorded
        lines.append(f"  sent:    {SENT.get(m['sent'], m['sent'])}")
    lines.append(
        f"  queued:  {output.when(m['queued_at'])}, updated {output.when(m['updated_at'])}"
    )
    for a in m.get("attachments") or []:
        lines.append(
            f"  attachment: {a['filename'] or '(unnamed)'} ({a['type']}, {a['size']} bytes)"
        )
    if m.get("headers"):
        lines.append("  headers:")
        lines += [f"    {name}: {value}" for name, value in sorted(m["headers"].items())]
    return lines


def _no_request(m: dict[str, Any]) -> str:
    """Why an answer spent no tokens: it was cached, or the message was skipped."""
    return {"cache": " (answered from the cache)", "skipped": " (skipped)"}.get(
        m.get("origin") or "", ""
    )


def keywords(k: dict[str, Any]) -> str:
    """What was written to the message on the server, when, or why not (yet)."""
    written = " ".join(k["keywords"])
    if k["state"] == "written":
        note = f" ({k['note']})" if k.get("note") else ""
        return f"{written} written {output.when(k['written_at'])}{note}"
    if k["state"] == "skipped":
        return output.paint(f"not written: {k['note']}", "yellow")
    waiting = f": {k['note']}" if k.get("note") else ""
    return output.paint(f"to be written{waiting}", "yellow" if k.get("note") else None)
