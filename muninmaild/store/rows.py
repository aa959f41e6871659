"""Pure conversions between the daemon's records and the store's column values (no SQL)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from muninmaild.records import (
    ClaimedMessage,
    ClusterView,
    InstanceView,
    MailboxHolder,
    MessageDetail,
    MessageSummary,
    NewMessage,
    ResultRow,
    TokenUsage,
)

TodoTuple = tuple[str, str, str | None]


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


def iso(value: date | None) -> str | None:
    return value.isoformat() if value else None


def result_row(
    row: Any, flags: dict[int, list[str]], todos: dict[int, list[TodoTuple]]
) -> ResultRow:
    return ResultRow(
        id=row.id,
        subject=row.subject,
        from_addr=row.from_addr,
        processing_status=row.processing_status,
        summary=row.summary,
        flags=tuple(flags.get(row.id, ())),
        todos=tuple(todos.get(row.id, ())),
        last_error=row.last_error,
        skip_reason=row.skip_reason,
    )


# -- the control socket's views (muninctl list, show) -------------------------------------------


def message_summary(row: Any, flags: dict[int, list[str]]) -> MessageSummary:
    return MessageSummary(
        id=row.id,
        account=row.account,
        mailbox=row.mailbox,
        subject=row.subject,
        from_addr=row.from_addr,
        sent_at=row.sent_at,
        processing_status=row.processing_status,
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        flags=tuple(flags.get(row.id, ())),
    )


def message_detail(
    row: Any, flags: list[str], todos: list[TodoTuple], tokens: TokenUsage
) -> MessageDetail:
    headers = json.loads(row.headers or "{}")
    return MessageDetail(
        id=row.id,
        account=row.account,
        mailbox=row.mailbox,
        uidvalidity=row.uidvalidity,
        uid=row.uid,
        message_id=row.message_id,
        subject=row.subject,
        from_addr=row.from_addr,
        to_addrs=row.to_addrs,
        cc_addrs=row.cc_addrs,
        sent_at=row.sent_at,
        size=row.size,
        headers={str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {},
        attachments=tuple(
            (a[0], a[1], a[2]) for a in json.loads(row.attachments or "[]") if len(a) > 2
        ),
        defects=tuple(str(d) for d in json.loads(row.defects or "[]")),
        processing_status=row.processing_status,
        skip_reason=row.skip_reason,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        completed_at=row.completed_at,
        summary=row.summary,
        model=row.model,
        flags=tuple(flags),
        todos=tuple(todos),
        tokens_in=tokens.tokens_in,
        tokens_out=tokens.tokens_out,
    )


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
