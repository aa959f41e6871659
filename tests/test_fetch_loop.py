"""The fetch loop's own control: stop and fetch-now arriving while a sync is running."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from muninmaild.fetch.loop import FetchLoop
from muninmaild.fetch.source import MessageStore
from muninmaild.records import NewMessage, SyncAdvance, SyncState


class SlowSource:
    """A source whose syncs each wait to be let through, and whose waits last an hour."""

    account = "work"

    def __init__(self) -> None:
        self.syncs = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def sync(self, store: MessageStore) -> int:
        self.syncs += 1
        self.started.set()
        await self.release.wait()
        self.release.clear()
        return 0

    async def wait_for_mail(self, max_wait_s: float) -> None:
        await asyncio.sleep(max_wait_s)

    async def close(self) -> None:
        return None


class NoStore:
    async def add_messages(
        self, batch: Sequence[NewMessage], advance: SyncAdvance | None = None
    ) -> int:
        return 0

    async def sync_state(self, account: str, mailbox: str) -> SyncState:
        return SyncState()

    async def known_source_keys(self, account: str, mailbox: str, keys: Sequence[str]) -> set[str]:
        return set()

    async def mailbox_synced(self, account: str, mailbox: str) -> None:
        return None


async def not_paused() -> bool:
    return False


def make_loop(source: SlowSource) -> FetchLoop:
    return FetchLoop(
        source, NoStore(), on_new=lambda: None, is_paused=not_paused, poll_interval=3600
    )


async def test_stop_during_a_sync_ends_the_loop_when_the_sync_ends() -> None:
    source = SlowSource()
    loop = make_loop(source)
    running = asyncio.create_task(loop.run())
    await source.started.wait()
    loop.stop()
    source.release.set()
    await asyncio.wait_for(running, 2)  # not after the hour's poll interval
    assert source.syncs == 1
    assert loop.status.state == "stopped"


async def test_fetch_now_during_a_sync_syncs_again_at_once() -> None:
    source = SlowSource()
    loop = make_loop(source)
    running = asyncio.create_task(loop.run())
    try:
        await source.started.wait()
        source.started.clear()
        loop.fetch_now()  # mail may have come after this sync looked
        source.release.set()
        await asyncio.wait_for(source.started.wait(), 2)
        assert source.syncs == 2
    finally:
        loop.stop()
        source.release.set()
        await asyncio.wait_for(running, 2)
