"""The fetch loop: one per mail source; sync, wait for mail, back off on failure."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from muninmaild.errors import FetchAuthError
from muninmaild.fetch.source import MailSource, MessageStore
from muninmaild.records import FetchStatus, NewMessage, SyncAdvance
from muninmaild.redact import Redactor
from muninmaild.waiting import backoff, first_of, wait_event

log = logging.getLogger(__name__)
BACKOFF_CAP_S = 300.0
AUTH_BACKOFF_S = 900.0


class _Notifying:
    """Wraps the store so every batch that adds mail wakes the processor."""

    def __init__(self, store: MessageStore, on_new: Callable[[], None], status: FetchStatus):
        self._store = store
        self._on_new = on_new
        self._status = status
        self.sync_state = store.sync_state
        self.known_source_keys = store.known_source_keys
        self.mailbox_synced = store.mailbox_synced

    async def add_messages(
        self, batch: Sequence[NewMessage], advance: SyncAdvance | None = None
    ) -> int:
        added = await self._store.add_messages(batch, advance)
        if added:
            self._status.queued += added
            self._on_new()
        return added


class FetchLoop:
    def __init__(
        self,
        source: MailSource,
        store: MessageStore,
        *,
        on_new: Callable[[], None],
        is_paused: Callable[[], Awaitable[bool]],
        poll_interval: float,
        once: bool = False,
        redact: Redactor | None = None,
    ) -> None:
        self.source = source
        self.status = FetchStatus(source.account)
        self._store = _Notifying(store, on_new, self.status)
        self._is_paused = is_paused
        self._poll = poll_interval
        self._once = once
        self._redact = redact or Redactor()
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._failures = 0

    async def run(self) -> None:
        try:
            while not self._stopping:
                # Cleared before the sync, not after: a stop or fetch-now that arrives while
                # it runs must still end, or cut short, the wait that follows.
                self._wakeup.clear()
                await self.run_once()
                if self._once or self._stopping:
                    return
                await self._wait(self._next_wait())
        finally:
            self.status.state = "stopped"
            await self.source.close()

    async def run_once(self) -> None:
        """One catch-up; errors are recorded and counted for the backoff, never raised."""
        if await self._is_paused():
            self.status.state = "paused"
            return
        self.status.state = "syncing"
        try:
            added = await self.source.sync(self._store)
        except Exception as exc:  # the barrier for one sync: the loop always goes on
            self._record_failure(exc)
            return
        self._failures = 0
        self.status.state, self.status.caught_up = "idle", True
        self.status.last_fetch_at, self.status.last_error = datetime.now(UTC), None
        self.status.last_success_at = self.status.last_fetch_at
        if added:
            log.info(
                "%s: queued %d new message(s)",
                self.source.account,
                added,
                extra={"account": self.source.account},
            )

    def fetch_now(self) -> None:
        self._wakeup.set()

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    def _record_failure(self, exc: Exception) -> None:
        self._failures += 1
        self.status.errors += 1
        auth = isinstance(exc, FetchAuthError)
        self.status.state = "auth_failed" if auth else "backoff"
        self.status.caught_up = False
        self.status.last_error = self._redact(str(exc) or type(exc).__name__)
        log.error(
            "%s: fetch failed: %s",
            self.source.account,
            self.status.last_error,
            extra={"account": self.source.account},
        )

    def _next_wait(self) -> float:
        if self.status.state == "auth_failed":
            return AUTH_BACKOFF_S * (0.8 + 0.4 * random.random())
        if self.status.state == "backoff":
            return backoff(self._failures, 2.0, BACKOFF_CAP_S, random.random)
        return self._poll

    async def _wait(self, seconds: float) -> None:
        """Until the source says there is mail, fetch-now, stop, or the time is up."""
        if self.status.state == "idle":
            await first_of(self._wakeup.wait(), self.source.wait_for_mail(seconds))
        else:
            await wait_event(self._wakeup, seconds)
