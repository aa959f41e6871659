"""Pure conversions between the store's rows and the daemon's records (no SQL).

A message as the control protocol shows it (`list`, `show`, `todos`; docs/protocol.md) is mapped
here, once, straight from its row: the names of its fields are public interface.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from muninmaild.protocol import iso
from muninmaild.records import (
    ClaimedMessage,
    ClusterView,
    InstanceView,
    MailboxHolder,
    NewMessage,
    TokenUsage,
)

Json = dict[str, Any]


def released(at: datetime) -> dict[str, Any]:
    return {"processing_status": "pending", "claimed_by": None, "next_attempt_at": at}


def completed_values(skip_reason: str | None, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {"processing_status": "completed", "completed_at": now}
    values |= {"claimed_by": None, "updated_at": now}
    if skip_reason:
        values["skip_reason"] = skip_reason
    return values


def email_values(msg: NewMessage, now: datetime) -> dict[str, Any]:
    mail = msg.mail
    values: dict[str, Any] = {
        "account": msg.account,
        "mailbox": msg.mailbox,
        "uidvalidity": msg.uidvalidity,
        "uid": msg.uid,
        "source_key": msg.source_key,
        "message_id": mail.message_id,
        "subject": mail.subject,
        "from_addr": mail.from_addr,
        "to_addrs": mail.to_addrs,
        "cc_addrs": mail.cc_addrs,
        "sent_at": mail.date,
        "size": mail.size,
        "headers": json.dumps(mail.headers, ensure_ascii=False),
        "body_text": mail.body_text,
        "attachments": json.dumps([[a.filename, a.content_type, a.size] for a in mail.attachments]),
        "defects": json.dumps(list(mail.defects), ensure_ascii=False),
        "has_calendar": mail.has_calendar,
        "processing_status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
    if msg.skip_reason:
        values |= completed_values(msg.skip_reason, now)
    return values


def claimed(row: Any, token: str) -> ClaimedMessage:
    attachments = json.loads(row.attachments or "[]")
    return ClaimedMessage(
        id=row.id,
        token=token,
        attempts=row.attempts,
        account=row.account,
        subject=row.subject,
        from_addr=row.from_addr,
        to_addrs=row.to_addrs,
        sent_at=row.sent_at,
        body_text=row.body_text,
        headers=json.loads(row.headers or "{}"),
        attachment_names=tuple(a[0] for a in attachments if a and a[0]),
        has_calendar=bool(row.has_calendar),
    )


def message(row: Any, flags: Sequence[str], todos: Sequence[Json] | None = None) -> Json:
    """One line of `muninctl list`; with `todos` (`list --details`) its results too."""
    out: Json = {
        "id": row.id,
        "account": row.account,
        "mailbox": row.mailbox,
        "status": row.processing_status,
        "attempts": row.attempts,
        "date": iso(row.sent_at),
        "from": row.from_addr,
        "subject": row.subject,
        "flags": list(flags),
        "last_error": row.last_error,
        "queued_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }
    if todos is not None:
        out |= {"summary": row.summary, "todos": list(todos), "skip_reason": row.skip_reason}
        # Where the answer came from: "model", "cache" (an earlier answer to the same request)
        # or "skipped" (`ai.skip`: the offline rules); None without an answer, or stored before.
        out |= {"origin": row.origin, "origin_note": row.origin_note}
    return out


def detail(row: Any, flags: Sequence[str], todos: Sequence[Json], tokens: TokenUsage) -> Json:
    """Everything `muninctl show` tells about one message (not its body)."""
    headers = json.loads(row.headers or "{}")
    if not isinstance(headers, dict):
        headers = {}
    return message(row, flags, todos) | {
        "uidvalidity": row.uidvalidity,
        "uid": row.uid,
        "message_id": row.message_id,
        # For a row being processed the column holds its lease; only a waiting row has a next try.
        "next_attempt_at": iso(row.next_attempt_at) if row.processing_status == "pending" else None,
        "to": row.to_addrs,
        "cc": row.cc_addrs,
        "size": row.size,
        "headers": {str(k): str(v) for k, v in headers.items()}
        if isinstance(headers, dict)
        else {},
        "attachments": [
            {"filename": a[0], "type": a[1], "size": a[2]}
            for a in json.loads(row.attachments or "[]")
            if len(a) > 2
        ],
        "defects": [str(d) for d in json.loads(row.defects or "[]")],
        "model": row.model,
        "tokens": {"in": tokens.tokens_in, "out": tokens.tokens_out},
        # What went to the model: "all", "headers" (send_body = false), None when not recorded.
        "sent": None if row.sent_body is None else ("all" if row.sent_body else "headers"),
        "completed_at": iso(row.completed_at),
    }


def todo(row: Any) -> Json:
    return {"task": row.task, "priority": row.priority, "due": _date(row.due_date)}


def open_todo(row: Any) -> Json:
    """One line of `muninctl todos`: the to-do and the message it came from."""
    return {"id": row.email_id, "subject": row.subject, "from": row.from_addr} | todo(row)


def _date(value: date | None) -> str | None:
    return value.isoformat() if value else None


def cluster_view(instances: Any, leases: Any, alive_after: datetime) -> ClusterView:
    """Instances (alive: a heartbeat since `alive_after` and not stopped) and mailbox holders."""
    return ClusterView(
        instances=tuple(
            InstanceView(
                id=i.id,
                host=i.host,
                pid=i.pid,
                version=i.version,
                started_at=i.started_at,
                heartbeat_at=i.heartbeat_at,
                alive=i.stopped_at is None and i.heartbeat_at >= alive_after,
                stopped=i.stopped_at is not None,
            )
            for i in instances
        ),
        mailboxes=tuple(MailboxHolder(*lease) for lease in leases),
    )


# -- keywords, to-dos and digests --------------------------------------------------------------


def keyword_write(row: Any) -> Json:
    """A message's keywords on the server (`show`): what was written, when, or why not."""
    return {
        "state": row.state,
        "keywords": row.keywords.split(),
        "note": row.note,
        "written_at": iso(row.written_at),
        "attempts": row.attempts,
        "queued_at": iso(row.created_at),
    }


def message_todo(row: Any) -> Json:
    """A to-do in a message's details (`list --details`, `show`), with its id and state."""
    return todo(row) | {"todo_id": row.id, "done": bool(row.done)}


def todo_line(row: Any, today: date) -> Json:
    """One line of `muninctl todos`: the to-do, its state, and the message it came from.

    `id` is the message's (as it always was); `todo_id` is the to-do's own, for `done`.
    """
    due = row.due_date
    return open_todo(row) | {
        "todo_id": row.todo_id,
        "account": row.account,
        "done": bool(row.done),
        "done_at": iso(row.done_at),
        "overdue": bool(not row.done and due is not None and due < today),
    }


def digest_message(row: Any, flags: Sequence[str]) -> Json:
    """A message as the digest sees it: the `list` line, its summary and what marks bulk mail."""
    headers = json.loads(row.headers or "{}")
    return message(row, flags) | {
        "summary": row.summary,
        "skip_reason": row.skip_reason,
        "headers": {str(k): str(v) for k, v in headers.items()}
        if isinstance(headers, dict)
        else {},
    }
