"""The processor loop: claim a message, ask the model, store the answer.

`concurrency` slots each claim and handle one message at a time. Each message is one unit of
work with one error barrier: whatever goes wrong becomes a retry, a snooze or a held failure,
and the slot goes on. While the model call runs the lease is renewed; if it is lost the call is
abandoned, since another worker owns the row now.

`stop()` ends claiming at once; in-flight messages get `drain_timeout` seconds to finish, and
the rest are released to the queue without using up an attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from muninmaild.ai.base import Backend, ModelAnswer
from muninmaild.ai.prepare import model_input
from muninmaild.errors import ModelAuthError, ModelError
from muninmaild.queue_policy import decide, retry_delay
from muninmaild.records import ClaimedMessage
from muninmaild.redact import Redactor
from muninmaild.settings import AISettings, ProcessorSettings
from muninmaild.store.repository import Repository

log = logging.getLogger(__name__)
PAUSE_CHECK_S = 1.0


@dataclass
class ProcessorStats:
    completed: int = 0
    retried: int = 0
    failed: int = 0
    snoozed: int = 0
    lost: int = 0
    handled_ids: list[int] = field(default_factory=list)


class _Aborted(Exception):
    """The drain deadline passed while the model call was running."""


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
    ) -> None:
        self.settings = settings
        self._repo = repo
        self._backend = backend
        self._ai = ai
        self._instance = instance_id
        self._once = once
        self._redact = redact or Redactor()
        self._rand = rand
        self._seq = itertools.count(1)
        self._stopping = False
        self._wake = asyncio.Event()
        self._abort = asyncio.Event()
        self._hold_until = 0.0
        self._paused = False
        self._paused_checked = -PAUSE_CHECK_S
        self.stats = ProcessorStats()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for slot in range(self.settings.concurrency):
                tg.create_task(self._slot(), name=f"processor-slot-{slot}")

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

    async def _slot(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                if not await self._step():
                    return
                failures = 0
            except Exception:
                # The database itself failed (locked, disk full, gone): wait and try again;
                # an unfinished row keeps its lease and comes back by itself.
                failures += 1
                wait = min(60.0, 0.5 * 2**failures)
                log.exception("processor cannot reach the database; retrying in %.0f s", wait)
                await self._idle(wait)

    async def _step(self) -> bool:
        """Claim and handle one message, or wait; False when a run-once slot is done."""
        if await self._is_held():
            await self._idle(PAUSE_CHECK_S)
            return True
        msg = await self._repo.claim(self._next_token(), self.settings.lease_seconds)
        if msg is None:
            if self._once:
                return False
            await self._idle(await self._idle_time())
            return True
        await self._handle(msg)
        return True

    def _next_token(self) -> str:
        return f"{self._instance}#{next(self._seq)}"

    async def _is_held(self) -> bool:
        now = time.monotonic()
        if now - self._paused_checked >= PAUSE_CHECK_S:
            self._paused_checked = now
            self._paused = (await self._repo.paused())["processor"]
        return self._paused or now < self._hold_until

    async def _idle_time(self) -> float:
        due = await self._repo.next_due_in()
        poll = self.settings.poll_interval
        return poll if due is None else min(poll, max(due, 0.01))

    async def _idle(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _handle(self, msg: ClaimedMessage) -> None:
        """One message, one error barrier."""
        self.stats.handled_ids.append(msg.id)
        if msg.attempts > self.settings.max_attempts:
            # Every earlier attempt ended without a word: a crash each time. Stop trying.
            reason = f"gave up after {msg.attempts - 1} attempts that did not finish"
            await self._settle_failure(msg, reason)
            return
        try:
            answer = await self._ask_under_lease(msg)
        except _Aborted:
            await self._repo.release(msg.id, msg.token)
            log.info("released message %d at shutdown", msg.id, extra=_fields(msg))
            return
        except Exception as exc:  # the barrier: nothing one message does stops the slot
            await self._on_error(msg, exc)
            return
        if answer is None:
            self.stats.lost += 1
            log.warning(
                "lease on message %d was lost; another worker owns it now",
                msg.id,
                extra=_fields(msg),
            )
            return
        await self._store(msg, answer)

    async def _ask_under_lease(self, msg: ClaimedMessage) -> ModelAnswer | None:
        """The model call, renewing the lease; None if the lease was lost."""
        item = model_input(msg, self._ai.max_input_chars)
        call = asyncio.create_task(self._backend.analyse(item))
        abort = asyncio.create_task(self._abort.wait())
        renew_every = self.settings.lease_seconds / 3
        try:
            while True:
                await asyncio.wait(
                    {call, abort}, timeout=renew_every, return_when=asyncio.FIRST_COMPLETED
                )
                if call.done():
                    return call.result()
                if abort.done():
                    raise _Aborted
                if not await self._repo.renew(msg.id, msg.token, self.settings.lease_seconds):
                    return None
        finally:
            for task in (call, abort):
                task.cancel()
            await asyncio.gather(call, abort, return_exceptions=True)

    async def _store(self, msg: ClaimedMessage, answer: ModelAnswer) -> None:
        done = await self._repo.complete(
            msg.id, msg.token, answer.analysis, answer.usage, answer.model
        )
        if done:
            self.stats.completed += 1
            log.debug("message %d completed", msg.id, extra=_fields(msg))
        else:
            self.stats.lost += 1
            log.warning(
                "message %d was taken over before its answer was stored", msg.id, extra=_fields(msg)
            )

    async def _on_error(self, msg: ClaimedMessage, exc: Exception) -> None:
        if isinstance(exc, ModelError):
            await self._repo.record_usage(msg.id, self._backend.model, exc.usage)
        else:
            log.exception("unexpected error on message %d", msg.id, extra=_fields(msg))
        outcome = decide(exc, msg.attempts, self.settings.max_attempts, self._backoff)
        reason = self._redact(outcome.message)
        if isinstance(exc, ModelAuthError):
            self._hold(outcome.delay_s, reason)
        if outcome.action == "snooze":
            self.stats.snoozed += 1
            await self._repo.snooze(msg.id, msg.token, outcome.delay_s, reason)
        elif outcome.action == "retry":
            self.stats.retried += 1
            log.warning(
                "message %d: %s; retry in %.0f s",
                msg.id,
                reason,
                outcome.delay_s,
                extra=_fields(msg),
            )
            await self._repo.retry(msg.id, msg.token, reason, outcome.delay_s)
        else:
            await self._settle_failure(msg, reason)

    async def _settle_failure(self, msg: ClaimedMessage, reason: str) -> None:
        self.stats.failed += 1
        log.error("message %d failed and is held: %s", msg.id, reason, extra=_fields(msg))
        await self._repo.fail(msg.id, msg.token, reason)

    def _backoff(self, attempt: int) -> float:
        s = self.settings
        return retry_delay(attempt, s.retry_base_seconds, s.retry_max_seconds, self._rand)

    def _hold(self, seconds: float, reason: str) -> None:
        """The model service refuses us: every slot waits instead of burning through the queue."""
        if time.monotonic() >= self._hold_until:
            log.error("processing held for %.0f s: %s", seconds, reason)
        self._hold_until = time.monotonic() + seconds


def _fields(msg: ClaimedMessage) -> dict[str, object]:
    """Structured journal fields (MUNIN_EMAIL_ID=, MUNIN_ACCOUNT=) for one message's lines."""
    return {"email_id": msg.id, "account": msg.account}
