"""The processor: claim messages, ask the model, store the answers.

Three kinds of task share the work. The feeder claims as many due rows as there are idle
workers, in one statement. `concurrency` workers each handle one message at a time (one error
barrier per message, in `handler.py`). The completer stores finished answers in batches, one
transaction for all that are ready (`completer.py`). With a fast model the queue's cost is its
transactions, and this keeps them few; with a slow one nothing waits on them.

`stop()` ends claiming at once; claimed rows no worker has started are released, in-flight
messages get `drain_timeout` seconds to finish, and the rest are released to the queue without
using up an attempt.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Callable, Sequence

from muninmaild.ai.base import Backend
from muninmaild.config.settings import AISettings, ProcessorSettings
from muninmaild.errors import StoreError
from muninmaild.processing.completer import Completer
from muninmaild.processing.handler import MessageHandler, ProcessorStats
from muninmaild.processing.hold import Hold
from muninmaild.processing.shortcuts import Shortcuts
from muninmaild.records import ClaimedMessage
from muninmaild.redact import Redactor
from muninmaild.store.repository import Completion, Repository
from muninmaild.waiting import backoff, wait_event

__all__ = ["Processor", "ProcessorStats"]

log = logging.getLogger(__name__)
PAUSE_CHECK_S = 1.0
MAX_CLAIM = 64


class Processor:
    def __init__(
        self,
        repo: Repository,
        backend: Backend,
        settings: ProcessorSettings,
        ai: AISettings,
        instance_id: str,
        *,
        once: bool = False,
        redact: Redactor | None = None,
        rand: Callable[[], float] = random.random,
        send_body: Callable[[str], bool] = lambda account: True,
        shortcuts: Shortcuts | None = None,
    ) -> None:
        self.settings = settings
        self.stats = ProcessorStats(keep_ids=once)
        self._repo = repo
        self._instance = instance_id
        self._once = once
        self._seq = itertools.count(1)
        self._stopping = False
        self._wake = asyncio.Event()
        self._abort = asyncio.Event()
        # Why nothing is claimed for now: the account, a spent quota, the rate (hold.py).
        self.hold = Hold()
        self._paused = False
        self._paused_checked = -PAUSE_CHECK_S
        self._workers = settings.concurrency
        self._idle_workers = 0
        self._settled = 0  # messages workers finished with: a retry may have made one due
        self._ready: asyncio.Queue[ClaimedMessage | None] = asyncio.Queue()
        self.shortcuts = shortcuts  # skipped mail and the answer cache, if on
        written = None if shortcuts is None else lambda batch: shortcuts.stored(_keys(batch))
        self._completer = Completer(repo, self.stats, written)
        self._handler = MessageHandler(
            repo,
            backend,
            ai,
            self.stats,
            settings=lambda: self.settings,
            abort=self._abort,
            hold=self.hold,
            redact=redact or Redactor(),
            rand=rand,
            send_body=send_body,
            shortcuts=shortcuts,
        )

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._completer.run(), name="processor-completer")
            try:
                async with asyncio.TaskGroup() as workers:
                    workers.create_task(self._feed(), name="processor-feeder")
                    for n in range(self._workers):
                        workers.create_task(self._work(), name=f"processor-worker-{n}")
            finally:
                self._completer.close()

    def wake(self) -> None:
        """New work may be there (the fetcher queued mail, a pause ended)."""
        self._paused_checked = -PAUSE_CHECK_S
        self._wake.set()

    def stop(self, drain_timeout: float) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._wake.set()
        asyncio.get_running_loop().call_later(drain_timeout, self._abort.set)

    @property
    def paused(self) -> bool:
        return self._paused

    # -- the feeder ----------------------------------------------------------------------------

    async def _feed(self) -> None:
        failures = 0
        try:
            while not self._stopping:
                try:
                    if not await self._feed_once():
                        return
                    failures = 0
                except Exception as exc:
                    # The database itself failed (locked, disk full, gone): wait and try again.
                    failures += 1
                    wait = backoff(failures, 1.0, 60.0)
                    if isinstance(exc, StoreError):  # in words already, and shown in `status`
                        log.error("processor: %s; retrying in %.0f s", exc, wait)
                    else:
                        log.exception("processor cannot claim messages; retrying in %.0f s", wait)
                    self._wake.clear()  # a wake from before the failure must not skip the backoff
                    await self._idle(wait)
        finally:
            await self._release_unstarted()
            for _ in range(self._workers):
                self._ready.put_nowait(None)

    async def _feed_once(self) -> bool:
        """Claim for the idle workers, or wait; False when a run-once feeder is done."""
        # Cleared before the pass, not when it starts to wait: a worker that goes idle or new
        # mail that arrives while the claim runs must still cut the wait that follows short.
        self._wake.clear()
        if await self._is_held():
            if self._once and self.hold.active():
                return False  # a run-once report shows what waits; it does not wait out a hold
            await self._idle(min(PAUSE_CHECK_S, self.hold.remaining() or PAUSE_CHECK_S))
            return True
        # Claim for idle workers plus one message ahead for each worker: with a fast model that
        # halves the claims, with a slow one a queued row waits at most one call for its worker.
        room = self._idle_workers + self._workers - self._ready.qsize()
        if room <= 0:
            await self._idle(self.settings.poll_interval)
            return True
        token = f"{self._instance}#{next(self._seq)}"
        settled_before = self._settled
        claimed = await self._repo.claim_batch(
            token, min(room, MAX_CLAIM), self.settings.lease_seconds
        )
        for msg in claimed:
            self._ready.put_nowait(msg)
        if claimed:
            return True
        if self._once:
            all_idle = self._idle_workers == self._workers and self._ready.empty()
            if all_idle and self._settled == settled_before:
                return False  # nothing due, and nobody busy who could make more due
            await self._idle(self.settings.poll_interval)
            return True
        await self._idle(await self._idle_time())
        return True

    async def _release_unstarted(self) -> None:
        while not self._ready.empty():
            msg = self._ready.get_nowait()
            if msg is not None:
                await self._handler.release_quietly(msg)

    # -- the workers ---------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            self._idle_workers += 1
            self._wake.set()  # the feeder may claim for this worker now
            msg = await self._ready.get()
            self._idle_workers -= 1
            if msg is None:
                return
            if self._stopping or self._paused or self.hold.active():
                # Claimed ahead, but processing stopped, paused or is held meanwhile.
                await self._handler.release_quietly(msg)
                continue
            answer = None
            try:
                answer = await self._handler.handle(msg)
            except Exception:
                # The database failed under the message (handler.py says what became of it).
                log.exception("could not settle message %d", msg.id)
            finally:
                self._settled += 1
            if answer is not None:
                self._completer.submit(answer)

    # -- waiting, pausing, holding ----------------------------------------------------------------

    async def _is_held(self) -> bool:
        now = time.monotonic()
        if now - self._paused_checked >= PAUSE_CHECK_S:
            self._paused_checked = now
            self._paused = (await self._repo.paused())["processor"]
        return self._paused or self.hold.active() is not None

    async def _idle_time(self) -> float:
        due = await self._repo.next_due_in()
        poll = self.settings.poll_interval
        return poll if due is None else min(poll, max(due, 0.01))

    async def _idle(self, seconds: float) -> None:
        await wait_event(self._wake, seconds)


def _keys(batch: Sequence[Completion]) -> list[str]:
    return [c.cache_key for c in batch if c.cache_key is not None and c.origin == "model"]
