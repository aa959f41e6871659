"""Every SQL statement the daemon runs. The loops call these methods and never see SQLAlchemy.

Writes are short transactions with no network I/O inside. Every write to a claimed row is
fenced by its claim token (`claimed_by`) and `processing_status = 'processing'`, so a worker
that lost its lease cannot overwrite the work of the one that took it over. The same statements
run on SQLite and PostgreSQL; only the insert-or-ignore construct is chosen per dialect.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, bindparam, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from muninmaild.protocol import COMPONENTS
from muninmaild.records import (
    Analysis,
    ClaimedMessage,
    TokenUsage,
)
from muninmaild.store import rows
from muninmaild.store.answer_cache import AnswerCacheStore
from muninmaild.store.chunks import chunks
from muninmaild.store.counters import CounterStore
from muninmaild.store.digests import DigestStore
from muninmaild.store.engine import READ_ONLY, dialect_insert
from muninmaild.store.health import WriteHealth
from muninmaild.store.ingest import IngestStore
from muninmaild.store.instances import ClusterStore
from muninmaild.store.keywords import KeywordStore
from muninmaild.store.listen import NOTIFY_CHANNEL, QueueListener
from muninmaild.store.models import (
    CLAIMABLE,
    Email,
    EmailFlag,
    PauseState,
    Result,
    TodoRow,
    TokenUsageRow,
    UTCDateTime,
)
from muninmaild.store.monitoring import MonitoringStore
from muninmaild.store.queries import Queries
from muninmaild.store.requeue import RequeueStore
from muninmaild.store.retention import RetentionStore
from muninmaild.store.todos import TodoStore

_PROCESSING = text("emails.processing_status = 'processing'")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Completion:
    """A model answer to store for a row held under `token`."""

    email_id: int
    token: str
    analysis: Analysis
    usage: TokenUsage
    model: str
    sent_body: bool | None = None  # whether the model was shown the body (None: not recorded)
    origin: str | None = None  # "model", "cache" or "skipped" (models.ORIGINS); None: not said
    origin_note: str | None = None  # why, in words ("bulk: List-Id")
    cache_key: str | None = None  # the request's key: kept under it when the model answered


class Repository(
    IngestStore,
    Queries,
    CounterStore,
    ClusterStore,
    MonitoringStore,
    KeywordStore,
    TodoStore,
    DigestStore,
    AnswerCacheStore,
    RetentionStore,
    RequeueStore,
):
    """The queue's writes. Queueing fetched mail comes from `IngestStore`, the read-only queries
    from `Queries`, the instances' bookkeeping from `ClusterStore`, what monitoring reads from
    `MonitoringStore`; keywords to write back, to-dos closed by hand and delivered digests from
    `KeywordStore`, `TodoStore`, `DigestStore`; requeueing from `RequeueStore`."""

    def __init__(self, engine: AsyncEngine, clock: Callable[[], datetime] = utcnow) -> None:
        self._engine = engine
        self._clock = clock
        self._reader = engine.execution_options(**READ_ONLY)
        # SQLite has one writer at a time. Writers of this process queue here, in the event
        # loop, instead of in SQLite's busy handler, which sleeps in steps of up to 100 ms.
        self._sqlite_writer = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self.health = WriteHealth()

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; a database error in it is recorded and raised as StoreError."""
        try:
            if self._sqlite_writer is None:
                async with self._engine.begin() as conn:
                    yield conn
            else:
                async with self._sqlite_writer, self._engine.begin() as conn:
                    yield conn
        except DBAPIError as exc:
            raise self.health.failed(exc, self._clock()) from exc
        self.health.succeeded()

    def _insert_ignore(self, model: Any, values: dict[str, Any]) -> Any:
        return self._insert_ignore_stmt(model).values(**values)

    def _insert_ignore_stmt(self, model: Any) -> Any:
        """INSERT ignoring rows that already exist, to execute with a list of rows."""
        return dialect_insert(self._engine)(model).on_conflict_do_nothing()

    # -- the queue ------------------------------------------------------------------------------

    async def claim_batch(self, token: str, limit: int, lease_s: float) -> list[ClaimedMessage]:
        """Take up to `limit` due rows in one statement; each is fenced by `token` and its id.

        On PostgreSQL the rows are chosen with FOR UPDATE SKIP LOCKED, so instances sharing the
        database never wait for, or take, each other's rows; SQLite is atomic by its write lock.
        """
        now = self._clock()
        stmt = _CLAIM_ONE if limit == 1 else _CLAIM_BATCH
        params = {"now": now, "limit": limit, "token": token}
        params["lease_end"] = now + timedelta(seconds=lease_s)
        async with self._tx() as conn:
            found = (await conn.execute(stmt, params)).all()
        # Handed to the workers in the claim's order: live mail first, then newest first.
        found = sorted(found, key=lambda r: (not r.live, -r.id))
        return [rows.claimed(r, token) for r in found]

    async def renew(self, email_id: int, token: str, lease_s: float) -> bool:
        now = self._clock()
        values = {"next_attempt_at": now + timedelta(seconds=lease_s)}
        return await self._fenced(email_id, token, values)

    async def complete_many(self, items: Sequence[Completion]) -> set[int]:
        """Mark rows completed and store their results, all in one transaction.

        Only rows still held under their token are completed (the fence); the ids returned are
        those, and only their results are written.
        """
        if not items:
            return set()
        now = self._clock()
        ids_by_token: dict[str, list[int]] = {}
        for c in items:
            ids_by_token.setdefault(c.token, []).append(c.email_id)
        done: set[int] = set()
        async with self._tx() as conn:
            # One statement per claim (a claim's rows share its token), usually one or two.
            for token, ids in ids_by_token.items():
                for part in chunks(ids):
                    params = {"ids": part, "token": token, "now": now}
                    done.update((await conn.execute(_COMPLETE, params)).scalars().all())
            stored = [c for c in items if c.email_id in done]
            await _insert_results(conn, stored, now)
            await self._cache_answers(conn, _new_answers(stored), now)
            flagged = [c.email_id for c in items if c.email_id in done and c.analysis.flags]
            await self._queue_keyword_writes(conn, flagged, now)
        return done

    async def retry(self, email_id: int, token: str, error: str, delay_s: float) -> bool:
        now = self._clock()
        values = rows.released(now + timedelta(seconds=delay_s)) | {"last_error": error}
        return await self._fenced(email_id, token, values)

    async def fail(self, email_id: int, token: str, error: str) -> bool:
        values = {"processing_status": "failed", "claimed_by": None, "last_error": error}
        return await self._fenced(email_id, token, values)

    async def snooze(self, email_id: int, token: str, delay_s: float, note: str) -> bool:
        """Back to the queue later without using up an attempt (rate limits, auth trouble)."""
        now = self._clock()
        values = rows.released(now + timedelta(seconds=delay_s)) | {"last_error": note}
        return await self._fenced(email_id, token, values | {"attempts": Email.attempts - 1})

    async def release(self, email_id: int, token: str) -> bool:
        """Give the row back at once without using up an attempt (shutdown)."""
        values = rows.released(self._clock()) | {"attempts": Email.attempts - 1}
        return await self._fenced(email_id, token, values)

    async def _fenced(self, email_id: int, token: str, values: dict[str, Any]) -> bool:
        values = {"updated_at": self._clock()} | values
        async with self._tx() as conn:
            changed = await conn.execute(_fence(email_id, token).values(**values))
        return changed.rowcount == 1

    async def record_usage(self, email_id: int, model: str, usage: TokenUsage) -> None:
        if usage.tokens_in or usage.tokens_out:
            async with self._tx() as conn:
                await _insert_usage(conn, email_id, model, usage, self._clock())

    async def next_due_in(self) -> float | None:
        """Seconds until the next claimable row is due; None if there is none."""
        stmt = select(func.min(Email.next_attempt_at)).where(text(CLAIMABLE))
        async with self._reader.connect() as conn:
            due = (await conn.execute(stmt)).scalar_one_or_none()
        if due is None:
            return None
        when = due if due.tzinfo else due.replace(tzinfo=UTC)
        return max(0.0, (when - self._clock()).total_seconds())

    # -- instances sharing the database ---------------------------------------------------------

    def listener(self, on_event: Callable[[str], None]) -> QueueListener | None:
        """What hears other instances' notifications (PostgreSQL); None on SQLite."""
        if self._engine.dialect.name != "postgresql":
            return None
        return QueueListener(self._engine.url, on_event)

    async def _notify(self, conn: AsyncConnection, event: str) -> None:
        """Wake idle instances on other hosts (PostgreSQL; sent when the transaction commits)."""
        if conn.dialect.name == "postgresql":
            await conn.execute(select(func.pg_notify(NOTIFY_CHANNEL, event)))

    # -- pause --------------------------------------------------------------------

    async def set_paused(self, component: str, paused: bool) -> None:
        if component not in COMPONENTS:
            raise ValueError(f"unknown component {component!r}")
        now = self._clock()
        async with self._tx() as conn:
            changed = await conn.execute(
                update(PauseState)
                .where(PauseState.component == component)
                .values(paused=paused, updated_at=now)
            )
            if changed.rowcount == 0:
                row = {"component": component, "paused": paused, "updated_at": now}
                await conn.execute(self._insert_ignore(PauseState, row))
            await self._notify(conn, "paused" if paused else "resumed")

    async def paused(self) -> dict[str, bool]:
        async with self._reader.connect() as conn:
            rows = (await conn.execute(select(PauseState.component, PauseState.paused))).all()
            found = dict(rows)
        return {c: bool(found.get(c, False)) for c in COMPONENTS}


