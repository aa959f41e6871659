"""The backfill window's rules: the configuration key, the IMAP date, and a first sync that is cut
short going on with the same rule (the end of the first sync is stored with the position)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import pytest

from muninmaild.cli import EX_CONFIG
from muninmaild.config.settings import backfill_window
from muninmaild.errors import ConfigError
from muninmaild.fetch import maildir
from muninmaild.fetch.backfill import Backfill, imap_date
from muninmaild.fetch.maildir import MaildirSource
from muninmaild.records import BACKFILL_NOTE, NewMessage, SyncAdvance
from muninmaild.store.repository import Repository
from tests.daemon_proc import clean_env
from tests.reliability.harness import fill_maildir, numbered_message
from tests.test_config import load

MAILDIR = '[[accounts]]\nname = "m"\nsource = "maildir"\npath = "/m"\n'


@pytest.mark.parametrize(
    ("value", "window"),
    [
        (None, timedelta(days=14)),
        ('"all"', None),
        ('"none"', timedelta(0)),
        ('"30d"', timedelta(days=30)),
        ('"2w"', timedelta(days=14)),
    ],
)
def test_backfill_takes_days_weeks_all_or_none(
    tmp_path: Path, value: str | None, window: timedelta | None
) -> None:
    extra = f"backfill = {value}\n" if value else ""
    (account,) = load(tmp_path, MAILDIR + extra).accounts
    assert account.backfill_window == window


@pytest.mark.parametrize("value", ['"14"', '"fortnight"', '"-3d"', '"3 days"', "14", '""'])
def test_a_bad_backfill_is_an_error_naming_the_key(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, MAILDIR + f"backfill = {value}\n")
    assert caught.value.key == "accounts[0].backfill"


def test_the_daemon_refuses_a_bad_backfill_with_exit_78(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(MAILDIR + 'backfill = "forever"\n')
    done = subprocess.run(
        [sys.executable, "-m", "muninmaild", "--config", str(config), "--check-config"],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == EX_CONFIG
    assert "accounts[0].backfill" in done.stderr and "'forever'" in done.stderr


def test_imap_dates_are_english_whatever_the_locale() -> None:
    assert imap_date(date(2026, 5, 6)) == "6-May-2026"
    assert imap_date(date(2026, 12, 31)) == "31-Dec-2026"
    assert backfill_window("all") is None


class _CutShort:
    """The repository, failing the second batch it is given: a first sync cut short."""

    def __init__(self, repo: Repository) -> None:
        self._repo = repo
        self.batches = 0
        self.sync_state = repo.sync_state
        self.known_source_keys = repo.known_source_keys
        self.mailbox_synced = repo.mailbox_synced

    async def add_messages(
        self, batch: Sequence[NewMessage], advance: SyncAdvance | None = None
    ) -> int:
        self.batches += 1
        if self.batches == 2:
            raise OSError("the disk went away")
        return await self._repo.add_messages(batch, advance)


async def test_a_first_sync_cut_short_goes_on_with_the_same_rule(
    tmp_path: Path, repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(maildir, "BATCH", 1)
    fill_maildir(tmp_path, [numbered_message(n) for n in (1, 2, 3)])
    _age(tmp_path)
    window = Backfill(timedelta(days=14))
    with pytest.raises(OSError, match="disk"):
        await MaildirSource("m", tmp_path, ("INBOX",), 10**6, backfill=window).sync(_CutShort(repo))
    assert (await repo.sync_state("m", "INBOX")).backfill_uid == 3
    # Later mail (UID 4, old file time too) is not weighed; the rest of the first sync is.
    fill_maildir(tmp_path, [numbered_message(4)], first=10)
    _age(tmp_path)
    assert await MaildirSource("m", tmp_path, ("INBOX",), 10**6, backfill=window).sync(repo) == 3
    found = await repo.results_for([1, 2, 3, 4])
    assert [r["skip_reason"] for r in found] == [BACKFILL_NOTE] * 3 + [None]
    assert await repo.backfill_left_out() == {"m": 3}


def _age(root: Path) -> None:
    old = time.time() - 30 * 86400
    for file in (root / "new").iterdir():
        os.utime(file, (old, old))
