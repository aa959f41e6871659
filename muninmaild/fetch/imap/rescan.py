"""A recreated mailbox (UIDVALIDITY changed): which of its messages the database already holds.

The fetcher reads the mailbox's headers a window of UIDs at a time and asks the database about
each batch of them (docs/imap.md), so neither every UID nor every known message of a big
mailbox is ever held at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection, Mapping
from typing import Protocol

from muninmaild.fetch.imap.connection import ImapConnection
from muninmaild.fetch.imap.responses import FetchedItem, chunked
from muninmaild.mail.parse import parse_message
from muninmaild.records import KnownMessages


class KnownMessagesStore(Protocol):
    async def known_messages(
        self, account: str, mailbox: str, message_ids: Collection[str], sizes: Collection[int]
    ) -> KnownMessages: ...


class Rescan:
    """Of each window of UIDs, those whose messages the store does not hold; `seen` and
    `highest` tell what was looked at, the known messages included."""

    def __init__(
        self,
        conn: ImapConnection,
        state: KnownMessagesStore,
        account: str,
        mailbox: str,
        batch: int,
    ) -> None:
        self._conn, self._state, self._batch = conn, state, batch
        self._where = (account, mailbox)
        self.seen = 0  # UIDs looked at
        self.highest = 0  # the highest of them

    async def unknown(self, windows: AsyncIterator[list[int]]) -> AsyncIterator[list[int]]:
        async for window in windows:
            self.seen += len(window)
            self.highest = max(self.highest, window[-1])
            new: list[int] = []
            for chunk in chunked(window, self._batch):
                heads = await self._conn.fetch(chunk, "HEADER")
                new += await self._unknown(heads)
            if new:
                yield new

    async def _unknown(self, heads: Mapping[int, FetchedItem]) -> list[int]:
        items = sorted(heads.items())
        # CPU work: off the event loop, so the watchdog keeps ticking.
        mails = await asyncio.to_thread(lambda: [parse_message(i.data or b"") for _, i in items])
        ids = {mail.message_id for mail in mails if mail.message_id}
        pairs = list(zip(items, mails, strict=True))
        sizes = {item.size or 0 for (_, item), mail in pairs if not mail.message_id}
        known = await self._state.known_messages(*self._where, ids, sizes)
        return [uid for (uid, item), mail in pairs if not known.knows(mail, item.size or 0)]
