"""Retention: completed mail older than `database.retention_days` removed, a batch at a time.

A mixin of `Repository`. Each batch is one short transaction, so that claims and `muninctl`
wait for at most one batch (SQLite has one writer). A removed message takes its results,
flags, to-dos, keyword records and token usage with it; failed rows are never removed. A
message from a Maildir keeps a bare row (no body, headers or results, `completed_at` cleared,
so it is not looked at again): its file is still in the folder, and the row is what says it
was handled.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime

from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from muninmaild.store.models import (
    COMPLETED,
    Email,
    EmailFlag,
    KeywordWrite,
    Result,
    TodoRow,
    TokenUsageRow,
)
from muninmaild.store.requeue import forget_left_out

_CHILDREN = (Result, EmailFlag, TodoRow, KeywordWrite, TokenUsageRow)


class RetentionStore:
    _tx: Callable[[], AbstractAsyncContextManager[AsyncConnection]]

    async def remove_completed_before(self, cutoff: datetime, limit: int) -> int:
        """Remove up to `limit` messages completed before `cutoff`; how many were removed."""
        old = (
            select(Email.id, Email.source_key)
            .where(text(COMPLETED), Email.completed_at < cutoff)  # ix_emails_completed_at
            .order_by(Email.completed_at)
            .limit(limit)
            .with_for_update(skip_locked=True)  # instances sharing PostgreSQL take other rows
        )
        async with self._tx() as conn:
            found = (await conn.execute(old)).all()
            ids = [r.id for r in found]
            if not ids:
                return 0
            await forget_left_out(conn, ids)
            for model in _CHILDREN:
                await conn.execute(delete(model).where(model.email_id.in_(ids)))
            files = [r.id for r in found if r.source_key is not None]
            gone = [r.id for r in found if r.source_key is None]
            if gone:
                await conn.execute(delete(Email).where(Email.id.in_(gone)))
            if files:
                bare = {"body_text": "", "headers": "{}", "completed_at": None, "skip_reason": None}
                await conn.execute(update(Email).where(Email.id.in_(files)).values(**bare))
        return len(ids)
