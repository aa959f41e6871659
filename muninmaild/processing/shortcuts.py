"""Answers that cost no model request: mail `ai.skip` leaves to the offline rules, and requests
answered before (the answer cache).

Both are decided right before the model would be called, for a backend that calls one
(`cerebras`, `openai`; the local `rules` and `noop` answer at once and need neither):

1. `ai.skip` names kinds of mail the headers decide ("bulk", "automated": `mail/headers.py`);
   such a message is answered by the rules backend and never sent anywhere.
2. With `ai.cache`, the request the model would be sent is hashed (`ai/request_key.py`); an
   answer kept under that key, younger than the cache's age limit, is used again. Otherwise
   the model is asked and its answer is kept, with the message's results, in the same
   transaction (`store/answer_cache.py`).

Within one process a request is asked once at a time: a worker that finds the same request
being asked by another waits for that answer instead of asking too, and a message whose twin
was answered but not yet stored takes that answer (the same message taken again, its lease run out
before its answer was stored, takes it as the model's, with the tokens it cost, since the first
completion is fenced out). Instances sharing a database may both ask;
both store, one wins, and the answers are the same request's.

The age limit is `ai.cache_days`, or `database.retention_days` when that is shorter: a cached
answer is as sensitive as the results it came with. Entries past it are never used, and are
deleted (with those beyond `ai.cache_entries`, oldest first) every ten minutes while the
cache is used.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from muninmaild.ai.base import Backend, ModelAnswer, ModelInput
from muninmaild.ai.request_key import request_key
from muninmaild.ai.rules.backend import RulesBackend
from muninmaild.config.settings import SKIP_KINDS, AISettings
from muninmaild.mail.headers import why_skipped
from muninmaild.records import CachedAnswer, ClaimedMessage, TokenUsage

log = logging.getLogger("muninmaild.processing.processor")
PRUNE_EVERY_S = 600.0
# The longest a worker waits for another one's answer to the same request before it asks
# itself: a request's own time (two with a second chance) and a minute's wait for the budget.
WAIT_EXTRA_S = 60.0

Ask = Callable[[ModelInput], Awaitable[ModelAnswer]]


@dataclass(frozen=True)
class Answered:
    """An answer for a message and where it came from (`store.models.ORIGINS`)."""

    answer: ModelAnswer
    origin: str = "model"  # "model", "cache" or "skipped"
    note: str | None = None  # why it was skipped ("bulk: List-Id")
    key: str | None = None  # the request's key when the cache is on


@dataclass
class AnswerCounts:
    """This process's answers that cost no request, and the cache's misses (for the metrics)."""

    cached: int = 0
    cache_misses: int = 0
    skipped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKIP_KINDS, 0))

    def count(self, answered: Answered) -> None:
        if answered.origin == "cache":
            self.cached += 1
        elif answered.origin == "skipped" and answered.note:
            kind = answered.note.partition(":")[0]
            self.skipped[kind] = self.skipped.get(kind, 0) + 1
        elif answered.key is not None:
            self.cache_misses += 1

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


class AnswerStore(Protocol):
    """What the cache needs of the store (`store/answer_cache.py`)."""

    async def cached_answer(self, key: str, since: datetime) -> CachedAnswer | None: ...

    async def prune_answer_cache(self, before: datetime, keep: int | None = None) -> int: ...


@dataclass
class _Asking:
    """A request one worker is asking; the others with the same key wait for its answer."""

    answer: asyncio.Future[ModelAnswer | None]
    since: float
    email_id: int  # the message it is asked for


def shortcuts_for(
    ai: AISettings, store: AnswerStore, backend: Backend, retention_days: int = 0
) -> Shortcuts | None:
    """The shortcuts the settings ask for, or None when there are none to take."""
    if backend.local or not (ai.skip or ai.cache):
        return None
    return Shortcuts(ai, store, retention_days=retention_days)


class Shortcuts:
    def __init__(
        self,
        ai: AISettings,
        store: AnswerStore,
        *,
        retention_days: int = 0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ai = ai
        self._store = store
        self._skip = frozenset(ai.skip)
        self._rules = RulesBackend(ai.flags)
        self._clock = clock
        self._monotonic = monotonic
        self.max_age_days = min(ai.cache_days, retention_days or ai.cache_days)
        self._wait_s = 2 * ai.timeout + WAIT_EXTRA_S
        self._asking: dict[str, _Asking] = {}
        self._pruned_at: float | None = None

    @property
    def caching(self) -> bool:
        return self._ai.cache

    @property
    def skip_kinds(self) -> tuple[str, ...]:
        return self._ai.skip

    @property
    def max_entries(self) -> int:
        return self._ai.cache_entries

    def skip_note(self, msg: ClaimedMessage) -> str | None:
        """Why the model is not asked about `msg` (`ai.skip`), or None."""
        return why_skipped(msg.headers, msg.from_addr, self._skip) if self._skip else None

    async def answer(self, msg: ClaimedMessage, item: ModelInput, ask: Ask) -> Answered:
        """The answer for `msg`: the rules' if it is skipped, a cached one, or `ask(item)`'s."""
        note = self.skip_note(msg)
        if note is not None:
            found = await self._rules.analyse(item)
            return Answered(replace(found, usage=TokenUsage()), "skipped", note)
        if not self._ai.cache:
            return Answered(await ask(item))
        return await self._cached_or_asked(request_key(item, self._ai), item, ask, msg.id)

    def stored(self, keys: Iterable[str]) -> None:
        """The answers under `keys` have been written (or given up on): from now on the
        database has them, and the process no longer needs to keep them."""
        for key in keys:
            asking = self._asking.get(key)
            if asking is not None and asking.answer.done():
                del self._asking[key]

    async def _cached_or_asked(
        self, key: str, item: ModelInput, ask: Ask, email_id: int
    ) -> Answered:
        known = await self._asked_here(key)
        if known is not None and known[1] == email_id and known[0].usage != TokenUsage():
            # The same message again: its lease ran out while its answer waited to be stored,
            # so that answer's completion is fenced out, and this one carries the request.
            return Answered(known[0], "model", key=key)
        if known is not None:
            return Answered(replace(known[0], usage=TokenUsage()), "cache", key=key)
        # Taken before the database is read, so that a twin arriving meanwhile waits.
        loop = asyncio.get_running_loop()
        asking = _Asking(loop.create_future(), self._monotonic(), email_id)
        self._asking[key] = asking
        try:
            found = await self._lookup(key)
            if found is not None:
                cached = ModelAnswer(found.analysis, TokenUsage(), found.model)
                self._give_up(key, asking, cached)  # stored already: nothing to keep here
                return Answered(cached, "cache", key=key)
            answer = await ask(item)
        except BaseException:
            self._give_up(key, asking)
            raise
        asking.answer.set_result(answer)
        return Answered(answer, "model", key=key)

    async def _asked_here(self, key: str) -> tuple[ModelAnswer, int] | None:
        """The answer another worker of this process got (or is getting) for the same request,
        and the message it was asked for; None when none did, it failed, or it takes too long."""
        while (asking := self._asking.get(key)) is not None:
            if self._monotonic() - asking.since > self._wait_s:
                self._give_up(key, asking)  # never stored: its message was lost meanwhile
                return None
            try:
                answer = await asyncio.wait_for(asyncio.shield(asking.answer), self._wait_s)
            except TimeoutError:
                return None
            if answer is not None:
                return answer, asking.email_id
            # It failed: look again, another worker may be asking by now.
        return None

    def _give_up(self, key: str, asking: _Asking, answer: ModelAnswer | None = None) -> None:
        """No longer asking: the waiting twins get `answer`, or look again when it is None."""
        if self._asking.get(key) is asking:
            del self._asking[key]
        if not asking.answer.done():
            asking.answer.set_result(answer)

    async def _lookup(self, key: str) -> CachedAnswer | None:
        now = self._clock()
        await self._prune_now_and_then(now)
        return await self._store.cached_answer(key, now - timedelta(days=self.max_age_days))

    async def _prune_now_and_then(self, now: datetime) -> None:
        """Old entries out, and those beyond the count; a failure costs no message anything."""
        at = self._monotonic()
        if self._pruned_at is not None and at - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = at
        for key, asking in list(self._asking.items()):
            if asking.answer.done() and at - asking.since > self._wait_s:
                del self._asking[key]  # answered, but its message was lost before it was stored
        before = now - timedelta(days=self.max_age_days)
        try:
            dropped = await self._store.prune_answer_cache(before, self._ai.cache_entries)
        except Exception as exc:  # the lookup that follows says whether the database is away
            log.warning("could not prune the answer cache: %s", exc)
            return
        if dropped:
            log.info("answer cache: %d old answer(s) dropped", dropped)