_CLAIM_COLUMNS = (
    Email.id,
    Email.attempts,
    Email.account,
    Email.subject,
    Email.from_addr,
    Email.to_addrs,
    Email.sent_at,
    Email.body_text,
    Email.headers,
    Email.attachments,
    Email.has_calendar,
    Email.live,
)


def _claim(batch: bool) -> Any:
    """The claim statement, built once; `now`, `limit`, `token` and `lease_end` are bound.

    Live mail (arrived after its mailbox caught up) first, then newest first, on every
    instance: the order is the claim's own, walked along `ix_emails_live_claim`.

    On PostgreSQL the rows are chosen with FOR UPDATE SKIP LOCKED. One row: `=` on a scalar
    subquery. More: a join with the derived table. Never `IN (... LIMIT)`, which PostgreSQL may
    evaluate more than once.
    """
    now = bindparam("now", type_=UTCDateTime())
    # The due time inside coalesce() (it is never NULL): bare, it leads SQLite's planner to
    # `ix_emails_claim` and a sort of every due row on every claim.
    due_now = func.coalesce(Email.next_attempt_at, now) <= now
    due = (
        select(Email.id)
        .where(text(CLAIMABLE), due_now)
        .order_by(Email.live.desc(), Email.id.desc())
        .limit(bindparam("limit", type_=Integer()))
        .with_for_update(skip_locked=True)
    )
    where = Email.id == due.subquery().c.id if batch else Email.id == due.scalar_subquery()
    return (
        update(Email)
        .where(where)
        .values(
            processing_status="processing",
            claimed_by=bindparam("token", type_=String()),
            next_attempt_at=bindparam("lease_end", type_=UTCDateTime()),
            attempts=Email.attempts + 1,
            updated_at=now,
        )
        .returning(*_CLAIM_COLUMNS)
    )


