"""Answers without a model request: skipped mail, the answer cache, one request at a time for
the same key within a process; and the processor storing where each answer came from."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from muninmaild.ai.base import ModelAnswer, ModelInput
from muninmaild.ai.factory import make_backend
from muninmaild.ai.prepare import model_input
from muninmaild.ai.request_key import request_key
from muninmaild.config.settings import AISettings, ProcessorSettings
from muninmaild.errors import ModelUnavailable, StoreError
from muninmaild.processing import shortcuts as shortcuts_module
from muninmaild.processing.processor import Processor
from muninmaild.processing.shortcuts import AnswerCounts, Answered, Shortcuts, shortcuts_for
from muninmaild.records import Analysis, CachedAnswer, ClaimedMessage, TokenUsage
from muninmaild.store.repository import Repository
from tests.factories import new_message

AI = AISettings(backend="cerebras", model="gpt-oss-120b", skip=("bulk", "automated"))
REPLIED = "automated: Auto-Submitted: auto-replied"
GOOD = Analysis("The model's summary.", ("urgent",), ())
T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def claimed(email_id: int = 1, **changes: Any) -> ClaimedMessage:
    values: dict[str, Any] = {
        "id": email_id,
        "token": f"t#{email_id}",
        "attempts": 1,
        "account": "work",
        "subject": "Q4 figures",
        "from_addr": "Ann <ann@example.com>",
        "to_addrs": "robin@example.com",
        "sent_at": T0,
        "body_text": "Please send the Q4 figures by Friday. Is that urgent?",
        "headers": {},
    }
    return ClaimedMessage(**(values | changes))


class Model:
    """The model as `ask`: answers at once, or when `gate` is set; counts the requests."""

    def __init__(self, gate: asyncio.Event | None = None, failures: int = 0) -> None:
        self.asked: list[ModelInput] = []
        self.gate = gate
        self.failures = failures  # the first requests that fail
        self.waiting = asyncio.Event()

    async def __call__(self, item: ModelInput) -> ModelAnswer:
        self.asked.append(item)
        fails = len(self.asked) <= self.failures
        self.waiting.set()
        if self.gate is not None:
            await self.gate.wait()
        if fails:
            raise ModelUnavailable("the model service failed (HTTP 503)")
        return ModelAnswer(GOOD, TokenUsage(900, 40), "gpt-oss-120b")


class Store:
    """The cache's store in memory, counting its calls."""

    def __init__(self) -> None:
        self.kept: dict[str, CachedAnswer] = {}
        self.lookups = 0
        self.prunes: list[tuple[datetime, int | None]] = []
        self.prune_fails = False

    async def cached_answer(self, key: str, since: datetime) -> CachedAnswer | None:
        self.lookups += 1
        found = self.kept.get(key)
        return found if found is not None and found.created_at >= since else None

    async def prune_answer_cache(self, before: datetime, keep: int | None = None) -> int:
        self.prunes.append((before, keep))
        if self.prune_fails:
            raise StoreError("database error: database is locked")
        return 0

    def keep(self, key: str, at: datetime = T0) -> None:
        self.kept[key] = CachedAnswer(GOOD, "gpt-oss-120b", TokenUsage(900, 40), at)


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(store: Store, ai: AISettings = AI, **kw: Any) -> Shortcuts:
    return Shortcuts(ai, store, clock=lambda: T0, **kw)


def item_of(msg: ClaimedMessage) -> ModelInput:
    return model_input(msg, AI.max_input_chars)


async def answer(s: Shortcuts, msg: ClaimedMessage, model: Model) -> Answered:
    return await s.answer(msg, item_of(msg), model)


# -- skipping -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "note"),
    [
        ({"headers": {"list-id": "<news.example.com>"}}, "bulk: List-Id"),
        ({"headers": {"auto-submitted": "auto-replied"}}, REPLIED),
        ({"from_addr": "<no-reply@shop.example>"}, "automated: a sender that takes no replies"),
    ],
)  # fmt: skip
async def test_skipped_mail_is_answered_by_the_rules_without_a_request(
    changes: dict[str, Any], note: str
) -> None:
    model, store = Model(), Store()
    got = await answer(make(store), claimed(**changes), model)
    assert (got.origin, got.note, got.key) == ("skipped", note, None)
    assert got.answer.model.startswith("rules") and got.answer.usage == TokenUsage()
    assert got.answer.analysis.summary  # the rules' extractive summary
    assert "requires_response" not in got.answer.analysis.flags  # nobody waits on a list
    assert model.asked == [] and store.lookups == 0


async def test_without_skip_such_mail_goes_to_the_model() -> None:
    model = Model()
    msg = claimed(headers={"list-id": "<news.example.com>"})
    got = await answer(make(Store(), replace(AI, skip=(), cache=False)), msg, model)
    assert (got.origin, got.key) == ("model", None) and len(model.asked) == 1


