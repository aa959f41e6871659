"""A mailbox's UIDs a window at a time, so a big mailbox's are never all in memory at once.

`UID SEARCH UID a:b` for consecutive windows up to the UIDNEXT that EXAMINE gave, then one
`UID SEARCH UID n:*` for what arrived since. A server without UIDNEXT (Courier) is asked for
its highest UID instead, and windowed up to that.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

WINDOW = 10_000  # UIDs per search: a 70 KB answer at most


class UidSearch(Protocol):
    async def uids_from(self, first: int) -> list[int]: ...

    async def uids_in(self, first: int, last: int) -> list[int]: ...

    async def highest_uid(self) -> int | None: ...


async def uid_windows(
    conn: UidSearch, first: int, uidnext: int | None, window: int = WINDOW
) -> AsyncIterator[list[int]]:
    """The UIDs from `first` on, in order, as lists of at most `window` UIDs (but the last)."""
    if uidnext is None:
        highest = await conn.highest_uid()
        uidnext = None if highest is None else highest + 1
    top = (uidnext or 0) - 1
    while first <= top:
        last = min(first + window - 1, top)
        if found := await conn.uids_in(first, last):
            yield found
        first = last + 1
    if rest := await conn.uids_from(first):
        yield rest
