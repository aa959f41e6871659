"""What the IMAP tests share: a store that tells when mail was queued, and row counts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.config.settings import AccountSettings
from muninmaild.fetch.imap.source import ImapSource, ImapTuning
from muninmaild.records import NewMessage, SyncAdvance, SyncState
from muninmaild.store.repository import Repository

TUNING = ImapTuning(timeout=5.0, lease_ttl=30.0)


def imap_source(
    account: AccountSettings, repo: Repository, holder: str = "test-holder", timeout: float = 5.0
) -> ImapSource:
    return ImapSource(account, repo, holder, replace(TUNING, timeout=timeout))


class Probe:
    """The repository as a fetcher's store, counting what it queued and waking waiters."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self.added = 0
        self.batches = 0
        self.after_batch: Callable[[int], None] | None = None
        self.syncs = 0  # mailbox syncs begun
        self._changed = asyncio.Condition()
        self.known_source_keys = repo.known_source_keys
        self.mailbox_synced = repo.mailbox_synced

    async def sync_state(self, account: str, mailbox: str) -> SyncState:
        self.syncs += 1
        async with self._changed:
            self._changed.notify_all()
        return await self.repo.sync_state(account, mailbox)

    async def add_messages(
        self, batch: Sequence[NewMessage], advance: SyncAdvance | None = None
    ) -> int:
        added = await self.repo.add_messages(batch, advance)
        self.added += added
        if batch:
            self.batches += 1
            if self.after_batch is not None:
                self.after_batch(self.batches)
        async with self._changed:
            self._changed.notify_all()
        return added

    async def until(self, total: int, within_s: float = 10.0) -> None:
        """Until `total` messages were queued."""
        await self.until_true(lambda: self.added >= total, within_s)

    async def until_true(self, condition: Callable[[], bool], within_s: float = 10.0) -> None:
        async with asyncio.timeout(within_s), self._changed:
            await self._changed.wait_for(condition)


async def row_counts(engine: AsyncEngine) -> tuple[int, int, int]:
    """Rows, distinct Message-IDs, distinct (mailbox, UIDVALIDITY, UID)."""
    sql = (
        "SELECT COUNT(*), COUNT(DISTINCT message_id), "
        "COUNT(DISTINCT mailbox || ':' || uidvalidity || ':' || uid) FROM emails"
    )
    async with engine.connect() as conn:
        rows, ids, identities = (await conn.execute(text(sql))).one()
    return int(rows), int(ids), int(identities)
