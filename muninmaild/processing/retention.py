"""The retention loop: `database.retention_days` applied at start and once an hour.

Completed mail older than the window is removed in batches (`store/retention.py`), with a
short pause between them, so that claims and `muninctl` never wait behind more than one batch;
the answer cache is pruned to the same window, since an answer is as private as its result.
`run()` loops until `stop()`; `run_once()` is one pass (tests, `--once`); the clock is
injectable. What the last pass did is kept for `muninctl status`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from muninmaild.records import RetentionStatus
from muninmaild.waiting import wait_event

log = logging.getLogger(__name__)
EVERY_S = 3600.0
BATCH = 200  # rows a transaction: a few milliseconds of SQLite's write lock
PAUSE_S = 0.01  # between batches: the claims queued behind one go first


class RetentionStore(Protocol):
    async def remove_completed_before(self, cutoff: datetime, limit: int) -> int: ...
    async def prune_answer_cache(self, before: datetime, keep: int | None = None) -> int: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Retention:
    def __init__(
        self,
        store: RetentionStore,
        days: int,
        *,
        clock: Callable[[], datetime] = _utcnow,
        every_s: float = EVERY_S,
        batch: int = BATCH,
        pause_s: float = PAUSE_S,
    ) -> None:
        self._store = store
        self._clock = clock
        self._every_s = every_s
        self._batch = batch
        self._pause_s = pause_s
        self._stopping = asyncio.Event()
        self.status = RetentionStatus(days=days)

    async def run(self) -> None:
        """A pass now and every `every_s` seconds until `stop()`; a failed pass is logged and
        tried again at the next."""
        while not self._stopping.is_set():
            try:
                await self.run_once()
            except Exception as exc:
                log.warning("retention: could not remove old mail: %s", exc)
            await wait_event(self._stopping, self._every_s)

    def stop(self) -> None:
        self._stopping.set()

    async def run_once(self) -> int:
        """One pass: how many messages it removed (0 when retention is off)."""
        days = self.status.days
        if days <= 0:
            return 0
        started = self._clock()
        cutoff = started - timedelta(days=days)
        removed = 0
        while not self._stopping.is_set():
            found = await self._store.remove_completed_before(cutoff, self._batch)
            removed += found
            if found < self._batch:
                break
            await asyncio.sleep(self._pause_s)
        await self._store.prune_answer_cache(cutoff)
        self.status.record(started, removed)
        if removed:
            log.info("retention: removed %d message(s) completed before %s", removed, cutoff)
        return removed
