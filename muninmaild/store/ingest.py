"""The fetch side of the store: queueing new mail, each mailbox's position, fetch leases, and
what UIDVALIDITY recovery needs to recognise known messages. A mixin of `Repository`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from muninmaild.records import (
    BACKFILL_NOTE,
    KnownMessages,
    MessageKey,
    NewMessage,
    SyncAdvance,
    SyncState,
)
from muninmaild.store import rows
from muninmaild.store.chunks import chunks
from muninmaild.store.engine import dialect_insert
from muninmaild.store.models import Email, FetchLease, MailboxState

_KEYS_PER_STATEMENT = 500


class IngestStore:
    _engine: AsyncEngine
    _reader: AsyncEngine
    _clock: Callable[[], datetime]
    _tx: Callable[[], AbstractAsyncContextManager[AsyncConnection]]
    _insert_ignore: Callable[[Any, dict[str, Any]], Any]
    _insert_ignore_stmt: Callable[[Any], Any]
    _notify: Callable[[AsyncConnection, str], Any]

    # -- ingest -------------------------------------------------------------------------------

    async def add_messages(
        self, batch: Sequence[NewMessage], advance: SyncAdvance | None = None
    ) -> int:
        """Queue new messages; returns how many were new. Known identities are ignored.

        A message whose Message-ID the account already has (another folder, a recreated
        mailbox) still gets its row, completed at once, pointing at the first copy.
        """
        now = self._clock()
        async with self._tx() as conn:
            known = await self._first_by_message_id(conn, batch)
            live = await self._live_mailboxes(conn, batch)
            added = 0
            left_out: dict[tuple[str, str], int] = {}
            # The k-th copy of a Message-ID within the batch goes in pass k, so that every
            # copy after the first can point at the row the earlier pass made.
            for group in _by_occurrence(batch):
                added += await self._insert_new(conn, group, known, live, now, left_out)
            if advance:
                await self._save_sync_state(conn, advance, now)
            await self._count_left_out(conn, left_out, now)
            if added:
                await self._notify(conn, "queued")
            return added

    async def _insert_new(
        self,
        conn: AsyncConnection,
        batch: Sequence[NewMessage],
        known: dict[str, int],
        live: set[tuple[str, str, int]],
        now: datetime,
        left_out: dict[tuple[str, str], int],
    ) -> int:
        """Multi-row INSERTs ignoring known identities; `known` learns the new Message-IDs,
        `left_out` how many new rows of each mailbox the backfill window left out."""
        values = []
        for msg in batch:
            row = rows.email_values(msg, now)
            row["live"] = (msg.account, msg.mailbox, msg.uidvalidity) in live
            first = known.get(msg.mail.message_id or "")
            if first is not None and row["processing_status"] == "pending":
                row |= rows.completed_values(f"same Message-ID as message {first}", now)
            values.append(row)
        if not values:
            return 0
        # Executemany with RETURNING: SQLAlchemy sends multi-row INSERTs from one cached
        # compilation, where a statement of literal rows would be compiled anew every time.
        stmt = self._insert_ignore_stmt(Email).returning(
            Email.id, Email.message_id, Email.account, Email.mailbox, Email.skip_reason
        )
        found = (await conn.execute(stmt, _same_keys(values))).all()
        for email_id, message_id, account, mailbox, skip_reason in found:
            if message_id:
                known.setdefault(message_id, email_id)
            if skip_reason == BACKFILL_NOTE:
                left_out[(account, mailbox)] = left_out.get((account, mailbox), 0) + 1
        return len(found)

    async def _count_left_out(
        self, conn: AsyncConnection, left_out: dict[tuple[str, str], int], now: datetime
    ) -> None:
        """Add to each mailbox's count of mail the backfill window left out."""
        for (account, mailbox), n in left_out.items():
            changed = await conn.execute(
                update(MailboxState)
                .where(MailboxState.account == account, MailboxState.mailbox == mailbox)
                .values(backfill_skipped=MailboxState.backfill_skipped + n)
            )
            if changed.rowcount == 0:  # no position stored yet: a row that holds the count
                row = {"account": account, "mailbox": mailbox, "highest_uid": 0}
                row |= {"backfill_skipped": n, "updated_at": now}
                await conn.execute(self._insert_ignore(MailboxState, row))

    async def backfill_left_out(self) -> dict[str, int]:
        """Per account, the mail its backfill window left out and that is not requeued since."""
        stmt = select(MailboxState.account, func.sum(MailboxState.backfill_skipped)).group_by(
            MailboxState.account
        )
        async with self._reader.connect() as conn:
            return {account: int(n or 0) for account, n in (await conn.execute(stmt)).all()}

    async def _first_by_message_id(
        self, conn: AsyncConnection, batch: Sequence[NewMessage]
    ) -> dict[str, int]:
        ids = {m.mail.message_id for m in batch if m.mail.message_id}
        if not ids:
            return {}
        account = batch[0].account
        out: dict[str, int] = {}
        for part in chunks(sorted(ids)):
            stmt = (
                select(Email.message_id, func.min(Email.id))
                .where(Email.account == account, Email.message_id.in_(part))
                .group_by(Email.message_id)
            )
            out |= {mid: first for mid, first in (await conn.execute(stmt)).all() if mid}
        return out

    async def _live_mailboxes(
        self, conn: AsyncConnection, batch: Sequence[NewMessage]
    ) -> set[tuple[str, str, int]]:
        """The batch's (account, mailbox, UIDVALIDITY) whose first sync was done: live mail.

        A mailbox recreated under a new UIDVALIDITY is backlog again until its rescan ends,
        which is when its new UIDVALIDITY is stored.
        """
        live: set[tuple[str, str, int]] = set()
        for account, mailbox in {(m.account, m.mailbox) for m in batch}:
            stmt = select(MailboxState.uidvalidity).where(
                MailboxState.account == account,
                MailboxState.mailbox == mailbox,
                MailboxState.caught_up_at.is_not(None),
            )
            row = (await conn.execute(stmt)).first()
            if row is None:
                continue
            uidvalidities = {m.uidvalidity for m in batch if m.mailbox == mailbox}
            # No UIDVALIDITY stored: a source without one (an empty Maildir when it synced).
            live |= {(account, mailbox, u) for u in uidvalidities if row[0] in (None, u)}
        return live

    async def sync_state(self, account: str, mailbox: str) -> SyncState:
        stmt = select(
            MailboxState.uidvalidity, MailboxState.highest_uid, MailboxState.backfill_uid
        ).where(MailboxState.account == account, MailboxState.mailbox == mailbox)
        async with self._reader.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return SyncState(row[0], row[1], row[2] or 0) if row else SyncState()

    async def _save_sync_state(
        self, conn: AsyncConnection, adv: SyncAdvance, now: datetime
    ) -> None:
        key = {"account": adv.account, "mailbox": adv.mailbox}
        values: dict[str, Any] = {"uidvalidity": adv.uidvalidity, "highest_uid": adv.highest_uid}
        values |= {"last_fetch_at": now, "updated_at": now, "last_error": None}
        if adv.backfill_uid is not None:
            values["backfill_uid"] = adv.backfill_uid
        # Never backwards within one UIDVALIDITY: a fetcher that lost its lease mid-sync must
        # not make UIDs that are in use look free again.
        keep = and_(
            MailboxState.uidvalidity == adv.uidvalidity,
            MailboxState.highest_uid > adv.highest_uid,
        )
        monotonic = values | {
            "highest_uid": case((keep, MailboxState.highest_uid), else_=adv.highest_uid)
        }
        changed = await conn.execute(
            update(MailboxState)
            .where(MailboxState.account == adv.account, MailboxState.mailbox == adv.mailbox)
            .values(**monotonic)
        )
        if changed.rowcount == 0:
            await conn.execute(self._insert_ignore(MailboxState, key | values))

    async def known_source_keys(self, account: str, mailbox: str, keys: Sequence[str]) -> set[str]:
        """Which of `keys` (Maildir file names) the mailbox already has rows for.

        Asked in chunks, each an index lookup: never every key of a big folder at once.
        """
        known: set[str] = set()
        async with self._reader.connect() as conn:
            for start in range(0, len(keys), _KEYS_PER_STATEMENT):
                chunk = keys[start : start + _KEYS_PER_STATEMENT]
                stmt = select(Email.source_key).where(
                    Email.account == account,
                    Email.mailbox == mailbox,
                    Email.source_key.in_(chunk),
                )
                known.update(k for k in (await conn.execute(stmt)).scalars() if k)
        return known

    # -- fetch leases and UIDVALIDITY recovery (the IMAP fetcher) -------------------------------

    async def acquire_fetch_lease(
        self, account: str, mailbox: str, holder: str, ttl_s: float
    ) -> bool:
        """Take a mailbox's lease if free, expired or ours (then renew it): one statement."""
        now = self._clock()
        expires = now + timedelta(seconds=ttl_s)
        stmt = dialect_insert(self._engine)(FetchLease).values(
            account=account, mailbox=mailbox, holder=holder, expires_at=expires
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["account", "mailbox"],
            set_={"holder": stmt.excluded.holder, "expires_at": stmt.excluded.expires_at},
            where=(FetchLease.holder == holder) | (FetchLease.expires_at < now),
        ).returning(FetchLease.holder)
        async with self._tx() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def release_fetch_lease(self, account: str, mailbox: str, holder: str) -> None:
        stmt = delete(FetchLease).where(
            FetchLease.account == account,
            FetchLease.mailbox == mailbox,
            FetchLease.holder == holder,
        )
        async with self._tx() as conn:
            await conn.execute(stmt)

    async def known_messages(
        self, account: str, mailbox: str, message_ids: Collection[str], sizes: Collection[int]
    ) -> KnownMessages:
        """Which of `message_ids` the mailbox holds, and the (date, sender, subject, size) of
        its messages without a Message-ID whose size is among `sizes`.

        Asked for a batch of headers at a time, so a rescan never holds every known message
        of a big mailbox, and each question is an index lookup: by Message-ID (the mailbox is
        compared here, or SQLite would walk the whole mailbox by `uq_emails_source_key`), and
        for the rare messages without one by size (`ix_emails_without_message_id`).
        """
        ids: set[str] = set()
        keys: set[MessageKey] = set()
        async with self._reader.connect() as conn:
            for part in chunks(sorted(message_ids)):
                stmt = select(Email.message_id, Email.mailbox).where(
                    Email.account == account, Email.message_id.in_(part)
                )
                found = (await conn.execute(stmt)).all()
                ids.update(m for m, box in found if m and box == mailbox)
            for sized in chunks(sorted(sizes)):
                stmt_keys = select(Email.sent_at, Email.from_addr, Email.subject, Email.size).where(
                    Email.account == account,
                    Email.mailbox == mailbox,
                    Email.message_id.is_(None),
                    Email.size.in_(sized),
                )
                keys.update(
                    (at, sender, subject, size)
                    for at, sender, subject, size in await conn.execute(stmt_keys)
                )
        return KnownMessages(frozenset(ids), frozenset(keys))


def _by_occurrence(batch: Sequence[NewMessage]) -> list[list[NewMessage]]:
    seen: dict[str, int] = {}
    passes: list[list[NewMessage]] = []
    for msg in batch:
        mid = msg.mail.message_id
        k = seen.get(mid, 0) if mid else 0
        if mid:
            seen[mid] = k + 1
        if k == len(passes):
            passes.append([])
        passes[k].append(msg)
    return passes


def _same_keys(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A multi-row INSERT needs the same columns in every row; absent ones become NULL."""
    keys = {k for row in values for k in row}
    return [{k: row.get(k) for k in keys} for row in values]
