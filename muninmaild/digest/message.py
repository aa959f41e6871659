"""The digest as a mail message for IMAP APPEND: text and HTML alternatives, dated, marked.

`X-Muninmail-Digest` (the period's name) marks it as ours, so the fetcher that finds it in the
mailbox queues it without asking the model; `Auto-Submitted: auto-generated` (RFC 3834) tells
other software that a program wrote it. CRLF line endings and 7-bit transfer encodings, as
IMAP APPEND expects a message on the wire.
"""

from __future__ import annotations

import re
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from muninmaild.digest import render
from muninmaild.digest.build import Json

HEADER = "X-Muninmail-Digest"
FALLBACK_ADDRESS = "muninmail@localhost"
_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


def new_message_id() -> str:
    return make_msgid(idstring="digest", domain="muninmail.invalid")


def address_for(username: str) -> str:
    """The account's own address when its user name is one, so the digest is from and to it."""
    return username if _ADDRESS.fullmatch(username) else FALLBACK_ADDRESS


def build(d: Json, text: str, *, address: str, message_id: str, now: datetime) -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    local, domain = address.split("@", 1)
    msg["From"] = Address("muninmail", local, domain)
    msg["To"] = Address(username=local, domain=domain)
    msg["Subject"] = render.subject(d)
    msg["Date"] = format_datetime(now.astimezone())
    msg["Message-ID"] = message_id
    msg[HEADER] = d["period"]["key"]
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text, cte="quoted-printable")
    msg.add_alternative(render.html(d), subtype="html", cte="quoted-printable")
    return msg.as_bytes()
