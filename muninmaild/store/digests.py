"""The digest's reads (a period's mail) and the record of digests appended to a mailbox.

A mixin of `Repository`. A delivery is recorded before its APPEND (`begin_digest`) and marked
done after it, and (account, period) is unique: at most one digest per account and period,
across every instance sharing the database.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from muninmaild.records import DigestRecord
from muninmaild.store import rows
from muninmaild.store.chunks import chunks
from muninmaild.store.models import DigestDelivery, Email, EmailFlag, Result
from muninmaild.store.rows import Json

_DIGEST_COLUMNS = (
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
    Email.headers,
    Email.created_at,
    Email.updated_at,
    Result.summary,
)


class DigestStore:
    _reader: AsyncEngine
    _clock: Callable[[], datetime]
    _tx: Callable[[], AbstractAsyncContextManager[AsyncConnection]]
    _insert_ignore: Callable[[Any, dict[str, Any]], Any]

    async def digest_messages(
        self, since: datetime, until: datetime, account: str | None = None
    ) -> list[Json]:
        """Messages queued in [since, until), oldest first, with summaries and flags."""
        stmt = (
            select(*_DIGEST_COLUMNS)
            .outerjoin(Result, Result.email_id == Email.id)
            .where(Email.created_at >= since, Email.created_at < until)
            .order_by(Email.id)
        )
        if account is not None:
            stmt = stmt.where(Email.account == account)
        async with self._reader.connect() as conn:
            found = (await conn.execute(stmt)).all()
            flags: dict[int, list[str]] = {}
            ids = [r.id for r in found]
            for part in chunks(ids):
                pairs = select(EmailFlag.email_id, EmailFlag.flag).where(
                    EmailFlag.email_id.in_(part)
                )
                for email_id, flag in (await conn.execute(pairs)).all():
                    flags.setdefault(email_id, []).append(flag)
        return [rows.digest_message(r, sorted(flags.get(r.id, []))) for r in found]

    async def begin_digest(
        self, account: str, mailbox: str, period: str, message_id: str
    ) -> tuple[DigestRecord, bool]:
        """The delivery of this account and period: made now (True), or found (False)."""
        values: dict[str, Any] = {"account": account, "mailbox": mailbox, "period": period}
        values |= {"message_id": message_id, "state": "appending", "created_at": self._clock()}
        async with self._tx() as conn:
            made = (await conn.execute(self._insert_ignore(DigestDelivery, values))).rowcount
            row = (
                await conn.execute(
                    _DIGESTS.where(
                        DigestDelivery.account == account, DigestDelivery.period == period
                    )
                )
            ).one()
            record = _record(row)
        return record, bool(made)

    async def digest_delivered(self, digest_id: int) -> DigestRecord:
        async with self._tx() as conn:
            await conn.execute(
                update(DigestDelivery)
                .where(DigestDelivery.id == digest_id)
                .values(state="delivered", delivered_at=self._clock())
            )
            row = (await conn.execute(_DIGESTS.where(DigestDelivery.id == digest_id))).one()
            return _record(row)


_DIGESTS = select(*DigestDelivery.__table__.c)


def _record(row: Any) -> DigestRecord:
    return DigestRecord(
        id=row.id,
        account=row.account,
        mailbox=row.mailbox,
        period=row.period,
        message_id=row.message_id,
        state=row.state,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )
