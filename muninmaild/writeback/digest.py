"""Delivering the digest: IMAP APPEND into the configured mailbox, once per account and period.

The delivery is recorded before the APPEND (with the digest's Message-ID) and marked done after
it. A second delivery for the same period finds the record and appends nothing; one that finds
a delivery cut short (the daemon stopped, the connection broke) looks for that Message-ID in the
mailbox first and appends only if it is not there. A connection fault is tried again a few
times with a backoff within the request; then the request fails, and the next one retries.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from muninmaild.config.settings import AccountSettings, DigestSettings
from muninmaild.errors import FetchAuthError, FetchError
from muninmaild.fetch.imap.write import WriteConnection
from muninmaild.records import DigestRecord
from muninmaild.waiting import backoff

log = logging.getLogger(__name__)
ATTEMPTS = 3


class DigestStore(Protocol):
    async def begin_digest(
        self, account: str, mailbox: str, period: str, message_id: str
    ) -> tuple[DigestRecord, bool]: ...

    async def digest_delivered(self, digest_id: int) -> DigestRecord: ...


Connect = Callable[[AccountSettings, float], Awaitable[WriteConnection]]


async def _connect(account: AccountSettings, timeout_s: float) -> WriteConnection:
    conn = await WriteConnection.open(account, timeout_s)
    assert isinstance(conn, WriteConnection)
    return conn


@dataclass(frozen=True)
class Delivery:
    record: DigestRecord
    appended: bool  # False: a digest of this period was there already


class DigestDelivery:
    def __init__(
        self,
        store: DigestStore,
        settings: DigestSettings,
        account: AccountSettings,
        *,
        timeout_s: float = 30.0,
        connect: Connect = _connect,
        rand: Callable[[], float] = random.random,
        pause: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.account = account
        self.mailbox = settings.mailbox
        self._store = store
        self._timeout = timeout_s
        self._connect = connect
        self._rand = rand
        self._pause = pause
        self._lock = asyncio.Lock()  # one delivery at a time: a second waits, then finds it

    async def deliver(
        self, period: str, message_id: str, message: Callable[[str], bytes]
    ) -> Delivery:
        """Append `message(message_id)` unless this period's digest is there; `message_id` is
        used only for a new delivery (one cut short keeps the id it had)."""
        async with self._lock:
            record, new = await self._store.begin_digest(
                self.account.name, self.mailbox, period, message_id
            )
            if record.state == "delivered":
                return Delivery(record, appended=False)
            appended = await self._append(record, new, message)
            done = await self._store.digest_delivered(record.id)
            log.info(
                "digest %s %s %s/%s",
                period,
                "appended to" if appended else "found already in",
                self.account.name,
                record.mailbox,
            )
            return Delivery(done, appended=appended)

    async def _append(
        self, record: DigestRecord, new: bool, message: Callable[[str], bytes]
    ) -> bool:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await self._append_once(record, new, message)
            except FetchError as exc:
                if isinstance(exc, FetchAuthError) or attempt == ATTEMPTS:
                    raise
                wait = backoff(attempt, 1.0, 10.0, self._rand)
                log.warning("digest: %s; trying again in %.1f s", exc, wait)
                await self._pause(wait)
                new = False  # the APPEND may have arrived: look before appending again
        raise AssertionError("unreachable")

    async def _append_once(
        self, record: DigestRecord, new: bool, message: Callable[[str], bytes]
    ) -> bool:
        conn = await self._connect(self.account, self._timeout)
        try:
            if not new and await conn.find_message_id(record.mailbox, record.message_id):
                return False  # the APPEND cut short did arrive
            await conn.append(record.mailbox, message(record.message_id))
            return True
        finally:
            await conn.logout()
