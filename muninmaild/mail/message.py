"""What the rest of the daemon knows about one message once it is parsed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    size: int


@dataclass(frozen=True)
class ParsedMail:
    """A parsed message. Every field has a value even for badly broken mail.

    `headers` keeps the headers that matter for triage (lower-case names; `KEPT_HEADERS` in
    `mail/headers.py`). `body_text` is the whole readable body (HTML turned into
    text), not yet trimmed for the model. `defects` are short readable descriptions.
    """

    message_id: str | None
    subject: str
    from_addr: str
    to_addrs: str
    cc_addrs: str
    date: datetime | None
    headers: dict[str, str] = field(default_factory=dict)
    body_text: str = ""
    body_was_html: bool = False
    attachments: tuple[Attachment, ...] = ()
    has_calendar: bool = False
    defects: tuple[str, ...] = ()
    size: int = 0
