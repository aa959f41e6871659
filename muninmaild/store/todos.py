"""To-dos as a list to work through: every one with its id and state, closed and reopened by
hand. A mixin of `Repository`; the state is in the database, so every instance sees it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from muninmaild.store import rows
from muninmaild.store.chunks import chunks
from muninmaild.store.models import Email, TodoRow
from muninmaild.store.rows import Json

_RANK = case({"high": 0, "medium": 1}, value=TodoRow.priority, else_=2)


def _todo_lines() -> Any:
    """To-dos with their message: dated ones first by date, then by priority, then by message."""
    return (
        select(TodoRow.email_id, Email.subject, Email.from_addr, TodoRow.task)
        .add_columns(TodoRow.priority, TodoRow.due_date, TodoRow.done, TodoRow.done_at)
        .add_columns(TodoRow.id.label("todo_id"), Email.account)
        .join(Email, Email.id == TodoRow.email_id)
        .order_by(TodoRow.due_date.is_(None), TodoRow.due_date, _RANK)
        .order_by(TodoRow.email_id, TodoRow.position)
    )


class TodoStore:
    _reader: AsyncEngine
    _clock: Callable[[], datetime]
    _tx: Callable[[], AbstractAsyncContextManager[AsyncConnection]]

    async def todo_list(
        self,
        today: date,
        *,
        include_done: bool = False,
        overdue: bool = False,
        account: str | None = None,
        limit: int = 200,
    ) -> list[Json]:
        """Open to-dos (every one with `include_done`; only those due before `today` with
        `overdue`), of one account or all."""
        stmt = _todo_lines().limit(limit)
        if overdue:
            stmt = stmt.where(TodoRow.done.is_(False), TodoRow.due_date < today)
        elif not include_done:
            stmt = stmt.where(TodoRow.done.is_(False))
        if account is not None:
            stmt = stmt.where(Email.account == account)
        async with self._reader.connect() as conn:
            found = (await conn.execute(stmt)).all()
        return [rows.todo_line(r, today) for r in found]

    async def todos_by_id(self, ids: Sequence[int], today: date) -> list[Json]:
        found: list[Any] = []
        async with self._reader.connect() as conn:
            for part in chunks(ids):
                found += (await conn.execute(_todo_lines().where(TodoRow.id.in_(part)))).all()
        return [rows.todo_line(r, today) for r in found]

    async def set_todos_done(self, ids: Sequence[int], done: bool) -> tuple[int, list[int]]:
        """Close (or reopen) the to-dos `ids`: all of them, or none when some id is unknown.

        Returns how many changed state, and the unknown ids.
        """
        now = self._clock()
        async with self._tx() as conn:
            known: set[int] = set()
            for part in chunks(ids):
                found = await conn.execute(select(TodoRow.id).where(TodoRow.id.in_(part)))
                known.update(found.scalars())
            missing = sorted(set(ids) - known)
            if missing:
                return 0, missing
            changed = 0
            for part in chunks(ids):
                stmt = (
                    update(TodoRow)
                    .where(TodoRow.id.in_(part), TodoRow.done.is_(not done))
                    .values(done=done, done_at=now if done else None)
                )
                changed += (await conn.execute(stmt)).rowcount
        return changed, []