# -- the cache ----------------------------------------------------------------------------------


async def test_a_miss_asks_the_model_and_a_kept_answer_is_used_without_a_request() -> None:
    model, store = Model(), Store()
    shortcuts = make(store)
    first = await answer(shortcuts, claimed(1), model)
    assert first.origin == "model" and first.key == request_key(item_of(claimed(1)), AI)
    assert first.answer.usage == TokenUsage(900, 40)
    shortcuts.stored([first.key])  # the completer wrote it
    store.keep(first.key)
    second = await answer(shortcuts, claimed(2, account="home"), model)
    assert (second.origin, second.key) == ("cache", first.key)
    assert second.answer == ModelAnswer(GOOD, TokenUsage(), "gpt-oss-120b")
    assert len(model.asked) == 1


async def test_with_the_cache_off_every_message_is_asked() -> None:
    model, store = Model(), Store()
    shortcuts = make(store, replace(AI, cache=False))
    for n in (1, 2):
        got = await answer(shortcuts, claimed(n), model)
        assert (got.origin, got.key) == ("model", None)
    assert len(model.asked) == 2 and store.lookups == 0


async def test_an_answer_older_than_the_limit_is_asked_again() -> None:
    model, store = Model(), Store()
    shortcuts = make(store, replace(AI, cache_days=2))
    store.keep(request_key(item_of(claimed()), AI), T0 - timedelta(days=2, seconds=1))
    assert (await answer(shortcuts, claimed(), model)).origin == "model"


def test_the_age_limit_is_the_shorter_of_cache_days_and_retention() -> None:
    assert make(Store()).max_age_days == 7
    assert make(Store(), retention_days=3).max_age_days == 3
    assert make(Store(), retention_days=30).max_age_days == 7
    assert make(Store(), replace(AI, cache_days=1), retention_days=3).max_age_days == 1


async def test_the_same_request_at_once_is_asked_once_and_the_twin_waits() -> None:
    gate = asyncio.Event()
    model, store = Model(gate), Store()
    shortcuts = make(store)
    first = asyncio.create_task(answer(shortcuts, claimed(1), model))
    await model.waiting.wait()
    twin = asyncio.create_task(answer(shortcuts, claimed(2), model))
    other = asyncio.create_task(answer(shortcuts, claimed(3, subject="Other"), model))
    await other_asked(model)  # the other request goes ahead; the twin waits
    gate.set()
    got = await asyncio.gather(first, twin, other)
    assert [a.origin for a in got] == ["model", "cache", "model"]
    assert got[1].answer.usage == TokenUsage() and got[1].answer.analysis == GOOD
    assert [i.subject for i in model.asked] == ["Q4 figures", "Other"]


async def other_asked(model: Model) -> None:
    """Until a second request reached the model (the event loop runs the tasks meanwhile)."""
    for _ in range(1000):
        if len(model.asked) >= 2:
            return
        await asyncio.sleep(0)  # one turn of the loop, no time
    raise AssertionError("no second request")


async def test_an_answer_not_yet_stored_is_used_from_the_process() -> None:
    """Between the model's answer and the completer's write, a twin takes it from memory."""
    model, store = Model(), Store()
    shortcuts = make(store)
    first = await answer(shortcuts, claimed(1), model)
    twin = await answer(shortcuts, claimed(2), model)
    assert (twin.origin, twin.key) == ("cache", first.key) and len(model.asked) == 1
    assert store.lookups == 1  # only the first looked in the database
    shortcuts.stored([first.key or ""])  # written: from now on the database answers
    assert (await answer(shortcuts, claimed(3), model)).origin == "model"  # not kept: Store
    assert store.lookups == 2


async def test_the_same_message_taken_again_carries_its_request_not_a_cache_hit() -> None:
    """Its lease ran out while its answer waited to be stored, so that completion is fenced
    out: the answer comes back as the model's, with the tokens it cost, to be recorded once."""
    shortcuts, model = make(Store()), Model()
    first = await answer(shortcuts, claimed(1), model)
    again = await answer(shortcuts, claimed(1, token="t#1b", attempts=2), model)
    assert (again.origin, again.key, again.answer.usage) == (
        "model",
        first.key,
        TokenUsage(900, 40),
    )
    assert len(model.asked) == 1


async def test_when_the_first_request_fails_the_twin_asks_itself() -> None:
    gate = asyncio.Event()
    model, store = Model(gate, failures=1), Store()
    shortcuts = make(store)
    first = asyncio.create_task(answer(shortcuts, claimed(1), model))
    await model.waiting.wait()
    twin = asyncio.create_task(answer(shortcuts, claimed(2), model))
    await asyncio.sleep(0)
    gate.set()
    with pytest.raises(ModelUnavailable):
        await first
    assert (await twin).origin == "model"
    assert len(model.asked) == 2


