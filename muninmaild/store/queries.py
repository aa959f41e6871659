"""The store's read-only queries: counts, results, and what `muninctl` lists and shows.

A mixin of `Repository`, split out only to keep each module a readable size; like the rest of
the store it is the only place these statements live.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from muninmaild.records import LastError, TokenUsage
from muninmaild.store import rows
from muninmaild.store.chunks import chunks
from muninmaild.store.models import (
    ACTIVE,
    CLAIMABLE,
    Email,
    EmailFlag,
    PaceRemoved,
    Result,
    TodoRow,
    TokenUsageRow,
)
from muninmaild.store.rows import Json


class Queries:
    _engine: AsyncEngine
    _reader: AsyncEngine  # the engine with READ_ONLY: no write lock taken on SQLite
    _clock: Callable[[], datetime]

    async def usage_since(self, since: datetime) -> tuple[int, int]:
        """Model requests that used tokens, and the tokens, since `since` (today's figures)."""
        stmt = select(
            func.count(),
            func.coalesce(func.sum(TokenUsageRow.tokens_in + TokenUsageRow.tokens_out), 0),
        ).where(TokenUsageRow.created_at >= since)
        async with self._reader.connect() as conn:
            requests, tokens = (await conn.execute(stmt)).one()
        return int(requests), int(tokens)

    async def answer_pace(self, since: datetime) -> tuple[int, datetime | None]:
        """Answers stored since `since` by every instance, and the time of the first of them
        (the backlog's pace; an index range of `results.created_at`), those a requeue
        removed since included."""
        stored = select(func.count(), func.min(Result.created_at)).where(Result.created_at >= since)
        removed = select(func.sum(PaceRemoved.answers), func.min(PaceRemoved.second)).where(
            PaceRemoved.second >= since
        )
        async with self._reader.connect() as conn:
            count, first = (await conn.execute(stored)).one()
            gone, first_gone = (await conn.execute(removed)).one()
        firsts = [at for at in (first, first_gone) if at is not None]
        return int(count) + int(gone or 0), min(firsts, default=None)

    async def results_for(self, ids: Sequence[int]) -> list[Json]:
        """The messages `ids` with their results, oldest first (the --once report)."""
        found: list[Json] = []
        async with self._reader.connect() as conn:
            for part in chunks(sorted(ids)):
                stmt = _with_results(Email.id.in_(part)).order_by(Email.id)
                found += await _messages(conn, stmt, details=True)
        return found

    async def list_messages(
        self,
        status: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
        *,
        details: bool = False,
    ) -> list[Json]:
        """The newest messages first, optionally of one status and queued since a time."""
        stmt = _with_results(None).limit(limit)
        if status is not None:
            stmt = stmt.where(Email.processing_status == status)
            if status != "completed":
                stmt = stmt.where(text(ACTIVE))  # names ix_emails_active's condition
        if since is not None:
            # Newest first by the time queued, which ix_emails_created_at gives in order.
            stmt = stmt.where(Email.created_at >= since).order_by(Email.created_at.desc())
        stmt = stmt.order_by(Email.id.desc())
        async with self._reader.connect() as conn:
            return await _messages(conn, stmt, details=details)

    async def message_detail(self, email_id: int) -> Json | None:
        stmt = (
            select(*Email.__table__.c, Result.summary, Result.model, Result.sent_body)
            .add_columns(Result.origin, Result.origin_note)
            .outerjoin(Result, Result.email_id == Email.id)
            .where(Email.id == email_id)
        )
        tokens = select(
            func.coalesce(func.sum(TokenUsageRow.tokens_in), 0),
            func.coalesce(func.sum(TokenUsageRow.tokens_out), 0),
        ).where(TokenUsageRow.email_id == email_id)
        async with self._reader.connect() as conn:
            row = (await conn.execute(stmt)).first()
            if row is None:
                return None
            flags = await _flags_by_email(conn, [email_id])
            todos = await _todos_by_email(conn, [email_id])
            tokens_in, tokens_out = (await conn.execute(tokens)).one()
        usage = TokenUsage(int(tokens_in), int(tokens_out))
        return rows.detail(row, flags.get(email_id, []), todos.get(email_id, []), usage)

    async def open_todos(self, limit: int = 200) -> list[Json]:
        """Open to-dos across all mail: dated ones first by date, then by priority."""
        rank = case({"high": 0, "medium": 1}, value=TodoRow.priority, else_=2)
        stmt = (
            select(TodoRow.email_id, Email.subject, Email.from_addr, TodoRow.task)
            .add_columns(TodoRow.priority, TodoRow.due_date)
            .join(Email, Email.id == TodoRow.email_id)
            .where(TodoRow.done.is_(False))
            .order_by(TodoRow.due_date.is_(None), TodoRow.due_date, rank)
            .order_by(TodoRow.email_id, TodoRow.position)
            .limit(limit)
        )
        async with self._reader.connect() as conn:
            found = (await conn.execute(stmt)).all()
        return [rows.open_todo(r) for r in found]

    async def unsettled(self, include_scheduled: bool = True) -> int:
        """Rows still to be done: processing, and pending (only those due now, if asked)."""
        pending = Email.processing_status == "pending"
        if not include_scheduled:
            pending = and_(pending, Email.next_attempt_at <= self._clock())
        stmt = select(func.count()).where(
            text(CLAIMABLE),  # read from the claim index, not the table
            or_(Email.processing_status == "processing", pending),
        )
        async with self._reader.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def last_error(self) -> LastError | None:
        stmt = (
            select(Email.id, Email.updated_at, Email.last_error)
            .where(Email.last_error.is_not(None))
            .order_by(Email.updated_at.desc(), Email.id.desc())
            .limit(1)
        )
        async with self._reader.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return LastError(row[0], row[1], row[2] or "") if row else None


_MESSAGE_COLUMNS = (
    Email.id,
    Email.account,
    Email.mailbox,
    Email.subject,
    Email.from_addr,
    Email.sent_at,
    Email.processing_status,
    Email.attempts,
    Email.last_error,
    Email.skip_reason,
    Email.created_at,
    Email.updated_at,
    Result.summary,
    Result.origin,
    Result.origin_note,
)


def _with_results(where: Any) -> Any:
    stmt = select(*_MESSAGE_COLUMNS).outerjoin(Result, Result.email_id == Email.id)
    return stmt if where is None else stmt.where(where)


async def _messages(conn: AsyncConnection, stmt: Any, *, details: bool) -> list[Json]:
    found = (await conn.execute(stmt)).all()
    ids = [r.id for r in found]
    flags = await _flags_by_email(conn, ids)
    todos = await _todos_by_email(conn, ids) if details else {}
    return [
        rows.message(r, flags.get(r.id, []), todos.get(r.id, []) if details else None)
        for r in found
    ]


async def _flags_by_email(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for part in chunks(ids):
        stmt = select(EmailFlag.email_id, EmailFlag.flag).where(EmailFlag.email_id.in_(part))
        for email_id, flag in (await conn.execute(stmt)).all():
            out.setdefault(email_id, []).append(flag)
    return out


async def _todos_by_email(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, list[Json]]:
    out: dict[int, list[Json]] = {}
    for part in chunks(ids):
        stmt = (
            select(TodoRow.email_id, TodoRow.task, TodoRow.priority, TodoRow.due_date)
            .add_columns(TodoRow.id, TodoRow.done)
            .where(TodoRow.email_id.in_(part))
            .order_by(TodoRow.email_id, TodoRow.position)
        )
        for row in (await conn.execute(stmt)).all():
            out.setdefault(row.email_id, []).append(rows.message_todo(row))
    return out
