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
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from muninmaild.errors import FetchError
from muninmaild.fetch.backfill import Backfill
from muninmaild.fetch.lease import LeaseStore, MailboxLeases
from muninmaild.fetch.source import MessageStore, digest_note, oversize_note
from muninmaild.mail.parse import parse_message
from muninmaild.records import BACKFILL_NOTE, NewMessage, SyncAdvance

MAILDIR_UIDVALIDITY = 1
BATCH = 200
HEAD_BYTES = 64 * 1024  # an oversize message is queued from its headers alone


@dataclass(frozen=True)
class _File:
    key: str
    path: Path
    size: int
    mtime: float  # the delivery time: a Maildir's INTERNALDATE


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
        known = await store.known_source_keys(self.account, mailbox)
        files = [f for f in _list(folder) if f.key not in known]
        state = await store.sync_state(self.account, mailbox)
        uid = state.highest_uid
        bound = self._backfill.bound(state, uid + len(files))
        added = 0
        for start in range(0, len(files), BATCH):
            chunk = files[start : start + BATCH]
            old = self._left_out(chunk, uid, bound)
            # Parsing is CPU work: off the event loop, so the watchdog keeps ticking.
            batch = await asyncio.to_thread(self._read_batch, chunk, mailbox, uid, old)
            uid += len(batch)
            advance = SyncAdvance(self.account, mailbox, MAILDIR_UIDVALIDITY, uid, bound)
            added += await store.add_messages(batch, advance)
        return added

    def _left_out(self, files: list[_File], last_uid: int, bound: int) -> set[str]:
        """The keys of `files` (UIDs from `last_uid + 1`) that the backfill window leaves out."""
        cutoff = self._backfill.cutoff()
        if cutoff is None:
            return set()
        weighed = [f for i, f in enumerate(files) if last_uid + i + 1 <= bound]
        if self._backfill.leaves_out_all:
            return {f.key for f in weighed}
        return {f.key for f in weighed if f.mtime < cutoff.timestamp()}

    def _read_batch(
        self, files: list[_File], mailbox: str, last_uid: int, old: set[str]
    ) -> list[NewMessage]:
        return [self._read(f, mailbox, last_uid + i + 1, old) for i, f in enumerate(files)]

    def _read(self, file: _File, mailbox: str, uid: int, old: set[str]) -> NewMessage:
        skip = None
        try:
            with file.path.open("rb") as fh:
                if file.size > self._max_size:
                    raw = fh.read(HEAD_BYTES).split(b"\n\n", 1)[0] + b"\n\n"
                    skip = oversize_note(file.size, self._max_size)
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


def _list(folder: Path) -> list[_File]:
    """Files in new/ and cur/, oldest delivery first (names start with the delivery time)."""
    found = {f.key: f for sub in ("new", "cur") for f in _scan(folder / sub)}
    return sorted(found.values(), key=lambda f: (_time_prefix(f.key), f.key))


def _scan(folder: Path) -> Iterator[_File]:
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_file():
            continue
        found = entry.stat()
        yield _File(entry.name.split(":", 1)[0], Path(entry.path), found.st_size, found.st_mtime)


def _time_prefix(key: str) -> int:
    head = key.split(".", 1)[0]
    return int(head) if head.isdigit() else 0
