"""A mailbox's UIDs a window at a time, so a big mailbox's are never all in memory at once.

`UID SEARCH UID a:b` for consecutive windows up to the UIDNEXT that EXAMINE gave, then one
`UID SEARCH UID n:*` for what arrived since (a server without UIDNEXT gets that search alone).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Protocol

WINDOW = 10_000  # UIDs per search: a 70 KB answer at most


class UidSearch(Protocol):
    async def uids_from(self, first: int) -> list[int]: ...

    async def uids_in(self, first: int, last: int) -> list[int]: ...


async def uid_windows(
    conn: UidSearch, first: int, uidnext: int | None, window: int = WINDOW
) -> AsyncIterator[list[int]]:
    """The UIDs from `first` on, in order, as lists of at most `window` UIDs (but the last)."""
    top = (uidnext or 0) - 1
    while first <= top:
        last = min(first + window - 1, top)
        if found := await conn.uids_in(first, last):
            yield found
        first = last + 1
    if rest := await conn.uids_from(first):
        yield rest


async def in_lists(uids: Iterable[int], size: int) -> AsyncIterator[list[int]]:
    """UIDs already known, as the same kind of stream."""
    batch: list[int] = []
    for uid in uids:
        batch.append(uid)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
