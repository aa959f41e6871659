"""The Maildir source: identity, dedup across runs, oversize and unreadable files."""

from __future__ import annotations

from pathlib import Path

import pytest

from muninmaild.errors import FetchError
from muninmaild.fetch.loop import FetchLoop
from muninmaild.fetch.maildir import MAILDIR_UIDVALIDITY, MaildirSource
from muninmaild.records import QueueCounts
from muninmaild.store.repository import Repository

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
