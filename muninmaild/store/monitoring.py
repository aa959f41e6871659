"""What monitoring reads from the store: how long pending mail has waited, and when each mailbox
was last synced. A mixin of `Repository`.

A mailbox's last successful sync is kept in `mailbox_state.last_fetch_at` by whichever instance
holds it, so it is the same answer on every instance sharing the database and after a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime

from sqlalchemy import and_, case, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from muninmaild.records import MailboxFetch, Waiting
from muninmaild.store.engine import dialect_insert
from muninmaild.store.models import CLAIMABLE, Email, MailboxState


class MonitoringStore:
    _engine: AsyncEngine
    _reader: AsyncEngine
    _clock: Callable[[], datetime]
    _tx: Callable[[], AbstractAsyncContextManager[AsyncConnection]]

    async def waiting(self) -> Waiting:
        """The pending messages: how many are due now, and the oldest times, in one scan."""
        due = and_(Email.processing_status == "pending", Email.next_attempt_at <= self._clock())
        stmt = select(
            func.count(case((due, 1))),
            func.min(Email.created_at),
            func.min(case((due, Email.next_attempt_at))),
        ).where(text(CLAIMABLE), Email.processing_status == "pending")  # the claim index
        async with self._reader.connect() as conn:
            count, oldest, oldest_due = (await conn.execute(stmt)).one()
        return Waiting(int(count), oldest, oldest_due)

    async def mailbox_synced(self, account: str, mailbox: str) -> None:
        """Note that a sync of the mailbox just succeeded, whether or not it found mail.

        From then on the mailbox counts as caught up: what arrives later is live mail.
        """
        now = self._clock()
        stmt = dialect_insert(self._engine)(MailboxState).values(
            account=account,
            mailbox=mailbox,
            highest_uid=0,
            last_fetch_at=now,
            caught_up_at=now,
            updated_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["account", "mailbox"],
            set_={"last_fetch_at": now, "caught_up_at": now, "updated_at": now}
            | {"last_error": None},
        )
        async with self._tx() as conn:
            await conn.execute(stmt)

    async def mailbox_fetches(self, accounts: Sequence[str]) -> list[MailboxFetch]:
        """Each known mailbox of these accounts with its last successful sync."""
        stmt = (
            select(MailboxState.account, MailboxState.mailbox, MailboxState.last_fetch_at)
            .where(MailboxState.account.in_(accounts))
            .order_by(MailboxState.account, MailboxState.mailbox)
        )
        async with self._reader.connect() as conn:
            found = (await conn.execute(stmt)).all()
        return [MailboxFetch(account, mailbox, when) for account, mailbox, when in found]
