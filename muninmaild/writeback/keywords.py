"""The keyword writer: a message's flags become IMAP keywords on it (`write_keywords`).

One loop for every account that writes keywords, with one IMAP connection of its own per
account (the fetcher's stays read-only). Each pass takes the due intents of an account
(`store/keywords.py`) and, mailbox by mailbox: SELECT, the messages' FLAGS, `UID STORE
+FLAGS.SILENT` of the keywords they lack, the FLAGS again to see that they were kept, and one
transaction recording the outcomes. An account is the unit of work: a fault (connection,
server, database) is caught there, the connection dropped, and the account tried again after
a backoff; the other accounts go on.

Restarts: the intent is in the database before anything is written, and a keyword found on
the server is recorded without a second STORE, so a restart between the STORE and its record
neither loses nor repeats the write. A mailbox that does not keep new keywords gets none: the
intents wait (asked again hourly), `status` names the mailbox, the journal says so once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from itertools import groupby
from typing import Protocol

from muninmaild.config.settings import AccountSettings, FlagSpec
from muninmaild.errors import FetchAuthError, FetchError
from muninmaild.fetch.imap.connection import MailboxRefused
from muninmaild.fetch.imap.responses import chunked
from muninmaild.fetch.imap.write import StoreRefused, WriteConnection
from muninmaild.records import KeywordOutcome, KeywordStatus, KeywordTarget
from muninmaild.redact import Redactor
from muninmaild.waiting import backoff, wait_event
from muninmaild.writeback import plan

log = logging.getLogger(__name__)
BATCH = 200  # UIDs per FETCH or STORE
PASS_LIMIT = 500  # intents an account takes in one pass; a full pass is followed at once
BACKOFF_CAP_S = 300.0
AUTH_BACKOFF_S = 900.0
LINGER_S = 30.0  # an unused connection is logged out after this long


class KeywordStore(Protocol):
    async def keyword_targets(
        self, account: str, holder: str, limit: int = ...
    ) -> list[KeywordTarget]: ...

    async def record_keyword_outcomes(self, outcomes: Sequence[KeywordOutcome]) -> int: ...


Connect = Callable[[AccountSettings, float], Awaitable[WriteConnection]]


async def _connect(account: AccountSettings, timeout_s: float) -> WriteConnection:
    conn = await WriteConnection.open(account, timeout_s)
    assert isinstance(conn, WriteConnection)
    return conn


class KeywordWriter:
    def __init__(
        self,
        store: KeywordStore,
        accounts: Sequence[AccountSettings],
        flags: Sequence[FlagSpec],
        holder: str,
        *,
        once: bool = False,
        poll_s: float = 2.0,
        timeout_s: float = 30.0,
        redact: Redactor | None = None,
        connect: Connect = _connect,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.accounts = tuple(a for a in accounts if a.write_keywords)
        self.status = {a.name: KeywordStatus() for a in self.accounts}
        self._store = store
        self._flags = tuple(flags)
        self._holder = holder
        self._once = once
        self._poll = poll_s
        self._timeout = timeout_s
        self._redact = redact or Redactor()
        self._connect = connect
        self._rand = rand
        self._clock = clock
        self._conns: dict[str, WriteConnection] = {}
        self._failures: dict[str, int] = {}
        self._retry_at: dict[str, float] = {}
        self._wakeup = asyncio.Event()
        self._stopping = False

    async def run(self) -> None:
        try:
            while not self._stopping:
                self._wakeup.clear()
                more = await self.run_once()
                if self._stopping or (self._once and not more):
                    return
                if not more:
                    await wait_event(self._wakeup, self._next_wait())
                await self._close_unused(LINGER_S)
        finally:
            await self._close_unused(0.0)
            for status in self.status.values():
                status.state = "stopped"

    async def run_once(self) -> bool:
        """One pass over the accounts not backing off; never raises. True when an account had
        more due than one pass takes (a big sync), so the next pass should follow at once."""
        now = self._clock()
        more = False
        for account in self.accounts:
            if self._stopping:
                break
            if self._retry_at.get(account.name, 0.0) <= now:
                more = await self._account(account) or more
        return more

    def wake(self) -> None:
        self._wakeup.set()

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()

    # -- one account ----------------------------------------------------------------------------

    async def _account(self, account: AccountSettings) -> bool:
        """The unit of work and its error barrier: what is due for one account. True when it
        settled a full pass, so that more may be due."""
        status = self.status[account.name]
        try:
            targets = await self._store.keyword_targets(account.name, self._holder, PASS_LIMIT)
            if not targets:
                return False
            status.state = "writing"
            conn = await self._connection(account)
            stored = 0
            for mailbox, group in groupby(targets, key=lambda t: t.mailbox):
                stored += await self._mailbox(account.name, conn, mailbox, list(group))
        except Exception as exc:  # the barrier: the next pass tries again after a backoff
            self._failed(account.name, exc)
            return False
        self._failures.pop(account.name, None)
        status.state, status.last_error = "idle", None
        return len(targets) == PASS_LIMIT and stored > 0

    async def _mailbox(
        self, account: str, conn: WriteConnection, mailbox: str, targets: list[KeywordTarget]
    ) -> int:
        """Write one mailbox's keywords and record the outcomes; how many were recorded."""
        try:
            outcomes, refusal, open_to_new = await self._write(conn, mailbox, targets)
        except (MailboxRefused, StoreRefused) as exc:  # the server said no; the connection is fine
            refusal, open_to_new = self._redact(str(exc)), False
            outcomes = [KeywordOutcome(t, "pending", (), refusal, plan.RECHECK_S) for t in targets]
        recorded = await self._store.record_keyword_outcomes(outcomes)
        self._note_refusal(account, mailbox, refusal, open_to_new)
        written = [o for o in outcomes if o.state == "written"]
        if written:
            status = self.status[account]
            status.written += len(written)
            status.last_written_at = datetime.now(UTC)
            log.info(
                "%s/%s: keywords written to %d message(s)",
                account,
                mailbox,
                len(written),
                extra={"account": account},
            )
        return recorded

    async def _write(
        self, conn: WriteConnection, mailbox: str, targets: list[KeywordTarget]
    ) -> tuple[list[KeywordOutcome], str | None, bool]:
        """The outcomes, why some keywords were not written (None: all were), and whether the
        mailbox takes new keywords at all."""
        selected = plan.after_select(targets, await conn.select(mailbox), self._flags)
        outcomes = list(selected.settled)
        writable = selected.writable
        stores = plan.to_store(writable, await self._flags_of(conn, writable), self._flags)
        outcomes += stores.settled
        stored = {uid for uids in stores.groups.values() for uid in uids}
        for keywords, uids in stores.groups.items():
            for chunk in chunked(uids, BATCH):
                await conn.add_keywords(chunk, keywords)
        written = [t for t in writable if t.uid in stored]
        after, dropped = plan.after_store(written, await self._flags_of(conn, written), self._flags)
        refusal = selected.refusal or dropped
        return outcomes + after, refusal, selected.takes_new_keywords and dropped is None

    async def _flags_of(
        self, conn: WriteConnection, targets: Sequence[KeywordTarget]
    ) -> dict[int, frozenset[str]]:
        found: dict[int, frozenset[str]] = {}
        for chunk in chunked([t.uid for t in targets], BATCH):
            found |= await conn.flags(chunk)
        return found

    # -- state, connections, failures -----------------------------------------------------------

    def _note_refusal(
        self, account: str, mailbox: str, refusal: str | None, open_to_new: bool
    ) -> None:
        """The journal hears of a refusal once, and once more when it ends: when the mailbox
        takes new keywords again (a keyword it happens to list does not end it)."""
        refused = self.status[account].refused
        before = refused.get(mailbox)
        if refusal is None:
            if before is not None and open_to_new:
                del refused[mailbox]
                log.info("%s/%s: keywords are written again", account, mailbox)
            return
        refused[mailbox] = refusal
        if before is None:
            log.warning(
                "%s/%s: keywords not written: %s; the results stay in muninctl",
                account,
                mailbox,
                refusal,
                extra={"account": account},
            )

    async def _connection(self, account: AccountSettings) -> WriteConnection:
        conn = self._conns.get(account.name)
        if conn is not None and conn.usable:
            return conn
        self._conns.pop(account.name, None)
        conn = await self._connect(account, self._timeout)
        self._conns[account.name] = conn
        return conn

    def _failed(self, account: str, exc: Exception) -> None:
        conn = self._conns.pop(account, None)
        if conn is not None:
            conn.discard()
        failures = self._failures.get(account, 0) + 1
        self._failures[account] = failures
        auth = isinstance(exc, FetchAuthError)
        wait = AUTH_BACKOFF_S if auth else backoff(failures, 2.0, BACKOFF_CAP_S, self._rand)
        self._retry_at[account] = self._clock() + wait
        status = self.status[account]
        status.state = "auth_failed" if auth else "backoff"
        status.last_error = self._redact(str(exc) or type(exc).__name__)
        if isinstance(exc, FetchError):
            log.error(
                "%s: writing keywords failed: %s; trying again in %.0f s",
                account,
                status.last_error,
                wait,
                extra={"account": account},
            )
        else:
            log.exception("%s: writing keywords failed; trying again in %.0f s", account, wait)

    def _next_wait(self) -> float:
        now = self._clock()
        later = [at - now for at in self._retry_at.values() if at > now]
        return max(0.01, min([self._poll, *later]))

    async def _close_unused(self, unused_for_s: float) -> None:
        for name, conn in list(self._conns.items()):
            if conn.unused_for() >= unused_for_s or not conn.usable:
                del self._conns[name]
                await conn.logout()