async def test_an_answer_whose_message_was_lost_is_not_kept_for_long() -> None:
    """An answer never stored (its lease was lost) is dropped once a wait would have ended."""
    ticks = Ticks()
    model, store = Model(), Store()
    shortcuts = make(store, monotonic=ticks)
    await answer(shortcuts, claimed(1), model)  # never `stored`
    ticks.now += 2 * AI.timeout + shortcuts_module.WAIT_EXTRA_S + 1
    assert (await answer(shortcuts, claimed(2), model)).origin == "model"
    assert len(model.asked) == 2


async def test_the_cache_is_pruned_at_first_use_and_then_every_ten_minutes() -> None:
    ticks = Ticks()
    model, store = Model(), Store()
    shortcuts = make(store, replace(AI, cache_entries=500), retention_days=2, monotonic=ticks)
    for n, advance in enumerate((0, 60, shortcuts_module.PRUNE_EVERY_S)):
        ticks.now += advance
        got = await answer(shortcuts, claimed(n, subject=f"S{n}"), model)
        shortcuts.stored([got.key or ""])
    assert store.prunes == [(T0 - timedelta(days=2), 500)] * 2


async def test_a_failed_prune_costs_the_message_nothing() -> None:
    model, store = Model(), Store()
    store.prune_fails = True
    assert (await answer(make(store), claimed(), model)).origin == "model"


async def test_shortcuts_only_for_a_backend_that_calls_a_model() -> None:
    store = Store()
    for name in ("rules", "noop"):
        local = replace(AI, backend=name)
        assert shortcuts_for(local, store, make_backend(local)) is None
    remote = make_backend(AI)
    assert shortcuts_for(replace(AI, skip=(), cache=False), store, remote) is None
    assert shortcuts_for(replace(AI, skip=(), cache=True), store, remote) is not None
    assert shortcuts_for(replace(AI, skip=("bulk",), cache=False), store, remote) is not None


def test_answer_counts() -> None:
    counts = AnswerCounts()
    any_answer = ModelAnswer(GOOD, TokenUsage(), "m")
    for answered in (
        Answered(any_answer, "cache", key="k"),
        Answered(any_answer, "skipped", "bulk: List-Id"),
        Answered(any_answer, "skipped", "automated: Auto-Submitted: auto-replied"),
        Answered(any_answer, "skipped", "automated: a sender that takes no replies"),
        Answered(any_answer, "model", key="k"),  # a miss
        Answered(any_answer, "model"),  # the cache is off: not a miss
    ):
        counts.count(answered)
    assert (counts.cached, counts.cache_misses, counts.skipped_total) == (1, 1, 3)
    assert counts.skipped == {"bulk": 1, "automated": 2}


# -- through the processor ----------------------------------------------------------------------


class CountingBackend:
    """A remote backend that answers at once and counts its requests."""

    name = "cerebras"
    model = "gpt-oss-120b"
    local = False
    reads_input = True

    def __init__(self) -> None:
        self.asked: list[ModelInput] = []

    async def analyse(self, item: ModelInput) -> ModelAnswer:
        self.asked.append(item)
        return ModelAnswer(GOOD, TokenUsage(900, 40), self.model)

    async def aclose(self) -> None:
        return None


async def test_the_processor_stores_each_answer_with_its_origin(repo: Repository) -> None:
    body = "Please send the Q4 figures by Friday."
    await repo.add_messages(
        [
            new_message(1, body=body),
            new_message(1, account="home", body=body),  # the same request
            new_message(3, body="Our news.", headers={"list-id": "<news.example.com>"}),
            new_message(4, body="Done.", from_addr="noreply@ci.example.com"),
        ]
    )
    backend = CountingBackend()
    shortcuts = shortcuts_for(AI, repo, backend)
    processor = Processor(
        repo, backend, ProcessorSettings(concurrency=4), AI, "t", once=True, shortcuts=shortcuts
    )
    await processor.run()
    assert len(backend.asked) == 1
    found = {m["id"]: m for m in await repo.results_for([1, 2, 3, 4])}
    assert {n: (m["status"], m["origin"]) for n, m in found.items()} == {
        1: ("completed", "cache"),  # the claim takes the newest first: 2 asked the model
        2: ("completed", "model"),
        3: ("completed", "skipped"),
        4: ("completed", "skipped"),
    }
    assert found[3]["origin_note"] == "bulk: List-Id"
    shown = [await repo.message_detail(n) for n in (1, 2, 3)]
    assert [m["tokens"]["in"] if m else None for m in shown] == [0, 900, 0]
    assert [m["sent"] if m else None for m in shown] == ["all", "all", None]
    answers = processor.stats.answers
    assert (answers.cached, answers.cache_misses, answers.skipped_total) == (1, 1, 2)
    assert processor.stats.model.outcomes["ok"] == 1  # only the one request counts as a call
    assert await repo.answer_cache_size() == 1
    assert await repo.usage_since(T0 - timedelta(days=3650)) == (1, 940)
