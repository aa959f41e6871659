"""One fetcher per mailbox, even with several daemons on one database: a lease per mailbox.

A fetcher takes the lease of a mailbox before it syncs it and renews it while it syncs and waits
for mail; a mailbox whose lease another instance holds is left alone until that lease runs out
(its holder stopped, crashed or lost the database) or is released at shutdown.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class LeaseStore(Protocol):
    async def acquire_fetch_lease(
        self, account: str, mailbox: str, holder: str, ttl_s: float
    ) -> bool: ...

    async def release_fetch_lease(self, account: str, mailbox: str, holder: str) -> None: ...


class MailboxLeases:
    """The mailboxes of one account this instance holds, renewed every third of their TTL."""

    def __init__(
        self,
        store: LeaseStore,
        account: str,
        holder: str,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._account = account
        self._holder = holder
        self._ttl = ttl_s
        self._clock = clock
        self._renewed: dict[str, float] = {}  # mailbox -> when its lease was last taken
        self._elsewhere: set[str] = set()  # reported once as fetched by another instance

    @property
    def renew_every(self) -> float:
        return self._ttl / 3

    def holds(self, mailbox: str) -> bool:
        return mailbox in self._renewed

    async def acquire(self, mailbox: str) -> bool:
        """Take or renew the lease; False while another instance holds it."""
        taken = await self._store.acquire_fetch_lease(
            self._account, mailbox, self._holder, self._ttl
        )
        if taken:
            if mailbox in self._elsewhere:
                log.info(
                    "%s/%s: taking over fetching from another instance", self._account, mailbox
                )
            self._elsewhere.discard(mailbox)
            self._renewed[mailbox] = self._clock()
            return True
        if self._renewed.pop(mailbox, None) is not None:
            log.warning("%s/%s: lost the fetch lease to another instance", self._account, mailbox)
        elif mailbox not in self._elsewhere:
            log.info("%s/%s: fetched by another instance", self._account, mailbox)
        self._elsewhere.add(mailbox)
        return False

    async def renew_due(self) -> None:
        now = self._clock()
        for mailbox, renewed in list(self._renewed.items()):
            if now - renewed >= self.renew_every:
                await self.acquire(mailbox)

    async def release_all(self) -> None:
        held, self._renewed = list(self._renewed), {}
        for mailbox in held:
            await self._store.release_fetch_lease(self._account, mailbox, self._holder)
