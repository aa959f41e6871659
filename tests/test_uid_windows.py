"""A mailbox's UIDs are searched a window at a time (never all held), and nothing is missed."""

from __future__ import annotations

from dataclasses import dataclass, field

from muninmaild.fetch.imap.uid_windows import uid_windows


@dataclass
class Mailbox:
    """UID SEARCH over a set of UIDs, as a server answers it (`n:*` always has the highest)."""

    uids: list[int]
    searches: list[str] = field(default_factory=list)

    async def uids_in(self, first: int, last: int) -> list[int]:
        self.searches.append(f"{first}:{last}")
        return [u for u in self.uids if first <= u <= last]

    async def uids_from(self, first: int) -> list[int]:
        self.searches.append(f"{first}:*")
        return [u for u in self.uids if u >= first]

    async def highest_uid(self) -> int | None:
        """`UID FETCH * (UID)`: the last message's UID, nothing in an empty mailbox."""
        self.searches.append("highest")
        return max(self.uids, default=None)


async def collect(box: Mailbox, first: int, uidnext: int | None, window: int) -> list[list[int]]:
    return [w async for w in uid_windows(box, first, uidnext, window)]


async def test_uids_below_uidnext_come_in_windows_then_what_arrived_since() -> None:
    box = Mailbox([1, 2, 3, 5, 8, 9, 10, 11, 12])
    found = await collect(box, 2, uidnext=11, window=4)  # 11 and 12 arrived after EXAMINE
    assert found == [[2, 3, 5], [8, 9], [10], [11, 12]]
    assert box.searches == ["2:5", "6:9", "10:10", "11:*"]


async def test_empty_windows_yield_nothing() -> None:
    box = Mailbox([1, 50])
    assert await collect(box, 2, uidnext=51, window=10) == [[50]]
    assert box.searches == [f"{n}:{n + 9}" for n in range(2, 42, 10)] + ["42:50", "51:*"]


async def test_a_server_without_uidnext_is_windowed_up_to_its_highest_uid() -> None:
    box = Mailbox([1, 2, 3, 5, 8, 9, 10])
    assert await collect(box, 2, uidnext=None, window=4) == [[2, 3, 5], [8, 9], [10]]
    # Never one search that lists every UID: the highest is asked for, then windows up to it.
    assert box.searches == ["highest", "2:5", "6:9", "10:10", "11:*"]


async def test_an_empty_mailbox_without_uidnext_is_searched_once_for_what_arrives() -> None:
    box = Mailbox([])
    assert await collect(box, 1, uidnext=None, window=4) == []
    assert box.searches == ["highest", "1:*"]
