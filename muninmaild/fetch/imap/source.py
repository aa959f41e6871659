"""IMAP as a mail source: UID sync, IDLE push or polling, reconnects (docs/imap.md).

One connection per account. `sync()` takes each mailbox's fetch lease, EXAMINEs it (read-only)
and queues what lies above the highest UID stored; bodies are fetched with `BODY.PEEK[]`, so
no flag changes. `wait_for_mail()` IDLEs on the first mailbox this instance holds, or sleeps
(polling) when IDLE is switched off or not offered; the other mailboxes are synced whenever
the loop syncs: after a push, and at least every `poll_interval` seconds.

Any IMAP failure discards the connection (aioimaplib cannot go on after a timeout) and the
fetch loop backs off; the next `sync()` connects afresh and catches up by UID.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from muninmaild.config.settings import AccountSettings
from muninmaild.errors import FetchError
from muninmaild.fetch.backfill import Backfill, imap_date
from muninmaild.fetch.imap.connection import ImapConnection, MailboxRefused
from muninmaild.fetch.imap.rescan import KnownMessagesStore, Rescan
from muninmaild.fetch.imap.responses import (
    FetchedItem,
    MailboxInfo,
    chunked,
    has_new_mail,
    plan_groups,
)
from muninmaild.fetch.imap.uid_windows import WINDOW as UID_WINDOW
from muninmaild.fetch.imap.uid_windows import uid_windows
from muninmaild.fetch.lease import LeaseStore, MailboxLeases
from muninmaild.fetch.source import MessageStore, digest_note, oversize_note
from muninmaild.mail.parse_child import parse_all
from muninmaild.mail.parse_process import ParseWorker
from muninmaild.records import BACKFILL_NOTE, NewMessage, SyncAdvance, SyncState
from muninmaild.waiting import backoff

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImapTuning:
    timeout: float = 30.0  # seconds, for every IMAP call
    lease_ttl: float = 120.0  # seconds; renewed every third of it
    batch: int = 200  # UIDs per FETCH: aioimaplib fails on answers of ~1,000 lines (#118)
    batch_bytes: int = 8 * 1024 * 1024  # message bytes per FETCH
    idle_renew: float = 25 * 60.0  # RFC 2177: re-issue IDLE before 29 minutes
    stale_after: float = 20 * 60.0  # a connection unused this long is replaced, not trusted
    parsers: int = 2  # child processes parsing the groups of a big fetch, in turn
    uid_window: int = UID_WINDOW  # UIDs per search: a big mailbox's are never all held


@dataclass(frozen=True)
class _Synced:
    """Where the last sync of a mailbox left it: what the check before IDLE compares with."""

    uidvalidity: int
    highest_uid: int
    exists: int | None  # the message count EXAMINE gave at the sync


class ImapStateStore(LeaseStore, KnownMessagesStore, Protocol):
    """What the fetcher keeps in the database besides the mail: leases, known messages."""


class ImapSource:
    def __init__(
        self,
        settings: AccountSettings,
        state: ImapStateStore,
        holder: str,
        tuning: ImapTuning | None = None,
    ) -> None:
        self.account = settings.name
        self._settings = settings
        self._state = state
        self._tuning = tuning or ImapTuning()
        self._backfill = Backfill(settings.backfill_window)
        self._leases = MailboxLeases(state, settings.name, holder, self._tuning.lease_ttl)
        self._conn: ImapConnection | None = None
        self._synced: dict[str, _Synced] = {}
        self._wait_failures = 0
        self.idling = asyncio.Event()  # set while the server is in IDLE for us

    # -- sync ---------------------------------------------------------------------------------

    async def sync(self, store: MessageStore) -> int:
        conn = await self._connection()
        try:
            return await self._sync_all(conn, store)
        finally:
            if not conn.usable:
                self._drop()

    async def _connection(self) -> ImapConnection:
        conn = self._conn
        if conn is not None and (not conn.usable or conn.unused_for() > self._tuning.stale_after):
            self._drop()
        if self._conn is None:
            self._conn = await ImapConnection.open(self._settings, self._tuning.timeout)
            log.info("%s: connected to %s", self.account, self._settings.server)
        return self._conn

    async def _sync_all(self, conn: ImapConnection, store: MessageStore) -> int:
        added = 0
        refused: list[str] = []
        for mailbox in self._settings.mailboxes:
            if not await self._leases.acquire(mailbox):
                continue
            try:
                added += await self._sync_mailbox(conn, store, mailbox)
            except MailboxRefused as exc:  # the other mailboxes are still fetched
                refused.append(str(exc))
                continue
            await store.mailbox_synced(self.account, mailbox)
        if refused:
            raise FetchError("; ".join(refused))
        return added

    async def _sync_mailbox(self, conn: ImapConnection, store: MessageStore, mailbox: str) -> int:
        info = await conn.examine(mailbox)
        state = await store.sync_state(self.account, mailbox)
        if state.uidvalidity is not None and state.uidvalidity != info.uidvalidity:
            log.warning(
                "%s/%s: UIDVALIDITY changed from %d to %d (mailbox recreated?): rescanning",
                self.account,
                mailbox,
                state.uidvalidity,
                info.uidvalidity,
            )
            return await self._rescan(conn, store, mailbox, info)
        first = state.highest_uid + 1
        uids = uid_windows(conn, first, info.uidnext, self._tuning.uid_window)
        # Every UID below UIDNEXT at EXAMINE time was in the search: the position may move
        # there even when the newest messages were deleted, so they are not looked for again.
        end = max(state.highest_uid, (info.uidnext or 1) - 1)
        stored = -1 if state.uidvalidity is None else state.highest_uid
        # A first sync weighs everything it finds; the UIDs it stops at are known as it goes.
        bound = self._backfill.bound(state, end)
        grows = state.uidvalidity is None and self._backfill.window is not None
        added, end = await self._fetch(
            conn,
            store,
            mailbox,
            info.uidvalidity,
            uids,
            end,
            stored=stored,
            backfill=(bound, grows),
        )
        self._synced[mailbox] = _Synced(info.uidvalidity, end, info.count)
        return added

    async def _rescan(
        self, conn: ImapConnection, store: MessageStore, mailbox: str, info: MailboxInfo
    ) -> int:
        """Queue only what the recreated mailbox holds that was not there before."""
        scan = Rescan(conn, self._state, self.account, mailbox, self._tuning.batch)
        uids = scan.unknown(uid_windows(conn, 1, info.uidnext, self._tuning.uid_window))
        end = (info.uidnext or 1) - 1
        bound = self._backfill.bound(SyncState(), end)  # a recreated mailbox: a first sync
        # The new position is stored only at the end: if the rescan is cut short it runs again,
        # and what it queued so far is then known.
        added, end = await self._fetch(
            conn,
            store,
            mailbox,
            info.uidvalidity,
            uids,
            end,
            stored=-1,
            defer=True,
            backfill=(bound, self._backfill.window is not None),
            scanned=scan,
        )
        log.info("%s/%s: %d of %d message(s) are new", self.account, mailbox, added, scan.seen)
        self._synced[mailbox] = _Synced(info.uidvalidity, end, info.count)
        return added

    async def _fetch(
        self,
        conn: ImapConnection,
        store: MessageStore,
        mailbox: str,
        uidvalidity: int,
        uids: AsyncIterator[list[int]],
        end: int,
        *,
        stored: int,
        defer: bool = False,
        backfill: tuple[int, bool] = (0, False),
        scanned: Rescan | None = None,
    ) -> tuple[int, int]:
        """Queue `uids` in batches, each stored with its position (unless `defer`), then the
        end: `end` or the highest UID seen, if above `stored` (-1: always). Returns how many
        were queued, and the end. UIDs up to `backfill[0]` are weighed against the backfill
        window; with `backfill[1]` (a first sync) that bound grows to every UID the sync finds.
        A rescan's `scanned` UIDs count too, the known ones it did not pass on included.

        A pipeline: while groups are parsed, the next is fetched and the oldest parsed one is
        stored, in order, so the server, the parsers and the database overlap.
        """
        added = 0
        where = (self.account, mailbox, uidvalidity)
        bound, grows = backfill
        position: int | None = None
        parsing: deque[tuple[asyncio.Future[list[NewMessage]], int]] = deque()
        workers: list[ParseWorker] = []

        async def store_oldest() -> int:
            nonlocal position
            future, last = parsing.popleft()
            advance = None if defer else SyncAdvance(*where, last, bound)
            stored = await store.add_messages(await future, advance)
            position = None if defer else last
            await self._leases.renew_due()
            return stored

        try:
            groups = 0
            async for window in uids:
                end = max(end, window[-1])
                bound = max(bound, window[-1]) if grows else bound
                # A big fetch is parsed in child processes, beside this loop instead of under
                # its GIL.
                if not workers and groups == 0 and len(window) > self._tuning.batch:
                    workers = [ParseWorker() for _ in range(self._tuning.parsers)]
                for chunk in chunked(window, self._tuning.batch):
                    sizes = {u: i.size or 0 for u, i in (await conn.fetch(chunk, None)).items()}
                    present = [u for u in chunk if u in sizes]  # the rest was deleted meanwhile
                    limit = self._settings.max_message_size
                    old = await self._left_out(conn, present, bound)
                    for group in plan_groups(present, sizes, limit, self._tuning.batch_bytes):
                        items = await self._fetch_group(conn, group, sizes)
                        worker = workers[groups % len(workers)] if workers else None
                        parse = self._parse(worker, where, group, items, sizes, old)
                        parsing.append((asyncio.ensure_future(parse), group[-1]))
                        groups += 1
                        if len(parsing) > max(1, len(workers)):  # one group per parser
                            added += await store_oldest()
            while parsing:
                added += await store_oldest()
            if scanned is not None:
                end = max(end, scanned.highest)
                bound = max(bound, scanned.highest) if grows else bound
        finally:
            # A failure above: let the parses finish, keep nothing of them.
            await asyncio.gather(*(future for future, _ in parsing), return_exceptions=True)
            for worker in workers:
                await worker.close()
        if position != end and end > stored:
            await store.add_messages([], SyncAdvance(*where, end, bound))
        return added, end

    async def _left_out(self, conn: ImapConnection, uids: list[int], bound: int) -> set[int]:
        """Which of `uids` the backfill window leaves out (only those up to `bound` may be)."""
        weighed = [u for u in uids if u <= bound]
        cutoff = self._backfill.cutoff()
        if not weighed or cutoff is None:
            return set()
        if self._backfill.leaves_out_all:
            return set(weighed)
        return await conn.uids_before(weighed, imap_date(cutoff.date()))

    async def _fetch_group(
        self, conn: ImapConnection, group: list[int], sizes: Mapping[int, int]
    ) -> dict[int, FetchedItem]:
        limit = self._settings.max_message_size
        whole = [u for u in group if sizes[u] <= limit]
        large = [u for u in group if sizes[u] > limit]
        items = await conn.fetch(whole, "") if whole else {}
        if large:  # over the limit: the row is made from the header alone
            items |= await conn.fetch(large, "HEADER")
        return items

    async def _parse(
        self,
        worker: ParseWorker | None,
        where: tuple[str, str, int],
        group: list[int],
        items: Mapping[int, FetchedItem],
        sizes: Mapping[int, int],
        old: Collection[int] = (),
    ) -> list[NewMessage]:
        _, mailbox, uidvalidity = where
        present = [uid for uid in group if uid in items]  # the rest was deleted meanwhile
        raws = [items[uid].data or b"" for uid in present]
        if worker is not None:
            mails = await worker.parse(raws)
        else:  # CPU work: off the event loop, so the watchdog keeps ticking
            mails = await asyncio.to_thread(parse_all, raws)
        limit = self._settings.max_message_size
        out = []
        for uid, mail in zip(present, mails, strict=True):
            size, skip = sizes[uid], None
            if size > limit:
                skip = oversize_note(size, limit)
            elif items[uid].data is None:
                skip = "not analysed: the server sent no content for this message"
            else:
                skip = digest_note(mail) or (BACKFILL_NOTE if uid in old else None)
            message = replace(mail, size=size)
            out.append(
                NewMessage(self.account, mailbox, uidvalidity, uid, message, skip_reason=skip)
            )
        return out

    # -- waiting for mail ---------------------------------------------------------------------

    async def wait_for_mail(self, max_wait_s: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait_s
        mailbox = self._idle_mailbox()
        try:
            if mailbox is None or self._conn is None:
                await self._sleep_until(deadline)
            else:
                until = min(deadline, loop.time() + self._tuning.idle_renew)
                await self._idle(self._conn, mailbox, until)
            self._wait_failures = 0
        except FetchError as exc:
            # The next sync reconnects; a pause first, so a server that keeps failing IDLE
            # cannot make us spin.
            self._drop()
            self._wait_failures += 1
            log.warning("%s: waiting for mail failed: %s", self.account, exc)
            pause = backoff(self._wait_failures, 1.0, 60.0)
            await asyncio.sleep(max(0.0, min(pause, deadline - loop.time())))

    def _idle_mailbox(self) -> str | None:
        conn = self._conn
        if not (self._settings.idle and conn is not None and conn.usable and conn.supports_idle):
            return None
        return next((m for m in self._settings.mailboxes if self._leases.holds(m)), None)

    async def _sleep_until(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        while (left := deadline - loop.time()) > 0:
            await asyncio.sleep(min(left, self._leases.renew_every))
            await self._leases.renew_due()

    async def _idle(self, conn: ImapConnection, mailbox: str, until: float) -> None:
        loop = asyncio.get_running_loop()
        # EXAMINE again first: a message that arrived since the sync was announced in an
        # answer aioimaplib threw away, and IDLE only tells of what comes later.
        info = await conn.examine(mailbox)
        if await self._arrived_since_sync(conn, mailbox, info):
            return
        await conn.start_idle()
        self.idling.set()
        try:
            while (left := until - loop.time()) > 0:
                pushed = await conn.wait_push(min(left, self._leases.renew_every))
                if pushed is None:
                    await self._leases.renew_due()
                    if not self._leases.holds(mailbox):
                        return
                elif has_new_mail(pushed) or not conn.usable:
                    return
        finally:
            self.idling.clear()
            conn.stop_idle()

    async def _arrived_since_sync(
        self, conn: ImapConnection, mailbox: str, info: MailboxInfo
    ) -> bool:
        """Whether mail arrived between the last sync and now, on any server.

        UIDNEXT says so at once. A server that sends none (Courier) is asked by count, then
        by UID: one message expunged and one delivered leave the count as it was.
        """
        synced = self._synced.get(mailbox)
        if synced is None or synced.uidvalidity != info.uidvalidity or info.grew_meanwhile:
            return True
        if info.uidnext is not None:
            return info.uidnext - 1 > synced.highest_uid
        if info.count is not None and synced.exists is not None and info.count > synced.exists:
            return True
        return bool(await conn.uids_from(synced.highest_uid + 1))

    # -- shutdown -----------------------------------------------------------------------------

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.discard()

    async def close(self) -> None:
        """LOGOUT, and give the mailboxes back for another instance to take at once."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.logout()
        try:
            await self._leases.release_all()
        except Exception as exc:  # the leases run out by themselves
            log.warning("%s: could not release the fetch leases: %s", self.account, exc)
