"""The digest as text (what `muninctl digest` prints, and the message's text part) and as HTML
(the message's other alternative). Both are made from the same JSON, so they say the same."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

Json = dict[str, Any]
TITLE = "muninmail digest"
ATTENTION_TITLE = "Needs a reply, urgent, meeting requests"
OTHER_TITLE = "Everything else"
TODOS_TITLE = "Open to-dos"


def local_time(value: str | None) -> str:
    """An ISO time of the protocol in local time: `Thu 3 Dec 2026 07:00`."""
    if not value:
        return "-"
    when = datetime.fromisoformat(value).astimezone()
    return f"{when:%a} {when.day} {when:%b %Y %H:%M}"


def subject(d: Json) -> str:
    counts = d["counts"]
    until = datetime.fromisoformat(d["period"]["until"]).astimezone()
    scope = f" ({d['account']})" if d["account"] else ""
    return (
        f"{TITLE}{scope}: {counts['attention']} to act on, {counts['messages']} message(s), "
        f"{until:%a} {until.day} {until:%b %Y}"
    )


def heading(d: Json) -> str:
    period = d["period"]
    scope = f"account {d['account']}" if d["account"] else "all accounts"
    return (
        f"{TITLE}, {scope}: {d['counts']['messages']} message(s) from "
        f"{local_time(period['since'])} to {local_time(period['until'])}"
    )


# -- text -----------------------------------------------------------------------------------------


def text(d: Json) -> str:
    counts = d["counts"]
    lines = [heading(d), ""]
    lines.append(f"{ATTENTION_TITLE}: {counts['attention']}")
    for m in d["attention"]:
        lines.append(f"  #{m['id']} [{', '.join(m['labels'])}] {m['sender']}: {_subject(m)}")
        if m["summary"]:
            lines.append(f"      {m['summary']}")
    lines += ["", f"{OTHER_TITLE}: {counts['other'] + counts['bulk']}{_bulk_note(counts)}"]
    for m in d["other"]:
        labels = f" [{', '.join(m['labels'])}]" if m["labels"] else ""
        lines.append(f"  #{m['id']}{labels} {m['sender']}: {_subject(m)}")
    for g in d["bulk"]:
        lines.append(f"  {_bulk_line(g)}")
    lines += ["", f"{TODOS_TITLE}: {counts['todos']}{_overdue_note(counts)}"]
    for t in d["todos"]:
        mark = "OVERDUE" if t["overdue"] else "       "
        due = t["due"] or "no date   "
        lines.append(f"  {mark} {due}  {t['priority']:<6}  {t['task']} ({_todo_ref(t)})")
    if d["more_todos"]:
        lines.append(f"  ... and {d['more_todos']} more: muninctl todos")
    return "\n".join(lines) + "\n"


def _subject(m: Json) -> str:
    return str(m["subject"]) or "(no subject)"


def _bulk_note(counts: Json) -> str:
    if not counts["bulk"]:
        return ""
    return (
        f" ({counts['bulk']} from mailing lists and newsletters, "
        f"one line per sender: {counts['bulk_senders']})"
    )


def _bulk_line(g: Json) -> str:
    ids = ", ".join(f"#{i}" for i in g["ids"])
    return f"{g['sender']}: {g['count']} bulk message(s) ({ids}), latest: {g['latest_subject']}"


def _overdue_note(counts: Json) -> str:
    return f" ({counts['overdue']} overdue)" if counts["overdue"] else ""


def _todo_ref(t: Json) -> str:
    return f"to-do {t['todo_id']}, message #{t['id']}"


# -- HTML -----------------------------------------------------------------------------------------


def html(d: Json) -> str:
    counts = d["counts"]
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8">',
        f"<title>{escape(subject(d))}</title></head>",
        '<body style="font-family: sans-serif; line-height: 1.4">',
        f"<p>{escape(heading(d))}</p>",
        f"<h2>{ATTENTION_TITLE}: {counts['attention']}</h2>",
        _list(_attention_item(m) for m in d["attention"]),
        f"<h2>{OTHER_TITLE}: {counts['other'] + counts['bulk']}{escape(_bulk_note(counts))}</h2>",
        _list([*(_other_item(m) for m in d["other"]), *(escape(_bulk_line(g)) for g in d["bulk"])]),
        f"<h2>{TODOS_TITLE}: {counts['todos']}{escape(_overdue_note(counts))}</h2>",
        _list(_todo_item(t) for t in d["todos"]),
    ]
    if d["more_todos"]:
        parts.append(f"<p>... and {d['more_todos']} more: <code>muninctl todos</code></p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _list(items: Any) -> str:
    rows = [f"<li>{item}</li>" for item in items]
    return "<ul>\n" + "\n".join(rows) + "\n</ul>" if rows else "<p>None.</p>"


def _attention_item(m: Json) -> str:
    head = (
        f"#{m['id']} <strong>[{escape(', '.join(m['labels']))}]</strong> "
        f"{escape(m['sender'])}: {escape(_subject(m))}"
    )
    return f"{head}<br><small>{escape(m['summary'])}</small>" if m["summary"] else head


def _other_item(m: Json) -> str:
    labels = f" [{escape(', '.join(m['labels']))}]" if m["labels"] else ""
    return f"#{m['id']}{labels} {escape(m['sender'])}: {escape(_subject(m))}"


def _todo_item(t: Json) -> str:
    due = escape(t["due"] or "no date")
    mark = '<strong style="color: #b00">OVERDUE</strong> ' if t["overdue"] else ""
    task = f"{escape(t['task'])} <small>({escape(_todo_ref(t))})</small>"
    return f"{mark}{due} [{escape(t['priority'])}] {task}"