_CLAIM_ONE = _claim(batch=False)
_CLAIM_BATCH = _claim(batch=True)

# Completes the rows `ids` that are still held under `token`; binds `ids`, `token`, `now`.
_COMPLETE = (
    update(Email)
    .where(
        Email.id.in_(bindparam("ids", expanding=True)),
        Email.claimed_by == bindparam("token", type_=String()),
        _PROCESSING,
    )
    .values(
        processing_status="completed",
        completed_at=bindparam("now", type_=UTCDateTime()),
        claimed_by=None,
        updated_at=bindparam("now", type_=UTCDateTime()),
        last_error=None,
    )
    .returning(Email.id)
)


def _fence(email_id: int, token: str) -> Any:
    return update(Email).where(Email.id == email_id, Email.claimed_by == token, _PROCESSING)


async def _insert_results(
    conn: AsyncConnection, items: Sequence[Completion], now: datetime
) -> None:
    """Results, flags, to-dos and usage of several messages: one statement per table."""
    if not items:
        return
    await conn.execute(
        insert(Result),
        [
            {"email_id": c.email_id, "summary": c.analysis.summary, "model": c.model}
            | {"created_at": now, "sent_body": c.sent_body, "origin": c.origin}
            | {"origin_note": c.origin_note, "cache_key": c.cache_key}
            for c in items
        ],
    )
    flags = [{"email_id": c.email_id, "flag": f} for c in items for f in c.analysis.flags]
    if flags:
        await conn.execute(insert(EmailFlag), flags)
    todos = [
        {"email_id": c.email_id, "position": i, "task": t.task, "priority": t.priority}
        | {"due_date": t.due, "done": False, "created_at": now}
        for c in items
        for i, t in enumerate(c.analysis.todos)
    ]
    if todos:
        await conn.execute(insert(TodoRow), todos)
    usage = [
        {"email_id": c.email_id, "model": c.model, "tokens_in": c.usage.tokens_in}
        | {"tokens_out": c.usage.tokens_out, "created_at": now}
        for c in items
        if c.usage.tokens_in or c.usage.tokens_out
    ]
    if usage:
        await conn.execute(insert(TokenUsageRow), usage)


def _new_answers(items: Sequence[Completion]) -> list[tuple[str, Analysis, str, TokenUsage]]:
    """The model's answers among `items` that are to be kept in the answer cache."""
    return [
        (c.cache_key, c.analysis, c.model, c.usage)
        for c in items
        if c.cache_key is not None and c.origin == "model"
    ]


async def _insert_usage(
    conn: AsyncConnection, email_id: int, model: str, usage: TokenUsage, now: datetime
) -> None:
    if not (usage.tokens_in or usage.tokens_out):
        return
    await conn.execute(
        insert(TokenUsageRow).values(
            email_id=email_id,
            model=model,
            tokens_in=usage.tokens_in,
            tokens_out=usage.tokens_out,
            created_at=now,
        )
    )
