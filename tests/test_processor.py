"""The processor loop against a real SQLite queue and scripted backends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.ai.base import ModelAnswer, ModelInput
from muninmaild.config.settings import AISettings, ProcessorSettings
from muninmaild.errors import (
    ModelAnswerInvalid,
    ModelAuthError,
    ModelRateLimited,
    ModelRequestRejected,
    ModelUnavailable,
)
from muninmaild.processing.processor import Processor
from muninmaild.records import Analysis, QueueCounts, Todo, TokenUsage
from muninmaild.redact import Redactor
from muninmaild.store.repository import Repository
from tests.factories import claim_one, new_message

GOOD = Analysis("A summary.", ("urgent",), (Todo("Do it", "high", None),))
Script = Callable[[ModelInput], ModelAnswer]


class ScriptedBackend:
    name = "scripted"
    model = "scripted-1"
    local = False
    reads_input = True

    def __init__(self, *steps: Exception | float | None) -> None:
        """Each step: an exception to raise, a delay in seconds before a good answer, or None."""
        self.steps = list(steps)
        self.calls: list[ModelInput] = []

    async def analyse(self, item: ModelInput) -> ModelAnswer:
        self.calls.append(item)
        step = self.steps.pop(0) if self.steps else None
        if isinstance(step, Exception):
            raise step
        if step:
            await asyncio.sleep(step)
        return ModelAnswer(GOOD, TokenUsage(10, 5), self.model)

    async def aclose(self) -> None:
        return None


def make(
    repo: Repository,
    backend: ScriptedBackend,
    *,
    once: bool = True,
    redact: Redactor | None = None,
    **settings: float,
) -> Processor:
    values: dict[str, float] = {"concurrency": 1, "retry_base_seconds": 0, "lease_seconds": 30}
    return Processor(
        repo,
        backend,
        ProcessorSettings(**(values | settings)),  # type: ignore[arg-type]
        AISettings(),
        "test",
        once=once,
        redact=redact,
        rand=lambda: 0.5,
    )


async def test_completes_every_message_once(repo: Repository) -> None:
    await repo.add_messages([new_message(i) for i in range(1, 6)])
    backend = ScriptedBackend()
    proc = make(repo, backend, concurrency=3)
    await proc.run()
    assert await repo.counts() == QueueCounts(completed=5)
    assert sorted(c.email_id for c in backend.calls) == [1, 2, 3, 4, 5]
    assert await repo.token_totals() == TokenUsage(50, 25)


async def test_only_a_run_once_processor_remembers_what_it_handled(repo: Repository) -> None:
    await repo.add_messages([new_message(i) for i in range(1, 4)])
    once = make(repo, ScriptedBackend())
    await once.run()
    assert sorted(once.stats.handled_ids) == [1, 2, 3]
    await repo.add_messages([new_message(i) for i in range(4, 7)])
    serving = make(repo, ScriptedBackend(), once=False)
    task = asyncio.create_task(serving.run())
    for _ in range(250):  # at most 5 s
        if serving.stats.completed == 3:
            break
        await asyncio.sleep(0.02)
    serving.stop(1.0)
    await asyncio.wait_for(task, 5)
    assert serving.stats.handled_ids == []  # a daemon's list would grow without end


async def test_transient_error_is_retried_until_it_works(repo: Repository) -> None:
    await repo.add_messages([new_message(1)])
    backend = ScriptedBackend(ModelUnavailable("the model service did not answer in 60 s"))
    await make(repo, backend).run()
    assert await repo.counts() == QueueCounts(completed=1)
    assert len(backend.calls) == 2


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ModelRequestRejected("the model service rejected the request: too long"), "too long"),
        (ModelAnswerInvalid("the model's answer is not JSON"), "gave up after 2 attempts"),
    ],
)
async def test_failed_message_is_held_with_a_readable_reason(
    repo: Repository, error: Exception, expected: str
) -> None:
    await repo.add_messages([new_message(1)])
    await make(repo, ScriptedBackend(error, error), max_attempts=2).run()
    assert await repo.counts() == QueueCounts(failed=1)
    [row] = await repo.results_for([1])
    assert row["last_error"] is not None and expected in row["last_error"]


async def test_rate_limit_snoozes_without_using_an_attempt(repo: Repository) -> None:
    await repo.add_messages([new_message(1)])
    backend = ScriptedBackend(ModelRateLimited("429", retry_after_s=1.0))
    proc = make(repo, backend, max_attempts=1)
    await proc.run()
    assert await repo.counts() == QueueCounts(pending=1)
    await asyncio.sleep(1.05)
    await make(repo, backend, max_attempts=1).run()
    assert await repo.counts() == QueueCounts(completed=1)


async def test_auth_error_holds_processing_and_uses_no_attempt(repo: Repository) -> None:
    await repo.add_messages([new_message(1), new_message(2)])
    backend = ScriptedBackend(ModelAuthError("the model service refused the API key"))
    proc = make(repo, backend, max_attempts=1, once=False)
    task = asyncio.create_task(proc.run())
    await asyncio.sleep(0.3)
    proc.stop(0)
    await task
    assert len(backend.calls) == 1
    assert await repo.counts() == QueueCounts(pending=2)


async def test_secret_in_an_error_is_not_stored(repo: Repository) -> None:
    await repo.add_messages([new_message(1)])
    leak = ModelRequestRejected("bad key csk-very-secret-value in request")
    await make(repo, ScriptedBackend(leak), redact=Redactor(["csk-very-secret-value"])).run()
    [row] = await repo.results_for([1])
    assert row["last_error"] is not None
    assert "csk-very-secret-value" not in row["last_error"] and "********" in row["last_error"]


async def test_unexpected_exception_is_contained_to_its_message(repo: Repository) -> None:
    await repo.add_messages([new_message(1), new_message(2)])
    backend = ScriptedBackend(ZeroDivisionError("boom"))
    await make(repo, backend, max_attempts=1).run()
    assert await repo.counts() == QueueCounts(completed=1, failed=1)
    [row] = await repo.results_for([1])
    assert row["last_error"] == "gave up after 1 attempts: internal error (ZeroDivisionError: boom)"


async def test_stop_releases_in_flight_work_after_the_drain_timeout(repo: Repository) -> None:
    await repo.add_messages([new_message(1)])
    proc = make(repo, ScriptedBackend(30.0), once=False)
    task = asyncio.create_task(proc.run())
    await asyncio.sleep(0.2)
    assert await repo.counts() == QueueCounts(processing=1)
    proc.stop(0.1)
    await asyncio.wait_for(task, 5)
    assert await repo.counts() == QueueCounts(pending=1)
    again = await claim_one(repo, "x#1", 30)
    assert again is not None and again.attempts == 1


async def test_stop_lets_in_flight_work_finish_within_the_drain_timeout(
    repo: Repository,
) -> None:
    await repo.add_messages([new_message(1), new_message(2)])
    proc = make(repo, ScriptedBackend(0.3), once=False)
    task = asyncio.create_task(proc.run())
    await asyncio.sleep(0.1)
    proc.stop(5)
    await asyncio.wait_for(task, 5)
    assert await repo.counts() == QueueCounts(pending=1, completed=1)


async def test_renewal_keeps_the_lease_during_a_long_call(repo: Repository) -> None:
    await repo.add_messages([new_message(1)])
    proc = make(repo, ScriptedBackend(0.6), lease_seconds=0.3)
    task = asyncio.create_task(proc.run())
    await asyncio.sleep(0.45)  # past the first lease: renewed, so nobody else may take it
    assert await claim_one(repo, "thief#1", 30) is None
    await task
    assert proc.stats.completed == 1


async def test_lost_lease_abandons_the_answer(repo: Repository, sqlite_engine: AsyncEngine) -> None:
    await repo.add_messages([new_message(1)])
    proc = make(repo, ScriptedBackend(0.6), lease_seconds=0.3)
    task = asyncio.create_task(proc.run())
    await asyncio.sleep(0.05)
    async with sqlite_engine.begin() as conn:  # another worker took the row over
        await conn.execute(text("UPDATE emails SET claimed_by = 'other#1'"))
    await task
    assert (proc.stats.completed, proc.stats.lost) == (0, 1)
    assert await repo.counts() == QueueCounts(processing=1)
    [row] = await repo.results_for([1])
    assert row["summary"] is None


async def test_paused_processor_claims_nothing(repo: Repository) -> None:
    await repo.add_messages([new_message(1)])
    await repo.set_paused("processor", True)
    proc = make(repo, ScriptedBackend(), once=False)
    task = asyncio.create_task(proc.run())
    await asyncio.sleep(0.3)
    assert await repo.counts() == QueueCounts(pending=1)
    await repo.set_paused("processor", False)
    proc.wake()
    await asyncio.sleep(0.3)
    proc.stop(1)
    await task
    assert await repo.counts() == QueueCounts(completed=1)


async def test_row_that_crashed_every_attempt_is_failed(repo: Repository) -> None:
    await repo.add_messages([new_message(1)])
    for n in range(2):
        assert await claim_one(repo, f"dead#{n}", 0) is not None
    await make(repo, ScriptedBackend(), max_attempts=2).run()
    assert await repo.counts() == QueueCounts(failed=1)
    [row] = await repo.results_for([1])
    assert row["last_error"] == "gave up after 2 attempts that did not finish"


async def test_noop_backend_completes_with_one_todo(repo: Repository) -> None:
    from muninmaild.ai.factory import make_backend

    await repo.add_messages([new_message(1)])
    backend = make_backend(AISettings(backend="noop"))
    proc = Processor(repo, backend, ProcessorSettings(), AISettings(), "t", once=True)
    await proc.run()
    [row] = await repo.results_for([1])
    assert (row["status"], len(row["todos"])) == ("completed", 1)
