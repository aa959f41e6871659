"""Live mail first, through the real binary: a message that arrives after its mailbox caught up
is processed before the backlog of the mailbox's first sync, which drains newest first."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.daemon_proc import DEMO_MAILDIR, start, stop, write_config
from tests.test_imap_daemon import wait_until
from tests.test_muninctl import ctl, ok

pytestmark = pytest.mark.integration  # starts the daemon as a process (tests/kinds.py)

LIVE = "9999999999.M1P1.live"


def rows(db: Path) -> list[tuple[int, str]]:
    """(id, status) of every row."""
    return query(db, "SELECT id, processing_status FROM emails ORDER BY id")


def processed(db: Path) -> list[tuple[int, str]]:
    """(id, file key) of the rows in the order their results were stored: one batch of
    results shares a time, and is taken in the claim's order (live, then newest first)."""
    sql = "SELECT e.id, e.source_key FROM results r JOIN emails e ON e.id = r.email_id"
    return query(db, sql + " ORDER BY r.created_at, e.live DESC, e.id DESC")


def query(db: Path, sql: str) -> list[tuple[int, str]]:
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            return list(conn.execute(sql))
        except sqlite3.OperationalError:  # the schema is not there yet
            return []


def caught_up(sock: Path) -> bool:
    accounts = json.loads(ok(sock, "--json", "status"))["accounts"]
    return all(a["state"] == "idle" for a in accounts)


def test_mail_arriving_after_the_first_sync_is_processed_before_its_backlog(
    tmp_path: Path,
) -> None:
    maildir = tmp_path / "Maildir"
    config = write_config(
        tmp_path / "m.toml", tmp_path, maildir=maildir, extra="[processor]\nconcurrency = 1\n"
    )
    db, sock = tmp_path / "muninmail.db", tmp_path / "control.sock"
    proc = start(config)
    try:
        # No Maildir yet: the fetcher backs off while the processor is paused.
        wait_until(lambda: ctl(sock, "pause", "processor").returncode == 0, 30)
        shutil.copytree(DEMO_MAILDIR, maildir, ignore=shutil.ignore_patterns("README.md"))
        backlog = len(list((maildir / "new").iterdir()))
        ok(sock, "fetch-now")
        wait_until(lambda: len(rows(db)) == backlog)
        wait_until(lambda: caught_up(sock))  # the first sync ended
        some = next((DEMO_MAILDIR / "new").iterdir())
        (maildir / "new" / LIVE).write_bytes(some.read_bytes().replace(b"Message-ID", b"X-Was"))
        ok(sock, "fetch-now")
        wait_until(lambda: len(rows(db)) == backlog + 1)
        ok(sock, "resume", "processor")
        wait_until(lambda: len(processed(db)) == backlog + 1)
    finally:
        code, _, err = stop(proc)
    assert code == 0, err
    order = processed(db)
    assert order[0][1] == LIVE
    assert [i for i, _ in order[1:]] == list(range(backlog, 0, -1))  # then newest first
