"""This daemon as one instance of several sharing a database.

It registers itself (host, pid, version, start), renews a heartbeat so that `muninctl status`
can tell which instances are alive, and marks itself stopped at the end, giving its fetch leases
back. On PostgreSQL it also listens for the other instances' news (mail queued, a pause
changed; `store/listen.py`), so idle workers here wake at once instead of at their next poll.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable

from muninmaild import __version__
from muninmaild.records import InstanceInfo
from muninmaild.store.repository import Repository
from muninmaild.waiting import wait_event

log = logging.getLogger(__name__)


class Membership:
    def __init__(
        self,
        repo: Repository,
        instance_id: str,
        *,
        heartbeat_s: float,
        on_event: Callable[[str], None],
    ) -> None:
        self._repo = repo
        self._id = instance_id
        self._heartbeat_s = heartbeat_s
        self._listener = repo.listener(on_event)
        self._stopping = asyncio.Event()

    async def register(self) -> None:
        host = socket.gethostname()
        await self._reap_dead(host)
        await self._repo.register_instance(InstanceInfo(self._id, host, os.getpid(), __version__))

    async def _reap_dead(self, host: str) -> None:
        """Instances of this host whose process is gone (killed, crashed) give their mailboxes
        up now: a daemon restarted by systemd fetches at once, not after their leases run out."""
        for instance_id, pid in await self._repo.running_on(host):
            if not _process_exists(pid):
                log.info("instance %s is gone; taking over its mailboxes", instance_id)
                await self._repo.instance_stopped(instance_id)

    async def run(self) -> None:
        """Heartbeat (and on PostgreSQL keep listening) until `stop()`."""
        try:
            while not self._stopping.is_set():
                await self._beat()
                await wait_event(self._stopping, self._heartbeat_s)
        finally:
            if self._listener is not None:
                await self._listener.close()

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
            await self._repo.fold_counters()  # keeps the queue counts' deltas few (PostgreSQL)
            if self._listener is not None:
                await self._listener.ensure()
        except Exception as exc:  # the database is away: try again at the next beat
            log.warning("heartbeat failed: %s", exc)


def _process_exists(pid: int) -> bool:
    if pid == os.getpid():
        return False  # an earlier run with our pid (a container's pid 1): we have not registered
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True
