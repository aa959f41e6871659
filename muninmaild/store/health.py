"""How the database's writes are going, in words for `muninctl status` and the log.

A write that fails becomes a `StoreError` carrying the driver's own reason ("database or disk is
full", "could not extend file ...: No space left on device"), not SQLAlchemy's message: that one
also quotes the statement and its parameters, which hold mail, and belongs neither in a status
line nor in the journal. The last failure is kept with its time, so `status` can say the
database is failing, or when it last failed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import DBAPIError

from muninmaild.errors import StoreError

_DRIVER_CLASS = re.compile(r"^<class '[\w.]+'>:\s*")  # how asyncpg's errors reach us
MAX_REASON_CHARS = 300


@dataclass
class WriteHealth:
    failing: bool = False  # the latest write failed
    last_error: str | None = None
    last_error_at: datetime | None = None

    def failed(self, exc: DBAPIError, now: datetime) -> StoreError:
        """Record a failed write; the error to raise in its place."""
        self.failing, self.last_error, self.last_error_at = True, describe(exc), now
        return StoreError(self.last_error)

    def succeeded(self) -> None:
        self.failing = False


def describe(exc: DBAPIError) -> str:
    """The driver's reason for a database error, on one line."""
    text = _DRIVER_CLASS.sub("", str(exc.orig if exc.orig is not None else "")).strip()
    reason = text.splitlines()[0] if text else "no reason given by the database driver"
    return f"database error: {reason[:MAX_REASON_CHARS]}"
