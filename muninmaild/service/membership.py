"""This daemon as one instance of several sharing a database.

It registers itself (host, pid, version, start), renews a heartbeat so that `muninctl status`
can tell which instances are alive, and marks itself stopped at the end, giving its fetch leases
back. At its start it rescues what instances of this host and boot left when they crashed
(`rescue_dead`): their mailboxes and the rows they held. On PostgreSQL it also listens for
the other instances' news (mail queued, a pause changed; `store/listen.py`), so idle workers
here wake at once instead of at their next poll.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

from muninmaild import __version__
from muninmaild.records import InstanceInfo
from muninmaild.store.repository import Repository
from muninmaild.waiting import wait_event

log = logging.getLogger(__name__)
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


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
        host, boot = socket.gethostname(), boot_id()
        await rescue_dead(self._repo, host, boot)
        info = InstanceInfo(self._id, host, os.getpid(), __version__, boot)
        await self._repo.register_instance(info)

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


async def rescue_dead(repo: Repository, host: str, boot: str | None) -> int:
    """Instances of this host and boot whose process is gone (killed, crashed) give up their
    mailboxes and the rows they held now, not when their leases run out; how many rows.

    Only the same boot tells for sure: a pid of another boot, or of a machine of the same
    name, says nothing, and their rows and mailboxes wait for the leases as before. An
    instance that recorded no boot id (an older version) gives up its mailboxes only.
    """
    released = 0
    for instance_id, pid, its_boot in await repo.running_on(host):
        if _process_exists(pid):
            continue
        if boot is not None and its_boot == boot:
            note = f"its instance {instance_id} stopped without finishing (crashed or killed)"
            rows = await repo.rescue_instance(instance_id, note)
            released += rows
            log.info(
                "instance %s is gone; released %d message(s), took its mailboxes", instance_id, rows
            )
        elif its_boot is None:
            log.info("instance %s is gone; taking over its mailboxes", instance_id)
            await repo.instance_stopped(instance_id)
    return released


def boot_id(path: Path = BOOT_ID) -> str | None:
    """This boot's id from the kernel; None where there is none (not Linux, no /proc)."""
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


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
