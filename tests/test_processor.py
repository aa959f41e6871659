"""The processor loop against a real SQLite queue and scripted backends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

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
from muninmaild.records import Analysis, ClaimedMessage, QueueCounts, Todo, TokenUsage
from muninmaild.redact import Redactor
from muninmaild.store.repository import Completion, Repository, utcnow
from tests.clock import Clock
from tests.factories import claim_one, new_message

GOOD = Analysis("A summary.", ("urgent",), (Todo("Do it", "high", None),))
Script = Callable[[ModelInput], ModelAnswer]


class ScriptedBackend:
    name = "scripted"
    model = "scripted-1"
    local = False
    reads_input = True

    def __init__(self, *steps: Exception | asyncio.Event | None) -> None:
        """Each step: an exception to raise, an event to wait for before a good answer, or
        None for a good answer at once."""
        self.steps = list(steps)
        self.calls: list[ModelInput] = []
        self.called = asyncio.Event()
        self.cancelled = 0

    async def analyse(self, item: ModelInput) -> ModelAnswer:
        self.calls.append(item)
        self.called.set()
        step = self.steps.pop(0) if self.steps else None
        if isinstance(step, Exception):
            raise step
        if step is not None:
            try:
                await step.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        return ModelAnswer(GOOD, TokenUsage(10, 5), self.model)

    async def aclose(self) -> None:
        return None


class Recorder(Repository):
    """The repository, noting the processor's calls in order, so a test waits for a call
    instead of for time to pass."""

    def __init__(self, engine: AsyncEngine, clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__(engine, clock)
        self.calls: list[tuple[str, object]] = []
        self._changed = asyncio.Condition()

    def names(self, since: int = 0) -> list[str]:
        return [name for name, _ in self.calls[since:]]

    def count(self, call: tuple[str, object]) -> int:
        return self.calls.count(call)

    def completed(self) -> int:
        return sum(int(str(n)) for name, n in self.calls if name == "complete")

    async def until(self, check: Callable[[], bool], within_s: float = 10.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(check), within_s)

    async def _note(self, name: str, value: object) -> None:
        self.calls.append((name, value))
        async with self._changed:
            self._changed.notify_all()

    async def claim_batch(self, token: str, limit: int, lease_s: float) -> list[ClaimedMessage]:
        claimed = await super().claim_batch(token, limit, lease_s)
        await self._note("claim", len(claimed))
        return claimed

    async def paused(self) -> dict[str, bool]:
        found = await super().paused()
        await self._note("paused", found["processor"])
        return found

    async def renew(self, email_id: int, token: str, lease_s: float) -> bool:
        renewed = await super().renew(email_id, token, lease_s)
        await self._note("renew", renewed)
        return renewed

    async def snooze(self, email_id: int, token: str, delay_s: float, note: str) -> bool:
        done = await super().snooze(email_id, token, delay_s, note)
        await self._note("snooze", email_id)
        return done

    async def release(self, email_id: int, token: str) -> bool:
        done = await super().release(email_id, token)
        await self._note("release", email_id)
        return done

    async def complete_many(self, items: Sequence[Completion]) -> set[int]:
        done = await super().complete_many(items)
        await self._note("complete", len(done))
        return done


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


async def test_a_run_once_processor_ends_when_the_queue_is_done_not_a_poll_later(
    repo: Repository,
) -> None:
    """A worker going idle while the feeder claims wakes the feeder; the wake is not lost."""
    await repo.add_messages([new_message(i) for i in range(1, 9)])
    proc = make(repo, ScriptedBackend(), concurrency=3, poll_interval=3600)
    await asyncio.wait_for(proc.run(), 30)  # a lost wake would wait the whole hour
    assert await repo.counts() == QueueCounts(completed=8)


async def test_only_a_run_once_processor_remembers_what_it_handled(
    sqlite_engine: AsyncEngine,
) -> None:
    repo = Recorder(sqlite_engine)
    await repo.add_messages([new_message(i) for i in range(1, 4)])
    once = make(repo, ScriptedBackend())
    await once.run()
    assert sorted(once.stats.handled_ids) == [1, 2, 3]
    await repo.add_messages([new_message(i) for i in range(4, 7)])
    serving = make(repo, ScriptedBackend(), once=False)
    task = asyncio.create_task(serving.run())
    await repo.until(lambda: repo.completed() == 6)
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


async def test_rate_limit_snoozes_without_using_an_attempt(sqlite_engine: AsyncEngine) -> None:
    clock = Clock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    repo = Repository(sqlite_engine, clock=clock)
    await repo.add_messages([new_message(1)])
    backend = ScriptedBackend(ModelRateLimited("429", retry_after_s=30.0))
    await make(repo, backend, max_attempts=1).run()
    assert await repo.counts() == QueueCounts(pending=1)
    clock.advance(29.9)  # not due before the service's retry-after
    await make(repo, backend, max_attempts=1).run()
    assert (len(backend.calls), await repo.counts()) == (1, QueueCounts(pending=1))
    clock.advance(0.1)
    await make(repo, backend, max_attempts=1).run()
    assert (len(backend.calls), await repo.counts()) == (2, QueueCounts(completed=1))


async def test_auth_error_holds_processing_and_uses_no_attempt(sqlite_engine: AsyncEngine) -> None:
    repo = Recorder(sqlite_engine)
    await repo.add_messages([new_message(1), new_message(2)])
    backend = ScriptedBackend(ModelAuthError("the model service refused the API key"))
    proc = make(repo, backend, max_attempts=1, once=False)
    task = asyncio.create_task(proc.run())
    await repo.until(lambda: "release" in repo.names())  # given back untouched: held now
    held = repo.names().index("release")
    looked = repo.count(("paused", False))
    proc.wake()  # the feeder looks again at once, as when a pause ends
    await repo.until(lambda: repo.count(("paused", False)) > looked)
    proc.stop(0)
    await task
    assert "claim" not in repo.names(held), repo.calls  # nothing was claimed while held
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
    [row] = await repo.results_for([2])
    assert row["last_error"] == "gave up after 1 attempts: internal error (ZeroDivisionError: boom)"


async def test_stop_releases_in_flight_work_after_the_drain_timeout(repo: Repository) -> None:
    await repo.add_messages([new_message(1)])
    backend = ScriptedBackend(asyncio.Event())  # a call that never ends by itself
    proc = make(repo, backend, once=False)
    task = asyncio.create_task(proc.run())
    await asyncio.wait_for(backend.called.wait(), 10)
    assert await repo.counts() == QueueCounts(processing=1)
    proc.stop(0.1)
    await asyncio.wait_for(task, 5)
    assert await repo.counts() == QueueCounts(pending=1)
    again = await claim_one(repo, "x#1", 30)
    assert again is not None and again.attempts == 1
    assert backend.cancelled == 1


async def test_stop_lets_in_flight_work_finish_within_the_drain_timeout(
    repo: Repository,
) -> None:
    await repo.add_messages([new_message(1), new_message(2)])
    answer = asyncio.Event()
    backend = ScriptedBackend(answer)
    proc = make(repo, backend, once=False)
    task = asyncio.create_task(proc.run())
    await asyncio.wait_for(backend.called.wait(), 10)
    proc.stop(5)
    answer.set()  # the answer comes after the stop, well within the drain timeout
    await asyncio.wait_for(task, 5)
    assert await repo.counts() == QueueCounts(pending=1, completed=1)


async def test_renewal_keeps_the_lease_during_a_long_call(sqlite_engine: AsyncEngine) -> None:
    clock = Clock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    repo = Recorder(sqlite_engine, clock)
    await repo.add_messages([new_message(1)])
    answer = asyncio.Event()
    backend = ScriptedBackend(answer)
    proc = make(repo, backend, lease_seconds=0.3)  # renewed every 0.1 s
    task = asyncio.create_task(proc.run())
    await asyncio.wait_for(backend.called.wait(), 10)
    clock.advance(0.2)  # within the first lease
    # A renewal already under way may have read the clock before it moved: wait for two.
    renewed = repo.count(("renew", True))
    await repo.until(lambda: repo.count(("renew", True)) >= renewed + 2)
    clock.advance(0.2)  # past the first lease, within the renewed one
    assert await claim_one(repo, "thief#1", 30) is None
    answer.set()
    await task
    assert proc.stats.completed == 1
    assert ("renew", False) not in repo.calls


async def test_lost_lease_abandons_the_answer(sqlite_engine: AsyncEngine) -> None:
    repo = Recorder(sqlite_engine)
    await repo.add_messages([new_message(1)])
    answer = asyncio.Event()
    backend = ScriptedBackend(answer)
    proc = make(repo, backend, lease_seconds=0.3)
    task = asyncio.create_task(proc.run())
    await asyncio.wait_for(backend.called.wait(), 10)
    async with sqlite_engine.begin() as conn:  # another worker took the row over
        await conn.execute(text("UPDATE emails SET claimed_by = 'other#1'"))
    await repo.until(lambda: ("renew", False) in repo.calls)
    answer.set()  # the answer would be ready now: too late
    await asyncio.wait_for(task, 10)
    assert backend.cancelled == 1
    assert (proc.stats.completed, proc.stats.lost) == (0, 1)
    assert await repo.counts() == QueueCounts(processing=1)
    [row] = await repo.results_for([1])
    assert row["summary"] is None


async def test_paused_processor_claims_nothing(sqlite_engine: AsyncEngine) -> None:
    repo = Recorder(sqlite_engine)
    await repo.add_messages([new_message(1)])
    await repo.set_paused("processor", True)
    proc = make(repo, ScriptedBackend(), once=False)
    task = asyncio.create_task(proc.run())
    await repo.until(lambda: repo.count(("paused", True)) == 1)
    proc.wake()  # the feeder looks again at once: still paused
    await repo.until(lambda: repo.count(("paused", True)) == 2)
    assert "claim" not in repo.names(), repo.calls
    assert await repo.counts() == QueueCounts(pending=1)
    await repo.set_paused("processor", False)
    proc.wake()
    await repo.until(lambda: repo.completed() == 1)
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
