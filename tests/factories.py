"""Small builders for test data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from muninmaild.records import Analysis, ClaimedMessage, NewMessage, ParsedMail, TokenUsage
from muninmaild.store.repository import Completion, Repository


def mail(subject: str = "Hello", body: str = "Please send the report.", **kw: Any) -> ParsedMail:
    values: dict[str, object] = {
        "message_id": None,
        "subject": subject,
        "from_addr": "Ann <ann@example.com>",
        "to_addrs": "robin@example.com",
        "cc_addrs": "",
        "date": datetime(2026, 11, 27, 9, 0, tzinfo=UTC),
        "body_text": body,
        "size": len(body),
    }
    values |= kw
    return ParsedMail(**values)  # type: ignore[arg-type]


def new_message(uid: int, account: str = "work", mailbox: str = "INBOX", **kw: Any) -> NewMessage:
    message_id = kw.pop("message_id", f"<{account}.{mailbox}.{uid}@example.com>")
    skip = kw.pop("skip_reason", None)
    return NewMessage(
        account=account,
        mailbox=mailbox,
        uidvalidity=1,
        uid=uid,
        mail=mail(subject=f"Message {uid}", message_id=message_id, **kw),
        skip_reason=skip,
    )


async def claim_one(repo: Repository, token: str, lease_s: float) -> ClaimedMessage | None:
    """The next due row, as a worker of one claims it."""
    claimed = await repo.claim_batch(token, 1, lease_s)
    return claimed[0] if claimed else None


async def claim_oldest(repo: Repository, token: str, lease_s: float) -> ClaimedMessage | None:
    """The due row with the lowest id (the claim takes the newest first): the others the
    claim took go back at once, without using up an attempt."""
    claimed = await repo.claim_batch(token, 10_000, lease_s)
    for other in claimed[:-1]:
        assert await repo.release(other.id, other.token)
    return claimed[-1] if claimed else None


async def complete_one(
    repo: Repository, email_id: int, token: str, analysis: Analysis, usage: TokenUsage, model: str
) -> bool:
    """Stores one answer as the completer does; False when the row was taken over."""
    done = await repo.complete_many([Completion(email_id, token, analysis, usage, model)])
    return email_id in done
