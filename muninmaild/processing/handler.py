"""One message, one error barrier: ask the model under a renewed lease, settle any failure.

A good answer is handed back for the completer to store (in a batch); every failure becomes a
retry, a snooze or a held failure, written at once. Nothing a message does escapes `handle()`.
A database error does, whether it comes while the lease is renewed during the model call or
while the outcome is written: it is the database's fault, not the message's, so it costs the
message no attempt. The row is given back at once when the database takes that, and otherwise
keeps its lease and comes back when it runs out; the worker's own barrier logs the error.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from muninmaild.ai.base import Backend, ModelAnswer, ModelInput
from muninmaild.ai.prepare import model_input
from muninmaild.config.settings import AISettings, ProcessorSettings
from muninmaild.errors import (
    ModelAccountError,
    ModelError,
    ModelQuotaSpent,
    ModelRateLimited,
    StoreError,
)
from muninmaild.processing.hold import Hold
from muninmaild.processing.model_calls import ModelCalls
from muninmaild.processing.retry import Outcome, decide
from muninmaild.processing.shortcuts import AnswerCounts, Answered, Shortcuts
from muninmaild.records import ClaimedMessage, TokenUsage
from muninmaild.redact import Redactor
from muninmaild.store.repository import Completion, Repository
from muninmaild.waiting import backoff, first_of, wait_event

log = logging.getLogger("muninmaild.processing.processor")

KEEP_IDS = 20  # messages the run-once report shows in detail


@dataclass
class ProcessorStats:
    completed: int = 0
    retried: int = 0
    failed: int = 0
    snoozed: int = 0
    lost: int = 0
    # The run-once report shows the first messages this run handled in detail (at most
    # KEEP_IDS of them, whatever the size of the run) and counts the rest; a long-running
    # daemon keeps no ids at all.
    keep_ids: bool = False
    handled_ids: list[int] = field(default_factory=list)
    handled: int = 0
    model: ModelCalls = field(default_factory=ModelCalls)  # every model call, for the metrics
    answers: AnswerCounts = field(default_factory=AnswerCounts)  # cached and skipped ones


class Aborted(Exception):
    """The drain deadline passed while the model call was running."""


class MessageHandler:
    def __init__(
        self,
        repo: Repository,
        backend: Backend,
        ai: AISettings,
        stats: ProcessorStats,
        *,
        settings: Callable[[], ProcessorSettings],
        abort: asyncio.Event,
        hold: Hold,
        redact: Redactor,
        rand: Callable[[], float] = random.random,
        send_body: Callable[[str], bool] = lambda account: True,
        shortcuts: Shortcuts | None = None,
    ) -> None:
        self._repo = repo
        self._backend = backend
        self._ai = ai
        self._stats = stats
        self._settings = settings
        self._abort = abort
        self._hold = hold
        self._redact = redact
        self._rand = rand
        self._send_body = send_body
        self._shortcuts = shortcuts  # skipped mail and cached answers (shortcuts.py)

    async def handle(self, msg: ClaimedMessage) -> Completion | None:
        """The answer to store, or None when the message was settled otherwise."""
        self._stats.handled += 1
        if self._stats.keep_ids and len(self._stats.handled_ids) < KEEP_IDS:
            self._stats.handled_ids.append(msg.id)
        settings = self._settings()
        if msg.attempts > settings.max_attempts:
            # Every earlier attempt ended without a word: a crash each time. Stop trying.
            reason = f"gave up after {msg.attempts - 1} attempts that did not finish"
            await self._settle_failure(msg, reason)
            return None
        try:
            if self._backend.local:
                answer: Answered | None = await self._analyse(msg)
            else:
                answer = await self._ask_under_lease(msg, settings.lease_seconds)
        except Aborted:
            await self.release(msg)
            return None
        except StoreError:
            await self.release_quietly(msg)
            raise
        except Exception as exc:  # the barrier: nothing one message does stops the worker
            await self._on_error(msg, exc, settings)
            return None
        if answer is None:
            self._stats.lost += 1
            log.warning(
                "lease on message %d was lost; another worker owns it now",
                msg.id,
                extra=fields(msg),
            )
            return None
        self._stats.answers.count(answer)
        if answer.origin == "model":
            self._hold.answered()
        return completion(
            msg, answer, None if answer.origin == "skipped" else self._sends_body(msg)
        )

    async def release_quietly(self, msg: ClaimedMessage) -> None:
        """`release`, or when the database refuses that, a warning: the lease runs out."""
        try:
            await self.release(msg)
        except Exception:  # the database is still away: the lease runs out instead
            log.warning("could not release message %d; its lease will run out", msg.id)

    async def release(self, msg: ClaimedMessage) -> None:
        await self._repo.release(msg.id, msg.token)
        log.info("message %d released to the queue unprocessed", msg.id, extra=fields(msg))

    async def _ask_under_lease(self, msg: ClaimedMessage, lease_s: float) -> Answered | None:
        """The model call, with the lease renewed meanwhile; None if the lease was lost."""
        return await first_of(self._analyse(msg), self._keep_lease(msg, lease_s))

    async def _keep_lease(self, msg: ClaimedMessage, lease_s: float) -> None:
        """Renews the lease every third of it; returns once it is lost, raises `Aborted` when
        the drain deadline passes. A database error escapes: see `handle()`."""
        while True:
            if await wait_event(self._abort, lease_s / 3):
                raise Aborted
            if not await self._repo.renew(msg.id, msg.token, lease_s):
                return None

    async def _analyse(self, msg: ClaimedMessage) -> Answered:
        """The answer: the model's, or one that needs no request (`shortcuts.py`)."""
        item = self._input(msg)
        if self._shortcuts is None:
            return Answered(await self._ask(item))
        return await self._shortcuts.answer(msg, item, self._ask)

    async def _ask(self, item: ModelInput) -> ModelAnswer:
        """The model call itself, counted with its outcome, latency and tokens."""
        started = time.monotonic()
        try:
            answer = await self._backend.analyse(item)
        except BaseException as exc:
            usage = exc.usage if isinstance(exc, ModelError) else TokenUsage()
            self._stats.model.record(exc, time.monotonic() - started, usage)
            raise
        self._stats.model.record(None, time.monotonic() - started, answer.usage)
        return answer

    def _input(self, msg: ClaimedMessage) -> ModelInput:
        needed = self._backend.reads_input
        send_body = self._sends_body(msg)
        return model_input(msg, self._ai.max_input_chars, needed=needed, send_body=send_body)

    def _sends_body(self, msg: ClaimedMessage) -> bool:
        return self._send_body(msg.account)

    async def _on_error(
        self, msg: ClaimedMessage, exc: Exception, settings: ProcessorSettings
    ) -> None:
        if isinstance(exc, ModelError):
            await self._repo.record_usage(msg.id, self._backend.model, exc.usage)
        else:
            log.exception("unexpected error on message %d", msg.id, extra=fields(msg))

        def delay_for(attempt: int) -> float:
            base, cap = settings.retry_base_seconds, settings.retry_max_seconds
            return backoff(attempt, base, cap, self._rand)

        outcome = decide(exc, msg.attempts, settings.max_attempts, delay_for)
        reason = self._redact(outcome.message)
        self._hold_for(exc, outcome, reason)
        if outcome.action == "release":
            self._stats.snoozed += 1
            await self.release(msg)
        elif outcome.action == "snooze":
            self._stats.snoozed += 1
            await self._repo.snooze(msg.id, msg.token, outcome.delay_s, reason)
        elif outcome.action == "retry":
            self._stats.retried += 1
            log.warning(
                "message %d: %s; retry in %.0f s",
                msg.id,
                reason,
                outcome.delay_s,
                extra=fields(msg),
            )
            await self._repo.retry(msg.id, msg.token, reason, outcome.delay_s)
        else:
            await self._settle_failure(msg, reason)

    def _hold_for(self, exc: Exception, outcome: Outcome, reason: str) -> None:
        """Errors about the account, a quota or the rate hold every worker, not one message."""
        if isinstance(exc, ModelAccountError):
            self._hold.account(reason)
        elif isinstance(exc, ModelQuotaSpent):
            self._hold.quota(outcome.delay_s, reason)
        elif isinstance(exc, ModelRateLimited):
            self._hold.rate_limit(outcome.delay_s, reason)

    async def _settle_failure(self, msg: ClaimedMessage, reason: str) -> None:
        self._stats.failed += 1
        log.error("message %d failed and is held: %s", msg.id, reason, extra=fields(msg))
        await self._repo.fail(msg.id, msg.token, reason)


def completion(msg: ClaimedMessage, answered: Answered, sent_body: bool | None) -> Completion:
    """What the completer stores for `msg`: the answer, where it came from, its cache key."""
    answer = answered.answer
    return Completion(
        msg.id,
        msg.token,
        answer.analysis,
        answer.usage,
        answer.model,
        sent_body=sent_body,
        origin=answered.origin,
        origin_note=answered.note,
        cache_key=answered.key,
    )


def fields(msg: ClaimedMessage) -> dict[str, object]:
    """Structured journal fields (MUNIN_EMAIL_ID=, MUNIN_ACCOUNT=) for one message's lines."""
    return {"email_id": msg.id, "account": msg.account}
