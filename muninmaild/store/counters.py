"""The queue's counts and the token totals, read from `counters` instead of counted.

Triggers keep them in the transactions that change the rows (migration 0007), so reading them
costs the same at a thousand rows as at a million, and they agree with the monitoring query
`SELECT processing_status, COUNT(*) FROM emails GROUP BY processing_status` at every commit.
On PostgreSQL the changes arrive as rows of `counter_deltas`, added in when read and folded into
`counters` by the heartbeat (`fold_counters`). A mixin of `Repository`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from sqlalchemy import delete, func, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from muninmaild.protocol import STATUSES
from muninmaild.records import QueueCounts, TokenUsage
from muninmaild.store.models import Counter, CounterDelta

_ALL = union_all(
    select(Counter.name, Counter.value),
    select(CounterDelta.name, CounterDelta.delta.label("value")),
).subquery()
_READ = select(_ALL.c.name, func.sum(_ALL.c.value)).group_by(_ALL.c.name)


class CounterStore:
    _engine: AsyncEngine
    _reader: AsyncEngine
    _tx: Callable[[], AbstractAsyncContextManager[AsyncConnection]]

    async def _counters(self) -> dict[str, int]:
        async with self._reader.connect() as conn:
            return {name: int(value) for name, value in (await conn.execute(_READ)).all()}

    async def counts(self) -> QueueCounts:
        found = await self._counters()
        return QueueCounts(**{s: found.get(s, 0) for s in STATUSES})

    async def token_totals(self) -> TokenUsage:
        found = await self._counters()
        return TokenUsage(found.get("tokens_in", 0), found.get("tokens_out", 0))

    async def fold_counters(self) -> None:
        """Move the deltas into `counters` (PostgreSQL; SQLite's triggers write them there).

        Two instances folding at once take disjoint deltas: a delta the other one deleted is
        skipped once its transaction commits.
        """
        if self._engine.dialect.name != "postgresql":
            return
        gone = delete(CounterDelta).returning(CounterDelta.name, CounterDelta.delta).cte("gone")
        sums = (
            select(gone.c.name, func.sum(gone.c.delta).label("delta"))
            .group_by(gone.c.name)
            .subquery()
        )
        stmt = (
            update(Counter)
            .where(Counter.name == sums.c.name)
            .values(value=Counter.value + sums.c.delta)
        )
        async with self._tx() as conn:
            await conn.execute(stmt)
