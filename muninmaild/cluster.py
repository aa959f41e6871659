"""This daemon as one instance of several sharing a database.

It registers itself (host, pid, version, start), renews a heartbeat so that `muninctl status`
can tell which instances are alive, and marks itself stopped at the end, giving its fetch leases
back. On PostgreSQL it also LISTENs: other instances NOTIFY when they queue mail or change a
pause, so idle workers here wake at once instead of at their next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import URL

from muninmaild import __version__
from muninmaild.records import InstanceInfo
from muninmaild.store.repository import NOTIFY_CHANNEL, Repository

log = logging.getLogger(__name__)


class ClusterMember:
    def __init__(
        self,
        repo: Repository,
        instance_id: str,
        url: URL,
        *,
        heartbeat_s: float,
        on_event: Callable[[str], None],
    ) -> None:
        self._repo = repo
        self._id = instance_id
        self._url = url
        self._heartbeat_s = heartbeat_s
        self._on_event = on_event
        self._listener: Any = None  # an asyncpg connection while we listen
        self._stopping = asyncio.Event()

    async def register(self) -> None:
        info = InstanceInfo(self._id, socket.gethostname(), os.getpid(), __version__)
        await self._repo.register_instance(info)

    async def run(self) -> None:
        """Heartbeat (and on PostgreSQL keep listening) until `stop()`."""
        try:
            while not self._stopping.is_set():
                await self._beat()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._heartbeat_s)
        finally:
            await self._unlisten()

    def stop(self) -> None:
        self._stopping.set()

    async def leave(self) -> None:
        """Marked stopped, fetch leases given back: others take the mailboxes at once."""
        try:
            await self._repo.instance_stopped(self._id)
        except Exception as exc:  # the heartbeat and the leases run out by themselves
            log.warning("could not mark this instance stopped: %s", exc)

    async def _beat(self) -> None:
        try:
            await self._repo.heartbeat(self._id)
            if self._url.get_backend_name() == "postgresql":
                await self._ensure_listening()
        except Exception as exc:  # the database is away: try again at the next beat
            log.warning("heartbeat failed: %s", exc)

    async def _ensure_listening(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        import asyncpg

        dsn = self._url.set(drivername="postgresql").render_as_string(hide_password=False)
        conn = await asyncpg.connect(dsn)
        await conn.add_listener(NOTIFY_CHANNEL, self._notified)
        self._listener = conn
        # Anything queued while we were not listening: look once.
        self._on_event("queued")

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._on_event(payload)

    async def _unlisten(self) -> None:
        conn, self._listener = self._listener, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)
