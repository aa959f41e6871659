"""Waking on other instances' news: PostgreSQL LISTEN on the queue's channel.

Instances sharing a PostgreSQL database NOTIFY when they queue mail or change a pause (see
`Repository._notify`); a listener here hears it, so idle workers on other hosts wake at once
instead of at their next poll. SQLite has no such thing, and needs none: one host shares it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import URL

NOTIFY_CHANNEL = "muninmail"


class QueueListener:
    """One asyncpg connection LISTENing; `ensure()` (re)opens it when it is gone."""

    def __init__(self, url: URL, on_event: Callable[[str], None]) -> None:
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._on_event = on_event
        self._conn: Any = None  # an asyncpg connection while we listen

    async def ensure(self) -> None:
        """Listen, if not already; raises what connecting raises (the caller tries again)."""
        if self._conn is not None and not self._conn.is_closed():
            return
        import asyncpg

        conn = await asyncpg.connect(self._dsn)
        await conn.add_listener(NOTIFY_CHANNEL, self._notified)
        self._conn = conn
        # Anything queued while nobody here listened: look once.
        self._on_event("queued")

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._on_event(payload)
