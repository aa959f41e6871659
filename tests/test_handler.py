"""One message's error barrier: what escapes `MessageHandler.handle()` and what it costs."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.ai.base import ModelAnswer, ModelInput
from muninmaild.config.settings import AISettings, ProcessorSettings
from muninmaild.errors import StoreError
from muninmaild.processing.handler import MessageHandler, ProcessorStats
from muninmaild.processing.hold import Hold
from muninmaild.redact import Redactor
from muninmaild.store.repository import Repository
from tests.factories import new_message


class BlockedBackend:
    """A model call that never answers by itself; records that it was cancelled."""

    name = "blocked"
    model = "blocked-1"
    local = False
    reads_input = True

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def analyse(self, item: ModelInput) -> ModelAnswer:
        self.started.set()
        try:
            await asyncio.Event().wait()
        finally:
            self.cancelled.set()
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        return None


class RenewFails(Repository):
    """The database refuses the lease renewal (locked, disk full, gone); the rest works."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.renewals = 0

    async def renew(self, email_id: int, token: str, lease_s: float) -> bool:
        self.renewals += 1
        raise StoreError("database error: database is locked")


def handler(repo: Repository, backend: BlockedBackend) -> MessageHandler:
    return MessageHandler(
        repo,
        backend,
        AISettings(),
        ProcessorStats(),
        settings=lambda: ProcessorSettings(lease_seconds=0.3),
        abort=asyncio.Event(),
        hold=Hold(),
        redact=Redactor(),
    )


async def test_a_database_error_renewing_the_lease_escapes_and_costs_no_attempt(
    sqlite_engine: AsyncEngine,
) -> None:
    repo = RenewFails(sqlite_engine)
    await repo.add_messages([new_message(1)])
    (msg,) = await repo.claim_batch("t#1", 1, 0.3)
    backend = BlockedBackend()

    with pytest.raises(StoreError, match="locked"):
        await handler(repo, backend).handle(msg)

    assert repo.renewals == 1
    assert backend.cancelled.is_set()
    (row,) = await repo.list_messages()
    # Given back at once, without the attempt the claim took, and not as "internal error".
    assert row["status"] == "pending"
    assert row["attempts"] == 0
    assert row["last_error"] is None


async def test_a_lost_lease_ends_the_call_without_an_answer(sqlite_engine: AsyncEngine) -> None:
    repo = Repository(sqlite_engine, clock=lambda: datetime.now().astimezone())
    await repo.add_messages([new_message(1)])
    (msg,) = await repo.claim_batch("t#1", 1, 0.3)
    await repo.release(msg.id, msg.token)  # another hand took the row meanwhile
    backend = BlockedBackend()

    assert await handler(repo, backend).handle(msg) is None
    assert backend.cancelled.is_set()
