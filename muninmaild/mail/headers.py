"""The headers triage reads, and what they tell on their own (no body needed).

Header names are lower case, as `ParsedMail.headers` keeps them.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from email.utils import parseaddr

# What the model (and the rules backend) is shown besides sender, recipients, date and subject.
TRIAGE_HEADERS = (
    "list-unsubscribe",
    "list-id",
    "precedence",
    "auto-submitted",
    "importance",
    "x-priority",
    "x-msmail-priority",
    "priority",
    "in-reply-to",
)
# The mark of a digest muninmail appended to the mailbox itself (digest/message.py).
DIGEST_HEADER = "x-muninmail-digest"
# What is stored with each message: the above, what threading and replies need, and the mark
# of our own digests.
KEPT_HEADERS = (*TRIAGE_HEADERS, "references", "reply-to", "content-type", DIGEST_HEADER)
_LEADING_NUMBER = re.compile(r"(\d+)")


# Mailboxes only machines write from, as a whole local part (RFC 2142's and RFC 3464's, and
# the usual notification senders). Kept short: each is a name no person goes by.
MACHINE_MAILBOXES = frozenset({"mailer-daemon", "postmaster", "notifications", "notification"})
# "no-reply" in its common spellings: the whole local part, or one of its parts between dots,
# hyphens or underscores ("noreply-billing", "shop.noreply"); digits may follow ("noreply2").
_NO_REPLY = re.compile(
    r"(?:^|[._-])(?:no[._-]?reply|do[._-]?not[._-]?reply)\d*(?:$|[._-])", re.IGNORECASE
)


def is_bulk(headers: Mapping[str, str]) -> bool:
    """Mailing lists and newsletters: List-Unsubscribe, List-Id, or Precedence bulk/list/junk."""
    return why_bulk(headers) is not None


def why_bulk(headers: Mapping[str, str]) -> str | None:
    """The header that marks the message as bulk mail, in words; None when none does."""
    for name, shown in (("list-id", "List-Id"), ("list-unsubscribe", "List-Unsubscribe")):
        if _get(headers, name):
            return shown
    precedence = _get(headers, "precedence").lower()
    if precedence in {"bulk", "list", "junk"}:
        return f"Precedence: {precedence}"
    return None


def is_digest(headers: Mapping[str, str]) -> bool:
    """A digest muninmail wrote: never sent to the model."""
    return bool(_get(headers, DIGEST_HEADER))


def is_automated(headers: Mapping[str, str], from_addr: str = "") -> bool:
    """Sent by a machine on its own: RFC 3834 Auto-Submitted other than "no", or, when
    `from_addr` is given, a sender that takes no replies (`is_no_reply_sender`)."""
    return why_automated(headers, from_addr) is not None


def why_automated(headers: Mapping[str, str], from_addr: str = "") -> str | None:
    """What marks the message as sent by a machine, in words; None when nothing does."""
    auto = _get(headers, "auto-submitted").split(";")[0].strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    if is_no_reply_sender(from_addr):
        return "a sender that takes no replies"
    return None


def is_no_reply_sender(from_addr: str) -> bool:
    """A no-reply address (noreply@, no-reply@, donotreply@, billing-noreply@, ...) or a
    mailbox only machines write from (mailer-daemon@, postmaster@, notifications@).

    Only the address is read, never the display name, and only its local part, without a
    `+tag`; a person's address ("nora.reply@", "noreen@") does not match.
    """
    _, address = parseaddr(from_addr)
    local, at, _ = address.rpartition("@")
    if not at or not local:
        return False
    local = local.strip('"').split("+", 1)[0].lower()
    return local in MACHINE_MAILBOXES or _NO_REPLY.search(local) is not None


def why_skipped(headers: Mapping[str, str], from_addr: str, kinds: Collection[str]) -> str | None:
    """Why `ai.skip` (its `kinds`: "bulk", "automated") leaves the message to the offline
    rules, as "bulk: List-Id"; None when the model is to be asked."""
    if "bulk" in kinds and (why := why_bulk(headers)) is not None:
        return f"bulk: {why}"
    if "automated" in kinds and (why := why_automated(headers, from_addr)) is not None:
        return f"automated: {why}"
    return None


def importance(headers: Mapping[str, str]) -> str:
    """ "high", "low" or "": from Importance, X-Priority ("1 (Highest)"), X-MSMail-Priority or
    Priority, the first that says."""
    said = _get(headers, "importance").lower() or _get(headers, "x-msmail-priority").lower()
    if said in {"high", "low"}:
        return said
    number = _LEADING_NUMBER.match(_get(headers, "x-priority"))
    x_priority = number.group(1) if number else ""
    if x_priority in {"1", "2"}:
        return "high"
    if x_priority in {"4", "5"}:
        return "low"
    return {"urgent": "high", "non-urgent": "low"}.get(_get(headers, "priority").lower(), "")


def _get(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:  # a caller's own mapping may keep the sender's spelling
        value = next((v for k, v in headers.items() if k.lower() == name), "")
    return value.strip()
