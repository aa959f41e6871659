"""The headers triage reads, and what they tell on their own (no body needed).

Header names are lower case, as `ParsedMail.headers` keeps them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

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


def is_bulk(headers: Mapping[str, str]) -> bool:
    """Mailing lists and newsletters: List-Unsubscribe, List-Id, or Precedence bulk/list/junk."""
    if _get(headers, "list-unsubscribe") or _get(headers, "list-id"):
        return True
    return _get(headers, "precedence").lower() in {"bulk", "list", "junk"}


def is_digest(headers: Mapping[str, str]) -> bool:
    """A digest muninmail wrote: never sent to the model."""
    return bool(_get(headers, DIGEST_HEADER))


def is_automated(headers: Mapping[str, str]) -> bool:
    """Sent by a machine on its own (RFC 3834 Auto-Submitted other than "no")."""
    auto = _get(headers, "auto-submitted").split(";")[0].strip().lower()
    return bool(auto) and auto != "no"


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
