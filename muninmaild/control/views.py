"""The daemon's records as the JSON objects of control answers (pure functions).

Names here are public interface: fields may be added, never renamed or removed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from muninmaild.processing.processor import ProcessorStats
from muninmaild.records import (
    ClusterView,
    FetchStatus,
    LastError,
    MessageDetail,
    MessageSummary,
    OpenTodo,
    ResultRow,
    TodoTuple,
)
from muninmaild.store.health import WriteHealth

Json = dict[str, Any]


def iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def message(row: MessageSummary, result: ResultRow | None = None) -> Json:
    out: Json = {
        "id": row.id,
        "account": row.account,
        "mailbox": row.mailbox,
        "status": row.processing_status,
        "attempts": row.attempts,
        "date": iso(row.sent_at),
        "from": row.from_addr,
        "subject": row.subject,
        "flags": list(row.flags),
        "last_error": row.last_error,
        "queued_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }
    if result is not None:
        out |= {
            "summary": result.summary,
            "todos": [todo(t) for t in result.todos],
            "skip_reason": result.skip_reason,
        }
    return out


def todo(item: TodoTuple) -> Json:
    task, priority, due = item
    return {"task": task, "priority": priority, "due": due}


def detail(row: MessageDetail) -> Json:
    return {
        "id": row.id,
        "account": row.account,
        "mailbox": row.mailbox,
        "uidvalidity": row.uidvalidity,
        "uid": row.uid,
        "message_id": row.message_id,
        "status": row.processing_status,
        "attempts": row.attempts,
        "next_attempt_at": _next_attempt(row),
        "last_error": row.last_error,
        "skip_reason": row.skip_reason,
        "date": iso(row.sent_at),
        "from": row.from_addr,
        "to": row.to_addrs,
        "cc": row.cc_addrs,
        "subject": row.subject,
        "size": row.size,
        "headers": row.headers,
        "attachments": [{"filename": f, "type": t, "size": s} for f, t, s in row.attachments],
        "defects": list(row.defects),
        "summary": row.summary,
        "flags": list(row.flags),
        "todos": [todo(t) for t in row.todos],
        "model": row.model,
        "tokens": {"in": row.tokens_in, "out": row.tokens_out},
        "queued_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "completed_at": iso(row.completed_at),
    }


def open_todo(item: OpenTodo) -> Json:
    return {
        "id": item.email_id,
        "subject": item.subject,
        "from": item.from_addr,
        "task": item.task,
        "priority": item.priority,
        "due": item.due,
    }


def account(status: FetchStatus) -> Json:
    return {
        "name": status.account,
        "state": status.state,
        "caught_up": status.caught_up,
        "last_fetch_at": iso(status.last_fetch_at),
        "last_error": status.last_error,
        "queued": status.queued,
    }


def session(stats: ProcessorStats) -> Json:
    """What this process has done since it started."""
    return {
        "completed": stats.completed,
        "retried": stats.retried,
        "failed": stats.failed,
        "snoozed": stats.snoozed,
    }


def database(health: WriteHealth) -> Json:
    """Whether the latest write failed, and the last failure: a full disk shows here."""
    return {
        "failing": health.failing,
        "last_error": health.last_error,
        "last_error_at": iso(health.last_error_at),
    }


def last_error(error: LastError | None) -> Json | None:
    if error is None:
        return None
    return {"id": error.email_id, "at": iso(error.at), "message": error.message}


def fetcher_settled(status: FetchStatus) -> bool:
    """Nothing more will come from this fetcher until new mail arrives."""
    if status.state in ("paused", "stopped"):
        return True
    return status.caught_up and status.state != "syncing"


def _next_attempt(row: MessageDetail) -> str | None:
    # For a row being processed the column holds its lease; only a waiting row has a next try.
    return iso(row.next_attempt_at) if row.processing_status == "pending" else None


def cluster(view: ClusterView) -> Json:
    """Every instance sharing the database, and which of them fetches which mailbox."""
    return {
        "instances": [
            {
                "id": i.id,
                "host": i.host,
                "pid": i.pid,
                "version": i.version,
                "started_at": iso(i.started_at),
                "heartbeat_at": iso(i.heartbeat_at),
                "state": "alive" if i.alive else ("stopped" if i.stopped else "gone"),
            }
            for i in view.instances
        ],
        "mailboxes": [
            {
                "account": m.account,
                "mailbox": m.mailbox,
                "holder": m.holder,
                "expires_at": iso(m.expires_at),
            }
            for m in view.mailboxes
        ],
    }
