"""Requeueing: messages chosen by ids and filters sent through the model again. A mixin of
`Repository`.

Work goes in batches of at most `BATCH` rows, each its own short transaction, walking the table
by id, so no statement binds an unbounded list and claims are never held up long. A row being
processed is never requeued. A requeued row loses its old results (so that processing it again
writes exactly one set), its cached answer and the record of its keywords; one the backfill
window left out loses that note and leaves its mailbox's count. The answers of the last hour it
removes are noted in `pace_removed`, so that the backlog's pace still counts them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from muninmaild.protocol import RequeueFilter
from muninmaild.records import BACKFILL_NOTE
from muninmaild.store.answer_cache import drop_cached_answers
from muninmaild.store.engine import dialect_insert
from muninmaild.store.models import (
    Email,
    EmailFlag,
    KeywordWrite,
    MailboxState,
    PaceRemoved,
    Result,
    TodoRow,
)

BATCH = 500
PACE_KEPT = timedelta(hours=1)  # removed answers are noted this long: the pace looks back less
# A row retention emptied (store/retention.py): nothing is left to send to the model.
_BARE = and_(Email.processing_status == "completed", Email.completed_at.is_(None))


class RequeueStore:
    _engine: AsyncEngine
    _reader: AsyncEngine
    _clock: Callable[[], datetime]
    _tx: Callable[[], AbstractAsyncContextManager[AsyncConnection]]
    _notify: Callable[[AsyncConnection, str], Any]

    async def requeue(self, ids: Sequence[int] | None = None) -> int:
        """Failed rows (all), or the given ids in any state but processing, back to pending."""
        if ids is None:
            return await self.requeue_matching(RequeueFilter(status="failed"))
        return await self.requeue_matching(RequeueFilter(ids=tuple(ids)))

    async def count_requeue(self, chosen: RequeueFilter) -> int:
        """How many messages `requeue_matching(chosen)` would requeue now."""
        total = 0
        async with self._reader.connect() as conn:
            for part in _id_parts(chosen.ids):
                stmt = select(func.count()).where(*_conditions(chosen, part))
                total += int((await conn.execute(stmt)).scalar_one())
        return total

    async def requeue_matching(self, chosen: RequeueFilter) -> int:
        """Requeue every message `chosen` takes, batch by batch; how many were requeued."""
        total = 0
        for part in _id_parts(chosen.ids):
            after = 0
            while True:
                stmt = (
                    select(Email.id)
                    .where(*_conditions(chosen, part), Email.id > after)
                    .order_by(Email.id)
                    .limit(BATCH)
                )
                async with self._tx() as conn:
                    found = list((await conn.execute(stmt)).scalars())
                    if found:
                        total += await self._requeue_rows(conn, found)
                if len(found) < BATCH:
                    break
                after = found[-1]
        return total

    async def _requeue_rows(self, conn: AsyncConnection, ids: list[int]) -> int:
        """The rows `ids` (at most BATCH, none processing: the caller chose them in this
        transaction) back to pending, due now, with attempts from zero."""
        now = self._clock()
        chosen = select(Email.id).where(Email.id.in_(ids), Email.processing_status != "processing")
        await drop_cached_answers(conn, chosen)  # asked again, not answered from the cache
        await self._note_removed_answers(conn, chosen, now)
        for model in (Result, EmailFlag, TodoRow, KeywordWrite):
            await conn.execute(delete(model).where(model.email_id.in_(chosen)))
        await forget_left_out(conn, chosen)
        stmt = (
            update(Email)
            .where(Email.id.in_(chosen))
            .values(
                processing_status="pending",
                attempts=0,
                next_attempt_at=now,
                claimed_by=None,
                last_error=None,
                updated_at=now,
                skip_reason=case(
                    (Email.skip_reason == BACKFILL_NOTE, None), else_=Email.skip_reason
                ),
            )
        )
        requeued = int((await conn.execute(stmt)).rowcount)
        if requeued:
            await self._notify(conn, "queued")
        return requeued

    async def _note_removed_answers(
        self, conn: AsyncConnection, chosen: Any, now: datetime
    ) -> None:
        """Keep the pace's count of the recent answers that are about to be deleted."""
        recent = select(Result.created_at).where(
            Result.email_id.in_(chosen), Result.created_at >= now - PACE_KEPT
        )
        seconds = Counter(
            at.replace(microsecond=0) for at in (await conn.execute(recent)).scalars()
        )
        await conn.execute(delete(PaceRemoved).where(PaceRemoved.second < now - PACE_KEPT))
        if not seconds:
            return
        # One statement: at most BATCH rows, so at most as many parameters as the batch's ids.
        rows = [{"second": second, "answers": n} for second, n in seconds.items()]
        stmt = dialect_insert(self._engine)(PaceRemoved).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=["second"],
            set_={"answers": PaceRemoved.answers + stmt.excluded.answers},
        )
        await conn.execute(stmt)


async def forget_left_out(conn: AsyncConnection, chosen: Any) -> None:
    """The chosen rows the backfill window left out leave their mailboxes' counts (requeued, or
    removed by retention)."""
    stmt = (
        select(Email.account, Email.mailbox, func.count())
        .where(Email.id.in_(chosen), Email.skip_reason == BACKFILL_NOTE)
        .group_by(Email.account, Email.mailbox)
    )
    for account, mailbox, n in (await conn.execute(stmt)).all():
        await conn.execute(
            update(MailboxState)
            .where(MailboxState.account == account, MailboxState.mailbox == mailbox)
            .values(
                backfill_skipped=case(
                    (MailboxState.backfill_skipped > n, MailboxState.backfill_skipped - n),
                    else_=0,
                )
            )
        )


def _id_parts(ids: Sequence[int] | None) -> list[list[int] | None]:
    """The ids in parts of at most BATCH; [None] when messages are not chosen by id."""
    if ids is None:
        return [None]
    unique = sorted(set(ids))
    return [unique[i : i + BATCH] for i in range(0, len(unique), BATCH)]


def _conditions(chosen: RequeueFilter, ids: list[int] | None) -> list[Any]:
    """What a row must be to be requeued: never processing, and every condition given."""
    where: list[Any] = [Email.processing_status != "processing", ~_BARE]
    if ids is not None:
        where.append(Email.id.in_(ids))
    if chosen.status is not None:
        where.append(Email.processing_status == chosen.status)
    if chosen.since is not None:
        where.append(Email.sent_at >= chosen.since)
    if chosen.until is not None:
        where.append(Email.sent_at < chosen.until)
    if chosen.account is not None:
        where.append(Email.account == chosen.account)
    if chosen.flag is not None:
        flagged = exists().where(EmailFlag.email_id == Email.id, EmailFlag.flag == chosen.flag)
        where.append(flagged)
    if chosen.skipped:
        where.append(Email.skip_reason == BACKFILL_NOTE)
    return where
