"""The daemon's state as the JSON objects of control answers (pure functions).

Messages and to-dos are mapped by the store, straight from their rows (`store/rows.py`).

Names here are public interface: fields may be added, never renamed or removed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from muninmaild.ai.budget import RateBudget
from muninmaild.processing.hold import HoldView
from muninmaild.processing.processor import ProcessorStats
from muninmaild.processing.shortcuts import Shortcuts
from muninmaild.protocol import iso
from muninmaild.records import (
    ClusterView,
    FetchStatus,
    KeywordStatus,
    LastError,
    RetentionStatus,
    Waiting,
)
from muninmaild.store.health import WriteHealth

Json = dict[str, Any]


def account(status: FetchStatus) -> Json:
    return {
        "name": status.account,
        "state": status.state,
        "caught_up": status.caught_up,
        "last_fetch_at": iso(status.last_fetch_at),
        "last_error": status.last_error,
        "queued": status.queued,
        "last_success_at": iso(status.last_success_at),
        "fetch_errors": status.errors,
    }


def backfill(status: FetchStatus, left_out: int) -> Json:
    """The account's backfill window ("14d", "all", "none") and how much of the mail there at
    its first sync it left out (less what was requeued since)."""
    return {"backfill": {"window": status.backfill, "left_out": left_out}}


def waiting(found: Waiting, now: datetime) -> Json:
    """Pending messages still to be taken: how many are due now, and how long mail has waited."""
    return {
        "due": found.due,
        "oldest_pending_s": _age(found.oldest_pending_at, now),
        "oldest_due_s": _age(found.oldest_due_at, now),
    }


def _age(since: datetime | None, now: datetime) -> float | None:
    return None if since is None else round(max((now - since).total_seconds(), 0.0), 1)


def keywords(status: KeywordStatus | None) -> Json | None:
    """An account's keywords written back; None when it does not write them."""
    if status is None:
        return None
    return {
        "state": status.state,
        "written": status.written,
        "last_written_at": iso(status.last_written_at),
        "last_error": status.last_error,
        "refused": [{"mailbox": m, "reason": r} for m, r in sorted(status.refused.items())],
    }


def session(stats: ProcessorStats) -> Json:
    """What this process has done since it started."""
    return {
        "completed": stats.completed,
        "retried": stats.retried,
        "failed": stats.failed,
        "snoozed": stats.snoozed,
        "cached": stats.answers.cached,
        "skipped": stats.answers.skipped_total,
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


def hold(view: HoldView | None) -> Json | None:
    """Why the processor does not call the model now, or None when it is free to."""
    return None if view is None else view.as_dict()


def start_of_day(now: datetime | None = None) -> datetime:
    """Midnight UTC: "today" for the model's figures."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def today(usage: tuple[int, int], budget: RateBudget | None) -> Json:
    """Requests and tokens since midnight UTC (every instance of the database), and the daily
    limits configured (null: none)."""
    limits = budget.limits if budget is not None else None
    return {
        "requests": usage[0],
        "tokens": usage[1],
        "requests_limit": (limits.requests_per_day or None) if limits else None,
        "tokens_limit": (limits.tokens_per_day or None) if limits else None,
    }


def answers_today(answers: dict[str, int]) -> Json:
    """Today's answers that cost no request (every instance of the database), for `today`:
    mail `ai.skip` left to the offline rules, and answers taken from the cache."""
    return {"skipped": answers.get("skipped", 0), "cached": answers.get("cache", 0)}


def shortcuts(found: Shortcuts | None, entries: int | None) -> Json:
    """`ai.skip` and the answer cache as this instance runs them; `entries` is the cache's
    size in the database (shared), null when the cache is off."""
    if found is None:
        return {"skip": [], "cache": None}
    cache = None
    if found.caching:
        cache = {
            "entries": entries,
            "max_entries": found.max_entries,
            "max_age_days": found.max_age_days,
        }
    return {"skip": list(found.skip_kinds), "cache": cache}


def retention(status: RetentionStatus) -> Json:
    """`database.retention_days` (0: off) and what this instance's last pass removed."""
    return {
        "days": status.days,
        "last_run_at": iso(status.last_run_at),
        "removed": status.removed,
        "removed_total": status.removed_total,
    }
