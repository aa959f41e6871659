"""An IMAP connection that writes: keywords on messages, and whole messages (APPEND).

Kept apart from the fetcher's connection, which only ever EXAMINEs (read-only): a mailbox is
SELECTed here, on a connection of its own. Only keywords are ever added (`+FLAGS.SILENT`), never
`\\Seen` or another system flag, and never removed.
"""

from __future__ import annotations

from collections.abc import Sequence

import aioimaplib

from muninmaild.errors import FetchError
from muninmaild.fetch.imap.connection import ImapConnection, MailboxRefused
from muninmaild.fetch.imap.flags import SelectedMailbox, flag_list, parse_flags, parse_select
from muninmaild.fetch.imap.responses import (
    parse_search,
    quote_mailbox,
    quote_string,
    status_text,
    uid_set,
)


class StoreRefused(FetchError):
    """The server answered NO to a STORE or APPEND: the connection itself is fine."""


class WriteConnection(ImapConnection):
    async def select(self, mailbox: str) -> SelectedMailbox:
        """Open a mailbox read-write (SELECT)."""
        await self._settle()
        protocol = self._client.protocol
        response = await self._call(
            f"SELECT {mailbox}", self._client.select(quote_mailbox(mailbox))
        )
        if response.result != "OK":
            protocol.state = aioimaplib.AUTH
            raise MailboxRefused(
                f"{self._where}: cannot open mailbox {mailbox!r}: {status_text(response.lines)}"
            )
        try:
            return parse_select(response.lines)
        except ValueError as exc:
            self.broken = True
            raise FetchError(f"{self._where}: mailbox {mailbox!r}: {exc}") from None

    async def flags(self, uids: Sequence[int]) -> dict[int, frozenset[str]]:
        """The flags of the selected mailbox's messages `uids`; a deleted one is left out."""
        await self._settle()
        command = self._client.uid("fetch", uid_set(uids), "(UID FLAGS)")
        response = await self._call("UID FETCH FLAGS", command)
        self._expect_ok("UID FETCH FLAGS", response)
        return {uid: flags for uid, flags in parse_flags(response.lines).items() if uid in uids}

    async def add_keywords(self, uids: Sequence[int], keywords: Sequence[str]) -> None:
        """Add keywords to messages of the selected mailbox, touching no other flag."""
        await self._settle()
        command = self._client.uid("store", uid_set(uids), "+FLAGS.SILENT", flag_list(keywords))
        response = await self._call("UID STORE", command)
        if response.result != "OK":
            raise StoreRefused(f"{self._where}: UID STORE refused: {status_text(response.lines)}")

    async def find_message_id(self, mailbox: str, message_id: str) -> list[int]:
        """UIDs of the messages of `mailbox` with this Message-ID (read-only, EXAMINE)."""
        await self.examine(mailbox)
        search = self._client.uid_search(
            "HEADER", "Message-ID", quote_string(message_id), charset=None
        )
        response = await self._call("UID SEARCH", search)
        self._expect_ok("UID SEARCH", response)
        return parse_search(response.lines)

    async def append(self, mailbox: str, raw: bytes) -> None:
        """Add a message to `mailbox`, with no flags: it arrives unread."""
        await self._settle()
        response = await self._call("APPEND", self._client.append(raw, quote_mailbox(mailbox)))
        if response.result != "OK":
            raise StoreRefused(
                f"{self._where}: APPEND to {mailbox!r} refused: {status_text(response.lines)}"
            )
