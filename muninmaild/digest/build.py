"""A period's mail sorted for a person reading it once a day (pure functions).

First what asks for something (needs a reply, urgent, meeting requests), each with its one-line
summary; then the rest, with bulk mail (mailing lists, newsletters) collapsed to one line per
sender; then the open to-dos by due date, overdue ones marked. The input is the store's JSON of
the period's messages and of the open to-dos; the output is the JSON the control protocol
answers with, from which `render.py` writes the text and the HTML.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Any

from muninmaild.mail.headers import is_bulk, is_digest
from muninmaild.protocol import iso

Json = dict[str, Any]
# In the order they rank a message: urgent mail first.
ATTENTION = ("urgent", "requires_response", "meeting_request")
LABELS = {"urgent": "urgent", "requires_response": "reply", "meeting_request": "meeting"}
COPY_NOTE = "same Message-ID as message"  # the start of a copy's skip reason (store/ingest.py)
SUMMARY_CHARS = 200
TODO_LIMIT = 50


@dataclass(frozen=True)
class Period:
    """The digest's window [since, until) and its name: its length and the local day (hour,
    minute for shorter periods) on which it ends, and the account it is limited to. At most one
    digest of a name is delivered."""

    since: datetime
    until: datetime
    seconds: int
    key: str


def period(seconds: int, until: datetime, account: str | None = None) -> Period:
    local = until.astimezone()
    if seconds >= 86400:
        stamp = local.strftime("%Y-%m-%d")
    elif seconds >= 3600:
        stamp = local.strftime("%Y-%m-%dT%H")
    else:
        stamp = local.strftime("%Y-%m-%dT%H:%M")
    key = f"{age(seconds)}/{stamp}" + (f"/{account}" if account else "")
    return Period(until - timedelta(seconds=seconds), until, seconds, key)


def age(seconds: int) -> str:
    """A length as `muninctl digest --since` takes it: 24h, 7d, 90m."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and (unit != "d" or seconds >= 2 * 86400):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def digest(
    messages: Sequence[Json],
    todos: Sequence[Json],
    window: Period,
    account: str | None,
    now: datetime,
) -> Json:
    mail = [m for m in messages if _belongs(m)]
    attention = sorted((m for m in mail if _asks(m)), key=_rank)
    rest = [m for m in mail if not _asks(m)]
    bulk = [m for m in rest if is_bulk(m.get("headers") or {})]
    other = [m for m in rest if m not in bulk]
    shown_todos = list(todos[:TODO_LIMIT])
    senders = _by_sender(bulk)
    return {
        "period": {
            "since": iso(window.since),
            "until": iso(window.until),
            "seconds": window.seconds,
            "key": window.key,
        },
        "account": account,
        "generated_at": iso(now),
        "counts": {
            "messages": len(mail),
            "attention": len(attention),
            "other": len(other),
            "bulk": len(bulk),
            "bulk_senders": len(senders),
            "todos": len(todos),
            "overdue": sum(1 for t in todos if t.get("overdue")),
        },
        "attention": [_line(m) for m in attention],
        "other": [_line(m) for m in other],
        "bulk": senders,
        "todos": shown_todos,
        "more_todos": len(todos) - len(shown_todos),
    }


def _belongs(m: Json) -> bool:
    """Digests themselves, and second copies of a message, are not the period's mail."""
    if is_digest(m.get("headers") or {}):
        return False
    return not str(m.get("skip_reason") or "").startswith(COPY_NOTE)


def _asks(m: Json) -> bool:
    return any(f in ATTENTION for f in m.get("flags") or ())


def _rank(m: Json) -> tuple[int, ...]:
    flags = m.get("flags") or ()
    return (*(0 if f in flags else 1 for f in ATTENTION), m["id"])


def _line(m: Json) -> Json:
    flags = list(m.get("flags") or ())
    return {
        "id": m["id"],
        "account": m["account"],
        "date": m.get("date"),
        "from": m["from"],
        "sender": sender_name(m["from"]),
        "subject": m["subject"],
        "flags": flags,
        "labels": [LABELS.get(f, f) for f in _ordered(flags)],
        "summary": one_line(m.get("summary") or _note(m)),
        "status": m["status"],
    }


def _ordered(flags: Sequence[str]) -> list[str]:
    return [f for f in ATTENTION if f in flags] + sorted(f for f in flags if f not in ATTENTION)


def _note(m: Json) -> str:
    if m.get("skip_reason"):
        return str(m["skip_reason"])
    return {
        "pending": "not analysed yet",
        "processing": "being analysed",
        "failed": f"analysis failed: {m.get('last_error') or 'see muninctl show'}",
    }.get(m["status"], "")


def _by_sender(bulk: Sequence[Json]) -> list[Json]:
    groups: dict[str, list[Json]] = {}
    for m in bulk:
        address = parseaddr(m["from"])[1].lower() or m["from"].strip().lower()
        groups.setdefault(address, []).append(m)
    out = []
    for address, items in groups.items():
        latest = items[-1]
        out.append(
            {
                "address": address,
                "sender": sender_name(latest["from"]),
                "count": len(items),
                "ids": [m["id"] for m in items],
                "latest_subject": latest["subject"],
            }
        )
    return sorted(out, key=lambda g: (-g["count"], g["sender"].lower()))


def sender_name(value: str) -> str:
    """The display name of an address if it has one, else the address."""
    name, address = parseaddr(value)
    return (name or address or value).strip() or "(unknown sender)"


def one_line(text: str) -> str:
    """The first line of a summary, spaces squeezed, cut to a readable length."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    squeezed = re.sub(r"\s+", " ", first).strip()
    if len(squeezed) <= SUMMARY_CHARS:
        return squeezed
    return squeezed[: SUMMARY_CHARS - 1].rstrip() + "…"
