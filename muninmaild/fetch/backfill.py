"""The backfill window: how much of what a mailbox already holds its first sync sends to the model.

An account's `backfill` ("14d" by default, "all" or "none") applies to the mail that was in a
mailbox when it was first synced (and again after a UIDVALIDITY change): the UIDs up to the end
of that sync, stored with the mailbox's position so that a first sync cut short goes on with
the same rule. Of those, mail older than the window by its arrival in the mailbox (IMAP
INTERNALDATE, to the day as IMAP's SEARCH BEFORE counts it; a Maildir file's modification time,
which is its delivery time) gets its row completed with `BACKFILL_NOTE` and no model request.
Mail that arrives later is never left out, however old its dates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from muninmaild.records import SyncState

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Backfill:
    window: timedelta | None = None  # None: all mail goes to the model
    clock: Callable[[], datetime] = field(default=_utcnow, compare=False)

    @property
    def leaves_out_all(self) -> bool:
        """`backfill = "none"`: nothing that was there at the first sync goes to the model."""
        return self.window is not None and self.window <= timedelta(0)

    def cutoff(self) -> datetime | None:
        """Mail that arrived before this is left out; None when nothing is."""
        return None if self.window is None else self.clock() - self.window

    def bound(self, state: SyncState, end: int) -> int:
        """The highest UID weighed against the window: the end of this sync if it is the
        mailbox's first, else what the first one stored (0: none)."""
        if self.window is None:
            return 0
        return end if state.uidvalidity is None else state.backfill_uid


def imap_date(day: date) -> str:
    """A date as IMAP's SEARCH takes it (RFC 3501 date: 6-May-2026), whatever the locale."""
    return f"{day.day}-{MONTHS[day.month - 1]}-{day.year}"
