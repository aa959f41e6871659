"""Stores answers in batches: one transaction for every answer that is ready.

With a fast model the queue's cost is its transactions; workers hand answers here and go on,
and each write takes all that arrived meanwhile. Each row is still fenced by its own token, so
a row taken over by another worker is not completed twice. A write that keeps failing is given
up: its rows' leases run out and they are processed again, never completed twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from muninmaild.errors import StoreError
from muninmaild.processing.handler import ProcessorStats
from muninmaild.store.repository import Completion, Repository
from muninmaild.waiting import backoff

log = logging.getLogger("muninmaild.processing.processor")
MAX_BATCH = 128
WRITE_TRIES = 5


class Completer:
    def __init__(
        self,
        repo: Repository,
        stats: ProcessorStats,
        on_written: Callable[[Sequence[Completion]], None] | None = None,
    ) -> None:
        self._repo = repo
        self._stats = stats
        # Told of every batch once it is written or given up on (the answer cache's twins).
        self._on_written = on_written
        self._queue: asyncio.Queue[Completion | None] = asyncio.Queue()

    def submit(self, item: Completion) -> None:
        self._queue.put_nowait(item)

    def close(self) -> None:
        """Write what is queued, then let `run()` return."""
        self._queue.put_nowait(None)

    async def run(self) -> None:
        closing = False
        while not closing:
            first = await self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    closing = True
                    break
                batch.append(item)
            await self._write(batch)

    async def _write(self, batch: list[Completion]) -> None:
        try:
            await self._write_batch(batch)
        finally:
            if self._on_written is not None:
                self._on_written(batch)

    async def _write_batch(self, batch: list[Completion]) -> None:
        for attempt in range(1, WRITE_TRIES + 1):
            try:
                done = await self._repo.complete_many(batch)
            except Exception as exc:
                wait = backoff(attempt, 1.0, 30.0)
                what = f"cannot store {len(batch)} answer(s)"
                if isinstance(exc, StoreError):  # in words already, and shown in `status`
                    log.error("%s: %s; trying again in %.0f s", what, exc, wait)
                else:
                    log.exception("%s; trying again in %.0f s", what, wait)
                await asyncio.sleep(wait)
                continue
            self._stats.completed += len(done)
            self._note_done(batch, done)
            return
        log.error(
            "gave up storing %d answer(s); their messages will be processed again", len(batch)
        )

    def _note_done(self, batch: list[Completion], done: set[int]) -> None:
        for item in batch:
            fields = {"email_id": item.email_id}
            if item.email_id in done:
                log.debug("message %d completed", item.email_id, extra=fields)
            else:
                self._stats.lost += 1
                log.warning(
                    "message %d was taken over before its answer was stored",
                    item.email_id,
                    extra=fields,
                )
