"""What a mail source offers the fetch loop, and what the loop offers it to store mail.

A source (IMAP or a Maildir) catches up with `sync()` and then waits in
`wait_for_mail()` until there may be something new (IDLE push, a poll timer). It raises
`FetchError` (or anything else) when it fails; the loop backs off and calls `sync()` again,
and the source reconnects as needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from muninmaild.mail.headers import is_digest
from muninmaild.records import NewMessage, ParsedMail, SyncAdvance, SyncState

DIGEST_NOTE = "not analysed: a digest muninmail delivered"


def oversize_note(size: int, limit: int) -> str:
    """The skip reason of a message too large to analyse (it is queued from its headers)."""
    return f"not analysed: {size} bytes, over the limit of {limit}"


def digest_note(mail: ParsedMail) -> str | None:
    """The skip reason of our own digest, recognised by its header: the model never sees it."""
    return DIGEST_NOTE if is_digest(mail.headers) else None


class MessageStore(Protocol):
    """The part of the repository a source needs."""

    async def sync_state(self, account: str, mailbox: str) -> SyncState: ...

    async def known_source_keys(self, account: str, mailbox: str, keys: Sequence[str]) -> set[str]:
        """Which of `keys` (a source's own message keys) the mailbox already has."""
        ...

    async def add_messages(
        self, batch: Sequence[NewMessage], advance: SyncAdvance | None = None
    ) -> int: ...

    async def mailbox_synced(self, account: str, mailbox: str) -> None:
        """A mailbox's sync succeeded (monitoring shows when each mailbox last did)."""
        ...


class MailSource(Protocol):
    account: str

    async def sync(self, store: MessageStore) -> int:
        """Queue everything new now; returns how many messages were queued."""
        ...

    async def wait_for_mail(self, max_wait_s: float) -> None:
        """Return when new mail may have arrived, or after `max_wait_s` seconds."""
        ...

    async def close(self) -> None: ...
