"""A local Maildir as a mail source: the demo's, and a way to import mail.

Maildir has no UIDs, so the source hands out its own, in delivery order, and keeps each file's
unique name (the part before ':') as `source_key`; the identity of a row is then
(account, mailbox, MAILDIR_UIDVALIDITY, uid) as for IMAP, and a file is never queued twice.
"INBOX" is the Maildir's top folder; any other mailbox `X` is its subfolder `.X`. Like an IMAP
mailbox, each folder is read by one instance at a time (a fetch lease in the database), so that
daemons sharing a database never hand out the same UIDs twice.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from pathlib import Path

from muninmaild.errors import FetchError
from muninmaild.fetch.backfill import Backfill
from muninmaild.fetch.lease import LeaseStore, MailboxLeases
from muninmaild.fetch.maildir_listing import FolderWatch, MaildirFile, delivery_order, names
from muninmaild.fetch.source import MessageStore, digest_note, oversize_note
from muninmaild.mail.parse import parse_message
from muninmaild.records import BACKFILL_NOTE, NewMessage, SyncAdvance

MAILDIR_UIDVALIDITY = 1
BATCH = 200
HEAD_BYTES = 64 * 1024  # an oversize message is queued from its headers alone
KEYS_PER_QUERY = 500  # file names asked about at once: far below any bound-parameter limit


class MaildirSource:
    def __init__(
        self,
        account: str,
        root: Path,
        mailboxes: tuple[str, ...],
        max_message_size: int,
        leases: tuple[LeaseStore, str, float] | None = None,
        backfill: Backfill | None = None,
    ) -> None:
        """`leases`: the store, this instance's id and the lease's lifetime in seconds;
        `backfill`: the account's window (None: all mail goes to the model)."""
        self.account = account
        self._root = root
        self._mailboxes = mailboxes
        self._max_size = max_message_size
        self._backfill = backfill or Backfill()
        self._leases = MailboxLeases(leases[0], account, leases[1], leases[2]) if leases else None
        self._watch = FolderWatch()

    async def sync(self, store: MessageStore) -> int:
        if not self._root.is_dir():
            raise FetchError(f"Maildir {self._root} does not exist or is not a folder")
        added = 0
        for mailbox in self._mailboxes:
            if self._leases is None or await self._leases.acquire(mailbox):
                added += await self._sync_mailbox(store, mailbox)
                await store.mailbox_synced(self.account, mailbox)
        return added

    async def _sync_mailbox(self, store: MessageStore, mailbox: str) -> int:
        folder = self._root if mailbox == "INBOX" else self._root / f".{mailbox}"
        # Off the event loop: a big folder takes a while to list even by names alone.
        stamp = await asyncio.to_thread(self._watch.stamp, folder)
        if self._watch.unchanged(folder, stamp):
            return 0
        files = await self._unknown(store, mailbox, folder)
        state = await store.sync_state(self.account, mailbox)
        uid = state.highest_uid
        bound = self._backfill.bound(state, uid + len(files))
        added = 0
        for start in range(0, len(files), BATCH):
            chunk = files[start : start + BATCH]
            # Parsing is CPU work: off the event loop, so the watchdog keeps ticking.
            batch = await asyncio.to_thread(self._read_batch, chunk, mailbox, uid, bound)
            uid += len(batch)
            advance = SyncAdvance(self.account, mailbox, MAILDIR_UIDVALIDITY, uid, bound)
            added += await store.add_messages(batch, advance)
        self._watch.synced(folder, stamp)
        return added

    async def _unknown(self, store: MessageStore, mailbox: str, folder: Path) -> list[MaildirFile]:
        """The folder's files the store does not know yet, oldest delivery first.

        The listing is asked about in chunks: neither every file nor every known key of the
        folder is held at once, only the new ones.
        """
        listing = names(folder)

        def next_chunk() -> list[MaildirFile]:
            return list(itertools.islice(listing, KEYS_PER_QUERY))

        new: list[MaildirFile] = []
        while chunk := await asyncio.to_thread(next_chunk):
            known = await store.known_source_keys(self.account, mailbox, [f.key for f in chunk])
            new += [f for f in chunk if f.key not in known]
        return delivery_order(new)

    def _read_batch(
        self, files: list[MaildirFile], mailbox: str, last_uid: int, bound: int
    ) -> list[NewMessage]:
        old = self._left_out(files, last_uid, bound)
        return [self._read(f, mailbox, last_uid + i + 1, old) for i, f in enumerate(files)]

    def _left_out(self, files: list[MaildirFile], last_uid: int, bound: int) -> set[str]:
        """The keys of `files` (UIDs from `last_uid + 1`) that the backfill window leaves out.
        Only the files weighed are looked at (`stat`), in the reading thread."""
        cutoff = self._backfill.cutoff()
        if cutoff is None:
            return set()
        weighed = [f for i, f in enumerate(files) if last_uid + i + 1 <= bound]
        if self._backfill.leaves_out_all:
            return {f.key for f in weighed}
        return {f.key for f in weighed if _delivered_at(f.path) < cutoff.timestamp()}

    def _read(self, file: MaildirFile, mailbox: str, uid: int, old: set[str]) -> NewMessage:
        skip = None
        try:
            with file.path.open("rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size > self._max_size:
                    raw = fh.read(HEAD_BYTES).split(b"\n\n", 1)[0] + b"\n\n"
                    skip = oversize_note(size, self._max_size)
                else:
                    raw = fh.read()
        except OSError as exc:
            # Gone between listing and reading (moved by a mail client): a row says so.
            raw, skip = b"", f"not analysed: the file could not be read ({exc.strerror})"
        mail = parse_message(raw)
        return NewMessage(
            account=self.account,
            mailbox=mailbox,
            uidvalidity=MAILDIR_UIDVALIDITY,
            uid=uid,
            mail=mail,
            source_key=file.key,
            skip_reason=skip or digest_note(mail) or (BACKFILL_NOTE if file.key in old else None),
        )

    async def wait_for_mail(self, max_wait_s: float) -> None:
        if self._leases is None:
            await asyncio.sleep(max_wait_s)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait_s
        while (left := deadline - loop.time()) > 0:
            await asyncio.sleep(min(left, self._leases.renew_every))
            await self._leases.renew_due()

    async def close(self) -> None:
        if self._leases is not None:
            await self._leases.release_all()


def _delivered_at(path: Path) -> float:
    """A file's modification time, its delivery: a Maildir's INTERNALDATE. A file gone since
    the listing is not left out; reading it says what happened."""
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")
