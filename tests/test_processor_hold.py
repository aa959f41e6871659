"""Account, model and quota errors hold the processor, not the messages (a real SQLite queue)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable

import pytest

from muninmaild.errors import (
    ModelAccountError,
    ModelAuthError,
    ModelQuotaSpent,
    ModelRateLimited,
)
from muninmaild.processing.hold import ACCOUNT_HOLD_MAX_S, ACCOUNT_HOLD_S, Hold
from muninmaild.processing.processor import Processor
from muninmaild.records import QueueCounts
from muninmaild.store.repository import Repository
from tests.clock import Clock
from tests.factories import new_message
from tests.test_processor import ScriptedBackend, make

RETIRED = ModelAccountError(
    "the model service does not know it (HTTP 404): Model llama3.1-8b does not exist; "
    "check ai.model ('llama3.1-8b')"
)


async def poll(condition: Callable[[], bool], within_s: float = 5.0) -> None:
    """The processor's state can only be polled: a condition, with a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    for _ in itertools.count():
        if condition():
            return
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def run_until(proc: Processor, done: Callable[[], bool], within_s: float = 5.0) -> None:
    """Run a long-running processor until `done()`, then stop it."""
    task = asyncio.create_task(proc.run())
    try:
        await poll(done, within_s)
    finally:
        proc.stop(0)
        await task


@pytest.mark.parametrize(
    "error",
    [
        RETIRED,
        ModelAuthError("the model service refused the API key (HTTP 401): Wrong API Key"),
        ModelAccountError("the model service wants payment (HTTP 402): no credit"),
    ],
)
async def test_an_account_or_model_error_fails_nothing_and_holds_processing(
    repo: Repository, error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await repo.add_messages([new_message(n) for n in range(1, 6)])
    backend = ScriptedBackend(error)
    proc = make(repo, backend, once=False, max_attempts=1)
    await run_until(proc, lambda: proc.hold.active() is not None)
    held = proc.hold.active()
    assert held is not None and held.reason == "account" and held.message == str(error)
    assert len(backend.calls) == 1  # nothing more was claimed
    assert await repo.counts() == QueueCounts(pending=5)
    [row] = await repo.results_for([1])
    assert row["attempts"] == 0 and row["last_error"] is None  # kept as it was
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and str(error) in errors[0].getMessage()


async def test_everything_completes_after_the_hold_is_lifted(repo: Repository) -> None:
    await repo.add_messages([new_message(n) for n in range(1, 6)])
    backend = ScriptedBackend(RETIRED)
    proc = make(repo, backend, once=False)
    task = asyncio.create_task(proc.run())
    await poll(lambda: proc.hold.active() is not None)
    assert proc.hold.clear("muninctl resume")
    proc.wake()
    await poll(lambda: proc.stats.completed == 5)
    proc.stop(0)
    await task
    assert await repo.counts() == QueueCounts(completed=5)
    assert proc.stats.failed == 0 and proc.stats.retried == 0


async def test_a_spent_quota_gives_the_message_back_without_an_attempt_and_holds(
    repo: Repository,
) -> None:
    await repo.add_messages([new_message(1), new_message(2)])
    quota = ModelQuotaSpent(
        "model quota spent until 14:05: tokens per day", 600.0, "tokens per day", False
    )
    backend = ScriptedBackend(quota)
    proc = make(repo, backend, once=False, max_attempts=1)
    await run_until(proc, lambda: proc.hold.active() is not None)
    held = proc.hold.active()
    assert held is not None and held.reason == "quota"
    assert held.line().startswith("model quota spent until ")
    assert len(backend.calls) == 1
    assert await repo.counts() == QueueCounts(pending=2)
    [row] = await repo.results_for([1])
    assert row["attempts"] == 0 and row["last_error"] is None  # kept as it was
    assert proc.stats.snoozed == 1


async def test_a_per_minute_429_holds_every_worker_for_its_delay(repo: Repository) -> None:
    await repo.add_messages([new_message(1), new_message(2)])
    backend = ScriptedBackend(ModelRateLimited("429", retry_after_s=30.0))
    proc = make(repo, backend, once=False)
    await run_until(proc, lambda: proc.hold.active() is not None)
    held = proc.hold.active()
    assert held is not None and held.reason == "rate_limit"
    assert len(backend.calls) == 1


async def test_a_run_once_processor_does_not_wait_out_a_hold(repo: Repository) -> None:
    await repo.add_messages([new_message(1), new_message(2)])
    backend = ScriptedBackend(RETIRED)
    await asyncio.wait_for(make(repo, backend).run(), 5)
    assert await repo.counts() == QueueCounts(pending=2)


def test_account_holds_back_off_and_an_answer_resets_them(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    clock = Clock(100.0)
    hold = Hold(clock=clock)
    waits = []
    for _ in range(6):
        waits.append(hold.account("HTTP 404"))
        assert hold.account("HTTP 404") == waits[-1]  # workers failing at once: one hold
        clock.now += waits[-1]
        assert hold.active() is None  # by itself, after the backoff
    assert waits == [600, 1200, 2400, 4800, 7200, 7200]
    assert (ACCOUNT_HOLD_S, ACCOUNT_HOLD_MAX_S) == (600, 7200)
    levels = [r.levelno for r in caplog.records]
    assert levels == [logging.ERROR] + [logging.WARNING] * 5  # once at error priority
    hold.answered()
    assert hold.account("HTTP 404") == 600


def test_clearing_a_hold_says_so_and_only_when_there_was_one() -> None:
    hold = Hold(clock=Clock(100.0))
    assert not hold.clear("reload")
    hold.quota(300, "model quota spent until 10:00: tokens per day")
    assert hold.remaining() == 300
    assert hold.clear("reload")
    assert hold.active() is None


def test_a_shorter_hold_does_not_shorten_a_longer_one() -> None:
    clock = Clock(100.0)
    hold = Hold(clock=clock)
    hold.quota(600, "quota")
    hold.rate_limit(10, "rate")
    view = hold.active()
    assert view is not None and view.reason == "quota" and hold.remaining() == 600
    as_json = view.as_dict()
    assert set(as_json) == {"reason", "message", "until"} and as_json["until"].endswith("Z")
