"""Small builders for test data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from muninmaild.mail.message import ParsedMail
from muninmaild.records import NewMessage


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
