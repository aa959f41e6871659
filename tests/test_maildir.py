"""The Maildir source: identity, dedup across runs, oversize and unreadable files."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from muninmaild.errors import FetchError
from muninmaild.fetch import maildir as maildir_module
from muninmaild.fetch import maildir_listing
from muninmaild.fetch.loop import FetchLoop
from muninmaild.fetch.maildir import MAILDIR_UIDVALIDITY, MaildirSource
from muninmaild.fetch.maildir_listing import MaildirFile
from muninmaild.records import QueueCounts
from muninmaild.store.repository import Repository
from tests.factories import new_message

MESSAGE = b"From: a@example.com\nSubject: %s\nMessage-ID: <%s@example.com>\n\nBody %s\n"


def deliver(root: Path, name: str, sub: str = "new", folder: str = "") -> Path:
    target = root / folder / sub if folder else root / sub
    target.mkdir(parents=True, exist_ok=True)
    path = target / name
    key = name.split(":")[0].encode()
    path.write_bytes(MESSAGE % (key, key, key))
    return path


def source(root: Path, *mailboxes: str, max_size: int = 1_000_000) -> MaildirSource:
    return MaildirSource("local", root, mailboxes or ("INBOX",), max_size)


async def test_new_and_cur_files_are_queued_in_delivery_order(
    tmp_path: Path, repo: Repository
) -> None:
    deliver(tmp_path, "200.b.host", "cur")
    deliver(tmp_path, "100.a.host:2,S", "cur")
    deliver(tmp_path, "300.c.host")
    assert await source(tmp_path).sync(repo) == 3
    rows = await repo.results_for([1, 2, 3])
    assert [r["subject"] for r in rows] == ["100.a.host", "200.b.host", "300.c.host"]
    state = await repo.sync_state("local", "INBOX")
    assert (state.uidvalidity, state.highest_uid) == (MAILDIR_UIDVALIDITY, 3)


async def test_a_file_is_never_queued_twice_even_when_moved_to_cur(
    tmp_path: Path, repo: Repository
) -> None:
    path = deliver(tmp_path, "100.a.host")
    assert await source(tmp_path).sync(repo) == 1
    (tmp_path / "cur").mkdir()
    path.rename(tmp_path / "cur" / "100.a.host:2,S")
    deliver(tmp_path, "200.b.host")
    assert await source(tmp_path).sync(repo) == 1
    assert await repo.counts() == QueueCounts(pending=2)


async def test_subfolders_are_mailboxes(tmp_path: Path, repo: Repository) -> None:
    deliver(tmp_path, "100.a.host")
    deliver(tmp_path, "100.z.host", folder=".Archive")
    assert await source(tmp_path, "INBOX", "Archive").sync(repo) == 2
    assert (await repo.sync_state("local", "Archive")).highest_uid == 1


async def test_oversize_message_gets_a_completed_row_from_its_headers(
    tmp_path: Path, repo: Repository
) -> None:
    path = deliver(tmp_path, "100.big.host")
    path.write_bytes(path.read_bytes() + b"x" * 5000)
    await source(tmp_path, max_size=1024).sync(repo)
    assert await repo.counts() == QueueCounts(completed=1)
    [row] = await repo.results_for([1])
    assert row["subject"] == "100.big.host"
    assert row["skip_reason"] is not None and "over the limit of 1024" in row["skip_reason"]


async def test_missing_maildir_is_a_fetch_error(tmp_path: Path, repo: Repository) -> None:
    with pytest.raises(FetchError, match="does not exist"):
        await source(tmp_path / "nope").sync(repo)


async def test_fetch_loop_records_failure_and_keeps_going(tmp_path: Path, repo: Repository) -> None:
    woken: list[bool] = []

    async def not_paused() -> bool:
        return False

    loop = FetchLoop(
        source(tmp_path / "later"),
        repo,
        on_new=lambda: woken.append(True),
        is_paused=not_paused,
        poll_interval=60,
        once=True,
    )
    await loop.run_once()
    assert loop.status.state == "backoff" and "does not exist" in (loop.status.last_error or "")
    deliver(tmp_path / "later", "100.a.host")
    await loop.run_once()
    assert (loop.status.state, loop.status.last_error, loop.status.queued) == ("idle", None, 1)
    assert woken == [True]


async def test_paused_fetcher_fetches_nothing(tmp_path: Path, repo: Repository) -> None:
    deliver(tmp_path, "100.a.host")

    async def paused() -> bool:
        return True

    loop = FetchLoop(
        source(tmp_path), repo, on_new=lambda: None, is_paused=paused, poll_interval=60
    )
    await loop.run_once()
    assert loop.status.state == "paused"
    assert await repo.counts() == QueueCounts()


class CountingStore:
    """The repository, counting the keys it is asked about (the cost of a listing)."""

    def __init__(self, repo: Repository) -> None:
        self._repo = repo
        self.asked: list[str] = []
        self.sync_state = repo.sync_state
        self.add_messages = repo.add_messages
        self.mailbox_synced = repo.mailbox_synced

    async def known_source_keys(self, account: str, mailbox: str, keys: Sequence[str]) -> set[str]:
        self.asked += keys
        return await self._repo.known_source_keys(account, mailbox, keys)


def age(root: Path) -> None:
    """Date new/ and cur/ back a minute, as a folder that has been quiet for a while."""
    for sub in ("new", "cur"):
        (root / sub).mkdir(exist_ok=True)
        then = time.time() - 60
        os.utime(root / sub, (then, then))


async def test_an_unchanged_folder_is_not_listed_and_a_changed_one_costs_its_changes(
    tmp_path: Path, repo: Repository
) -> None:
    for n in range(100, 110):
        deliver(tmp_path, f"{n}.a.host")
    store = CountingStore(repo)
    maildir = source(tmp_path)
    age(tmp_path)
    assert await maildir.sync(store) == 10
    store.asked.clear()
    assert await maildir.sync(store) == 0
    assert store.asked == []  # new/ and cur/ as they were: nothing listed, nothing asked
    deliver(tmp_path, "200.b.host")
    assert await maildir.sync(store) == 1
    assert await repo.counts() == QueueCounts(pending=11)


async def test_a_folder_is_listed_off_the_event_loop(
    tmp_path: Path, repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliver(tmp_path, "100.a.host")
    threads: list[str] = []
    real = maildir_listing.names

    def names(folder: Path) -> Iterator[MaildirFile]:
        for found in real(folder):
            threads.append(threading.current_thread().name)
            yield found

    monkeypatch.setattr(maildir_module, "names", names)
    assert await source(tmp_path).sync(repo) == 1
    assert threads and threading.main_thread().name not in threads


async def test_known_keys_are_asked_of_the_store_in_bounded_chunks(repo: Repository) -> None:
    await repo.add_messages([replace(new_message(n), source_key=f"k{n}") for n in range(1, 1201)])
    keys = [f"k{n}" for n in range(1, 1301)]
    assert await repo.known_source_keys("work", "INBOX", keys) == set(keys[:1200])
