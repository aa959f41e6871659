"""The store's view of the instances sharing one database: registration, heartbeats, who
fetches which mailbox. A mixin of `Repository`, like `queries.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from muninmaild.records import ClusterView, InstanceInfo
from muninmaild.store import rows
from muninmaild.store.models import CLAIMABLE, Email, FetchLease, Instance


class ClusterStore:
    _reader: AsyncEngine
    _clock: Callable[[], datetime]
    _tx: Callable[[], AbstractAsyncContextManager[AsyncConnection]]
    _insert_ignore: Callable[[Any, dict[str, Any]], Any]

    async def register_instance(self, instance: InstanceInfo) -> None:
        now = self._clock()
        values = {"host": instance.host, "pid": instance.pid, "version": instance.version}
        values["boot_id"] = instance.boot_id
        values |= {"started_at": now, "heartbeat_at": now, "stopped_at": None}
        async with self._tx() as conn:
            await conn.execute(self._insert_ignore(Instance, {"id": instance.id} | values))

    async def heartbeat(self, instance_id: str) -> None:
        async with self._tx() as conn:
            await conn.execute(
                update(Instance)
                .where(Instance.id == instance_id)
                .values(heartbeat_at=self._clock())
            )

    async def instance_stopped(self, instance_id: str) -> None:
        async with self._tx() as conn:
            await conn.execute(
                update(Instance).where(Instance.id == instance_id).values(stopped_at=self._clock())
            )
            await conn.execute(delete(FetchLease).where(FetchLease.holder == instance_id))

    async def running_on(self, host: str) -> list[tuple[str, int, str | None]]:
        """(id, pid, boot id) of the instances on `host` not marked stopped."""
        stmt = select(Instance.id, Instance.pid, Instance.boot_id).where(
            Instance.host == host, Instance.stopped_at.is_(None)
        )
        async with self._reader.connect() as conn:
            return [(i, p, b) for i, p, b in (await conn.execute(stmt)).all()]

    async def rescue_instance(self, instance_id: str, note: str) -> int:
        """An instance known dead: marked stopped, its fetch leases given up and the rows it
        held released to the queue at once, each keeping the attempt its claim counted.

        Its claim tokens are `<instance id>#<n>`, so its rows are those whose token lies
        between `<id>#` and `<id>$` ('$' follows '#').
        """
        now = self._clock()
        mine = and_(
            text(CLAIMABLE),
            Email.processing_status == "processing",
            Email.claimed_by >= f"{instance_id}#",
            Email.claimed_by < f"{instance_id}$",
        )
        values = rows.released(now) | {"last_error": note, "updated_at": now}
        async with self._tx() as conn:
            released = (await conn.execute(update(Email).where(mine).values(**values))).rowcount
            await conn.execute(
                update(Instance).where(Instance.id == instance_id).values(stopped_at=now)
            )
            await conn.execute(delete(FetchLease).where(FetchLease.holder == instance_id))
        return int(released)

    async def cluster(self, alive_within_s: float, keep_s: float = 86400.0) -> ClusterView:
        """Instances seen in the last `keep_s` seconds, and who fetches which mailbox."""
        now = self._clock()
        since = now - timedelta(seconds=keep_s)
        async with self._reader.connect() as conn:
            found = (
                await conn.execute(
                    select(Instance)
                    .where(Instance.heartbeat_at >= since)
                    .order_by(Instance.started_at)
                )
            ).all()
            leases = (
                await conn.execute(
                    select(
                        FetchLease.account,
                        FetchLease.mailbox,
                        FetchLease.holder,
                        FetchLease.expires_at,
                    )
                    .where(FetchLease.expires_at > now)
                    .order_by(FetchLease.account, FetchLease.mailbox)
                )
            ).all()
        alive_after = now - timedelta(seconds=alive_within_s)
        return rows.cluster_view(found, leases, alive_after)
