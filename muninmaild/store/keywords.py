"""IMAP keywords to write back: the intents made with a message's results, and their outcomes.

A mixin of `Repository`. The intent (a `pending` row) is made in the transaction that stores a
message's results, for the accounts with `write_keywords`; the writer takes due intents, and
records what it wrote (`written`), what can never be written (`skipped`), or a note and a later
time to look again. A `written` row is never taken again: a keyword the user removed stays
removed until the message is requeued, which deletes the row with the results.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from muninmaild.records import KeywordOutcome, KeywordTarget
from muninmaild.store import rows
from muninmaild.store.chunks import chunks
from muninmaild.store.models import Email, EmailFlag, FetchLease, KeywordWrite, UTCDateTime
from muninmaild.store.rows import Json


class KeywordStore:
    _reader: AsyncEngine
    _clock: Callable[[], datetime]
    _tx: Callable[[], AbstractAsyncContextManager[AsyncConnection]]
    _keyword_accounts: frozenset[str] = frozenset()

    def write_keywords_for(self, accounts: Collection[str]) -> None:
        """The accounts whose analysed messages get a keyword intent (`write_keywords`)."""
        self._keyword_accounts = frozenset(accounts)

    async def _queue_keyword_writes(
        self, conn: AsyncConnection, ids: Sequence[int], now: datetime
    ) -> None:
        """Intents for the flagged messages among `ids` of keyword-writing accounts; called in
        the transaction that stores their results."""
        if not ids or not self._keyword_accounts:
            return
        when = literal(now, UTCDateTime())
        chosen = select(
            Email.id, literal("pending"), literal(""), literal(0), when, when, when
        ).where(
            Email.id.in_(ids),
            Email.account.in_(self._keyword_accounts),
            exists().where(EmailFlag.email_id == Email.id),
            ~exists().where(KeywordWrite.email_id == Email.id),
        )
        columns = ["email_id", "state", "keywords", "attempts", "next_attempt_at"]
        columns += ["created_at", "updated_at"]
        await conn.execute(insert(KeywordWrite).from_select(columns, chosen))

    async def keyword_targets(
        self, account: str, holder: str, limit: int = 500
    ) -> list[KeywordTarget]:
        """Due intents of `account`, by mailbox and UID, leaving out mailboxes another live
        instance fetches (it writes them)."""
        now = self._clock()
        others = exists().where(
            FetchLease.account == Email.account,
            FetchLease.mailbox == Email.mailbox,
            FetchLease.holder != holder,
            FetchLease.expires_at > now,
        )
        stmt = (
            select(
                Email.id,
                Email.account,
                Email.mailbox,
                Email.uidvalidity,
                Email.uid,
                KeywordWrite.created_at,
                KeywordWrite.attempts,
            )
            .join(Email, Email.id == KeywordWrite.email_id)
            .where(
                KeywordWrite.state == "pending",
                KeywordWrite.next_attempt_at <= now,
                Email.account == account,
                ~others,
            )
            .order_by(Email.mailbox, Email.uid)
            .limit(limit)
        )
        async with self._reader.connect() as conn:
            found = (await conn.execute(stmt)).all()
            flags = await _flags(conn, [r.id for r in found])
        return [
            KeywordTarget(
                email_id=r.id,
                account=r.account,
                mailbox=r.mailbox,
                uidvalidity=r.uidvalidity,
                uid=r.uid,
                flags=tuple(flags.get(r.id, ())),
                queued_at=r.created_at,
                attempts=r.attempts,
            )
            for r in found
        ]

    async def record_keyword_outcomes(self, outcomes: Sequence[KeywordOutcome]) -> int:
        """Store outcomes on the intents they were made for; how many were stored."""
        now = self._clock()
        stored = 0
        async with self._tx() as conn:
            for outcome in outcomes:
                target = outcome.target
                stmt = (
                    update(KeywordWrite)
                    .where(
                        KeywordWrite.email_id == target.email_id,
                        KeywordWrite.state == "pending",
                        KeywordWrite.created_at == target.queued_at,
                    )
                    .values(**_outcome_values(outcome, now))
                )
                stored += (await conn.execute(stmt)).rowcount
        return stored

    async def keyword_writes_due(self, accounts: Collection[str]) -> int:
        """Intents of these accounts that are due now (for `wait-idle`)."""
        if not accounts:
            return 0
        stmt = (
            select(func.count())
            .select_from(KeywordWrite)
            .join(Email, Email.id == KeywordWrite.email_id)
            .where(
                and_(
                    KeywordWrite.state == "pending", KeywordWrite.next_attempt_at <= self._clock()
                ),
                Email.account.in_(accounts),
            )
        )
        async with self._reader.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def keyword_write(self, email_id: int) -> Json | None:
        """What was written to the message, and when (`show`); None if nothing is meant to be."""
        stmt = select(*KeywordWrite.__table__.c).where(KeywordWrite.email_id == email_id)
        async with self._reader.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return rows.keyword_write(row) if row else None


def _outcome_values(outcome: KeywordOutcome, now: datetime) -> dict[str, Any]:
    values: dict[str, Any] = {"note": outcome.note, "updated_at": now}
    if outcome.state == "pending":
        values["attempts"] = KeywordWrite.attempts + 1
        values["next_attempt_at"] = now + timedelta(seconds=outcome.retry_in_s)
        return values
    values |= {"state": outcome.state, "keywords": " ".join(outcome.keywords)}
    if outcome.state == "written":
        values["written_at"] = now
    return values


async def _flags(conn: AsyncConnection, ids: Sequence[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    if not ids:
        return out
    for part in chunks(ids):
        stmt = (
            select(EmailFlag.email_id, EmailFlag.flag)
            .where(EmailFlag.email_id.in_(part))
            .order_by(EmailFlag.email_id, EmailFlag.flag)
        )
        for email_id, flag in (await conn.execute(stmt)).all():
            out.setdefault(email_id, []).append(flag)
    return out
