"""Scenario 6, the database's disk fills up: a clear error, no damage, and recovery by itself.

The SQLite file lives on a small tmpfs of its own. Once the daemon has processed a first batch
of mail, a ballast file takes nearly all the space left, and more mail arrives than fits. The
daemon must say so in words, in its log and in `muninctl status`, keep answering, and leave the
file intact (`PRAGMA integrity_check`). When the ballast is removed it catches up without being
told: every message queued and completed.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import peer_missing
from tests.reliability.conftest import StartDaemon
from tests.reliability.harness import (
    Daemon,
    fill_maildir,
    maildir_account,
    numbered_message,
    query,
    status_counts,
    wait_until,
    write_config,
)

TMPFS_BYTES = 12 * 1024 * 1024
FIRST = 50  # processed before the disk fills
MORE = 100  # queued before the disk fills, processed after
EXTRA = 100  # arrives while the disk is full
FULL = "database error: database or disk is full"  # SQLite's own words


def big_message(n: int) -> bytes:
    """About 22 KB each: what the ballast leaves free holds only a few."""
    body = "Please read the minutes.\n" + "All work and no play. " * 1000 + "\n"
    return numbered_message(n, body=body)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of 12 MB, unmounted afterwards."""
    if os.geteuid() != 0:
        peer_missing("a tmpfs mount (needs root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES},mode=0755", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        peer_missing(f"a tmpfs mount ({done.stderr.strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path, leave_bytes: int) -> Path:
    """A ballast file that leaves about `leave_bytes` free."""
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    ballast = disk / "ballast"
    with ballast.open("wb") as fh:
        fh.write(b"\0" * max(0, free - leave_bytes))
    return ballast


def errors_shown(daemon: Daemon) -> bool:
    """The database's last failure, and the account's fetch failing on it, both in `status`.

    Not `failing` itself: a small write (a lease renewed) may still fit now and then.
    """
    status = daemon.call("status")
    accounts = [a["last_error"] for a in status["accounts"]]
    return bool(status["database"]["last_error"] == FULL and accounts == [FULL])


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_full_disk_is_reported_and_processing_resumes_once_space_is_freed(
    tmp_path: Path, small_disk: Path, daemons: StartDaemon
) -> None:
    maildir = tmp_path / "Maildir"
    fill_maildir(maildir, (numbered_message(n) for n in range(1, FIRST + 1)))
    db = small_disk / "muninmail.db"
    config = write_config(
        tmp_path,
        accounts=[maildir_account("full", maildir)],
        db_url=f"sqlite+aiosqlite:///{db}",
        # A short lease: answers that could not be stored come back soon after space is freed.
        processor={"lease_seconds": 10},
        ai={"backend": "rules", "timeout": 5},
    )
    daemon = daemons(tmp_path, config).start()
    daemon.wait_idle(within_s=60)

    # Mail waits in the queue while the disk fills; then more arrives, and processing resumes.
    daemon.call("pause", {"what": "processor"})
    fill_maildir(maildir, (big_message(n) for n in range(FIRST + 1, FIRST + MORE + 1)), FIRST)
    wait_until(lambda: status_counts(db).get("pending") == MORE, 30, "mail queued")
    ballast = fill(small_disk, 64 * 1024)
    total = FIRST + MORE + EXTRA
    fill_maildir(
        maildir, (big_message(n) for n in range(FIRST + MORE + 1, total + 1)), FIRST + MORE
    )
    daemon.call("resume", {"what": "processor"})
    wait_until(lambda: errors_shown(daemon), 30, "status saying the database fails")

    shown = [line for line in daemon.ctl("status").stdout.splitlines() if "database:" in line]
    assert len(shown) == 1 and FULL in shown[0], shown
    assert daemon.call("ping") == {"pong": True}
    assert query(db, "PRAGMA integrity_check") == [("ok",)]

    ballast.unlink()  # and nobody tells the daemon
    wait_until(lambda: status_counts(db) == {"completed": total}, 150, "catching up by itself")
    status = daemon.call("status")
    assert not status["database"]["failing"] and status["database"]["last_error_at"]
    # Caught up and without an error; it may be in one of its syncs (every second) just now.
    [account] = status["accounts"]
    assert account["state"] in {"idle", "syncing"} and account["last_error"] is None, account
    assert daemon.stop() == 0, daemon.log_tail()

    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    assert query(db, "SELECT COUNT(*), COUNT(DISTINCT email_id) FROM results") == [(total, total)]
    log = daemon.log_text()
    assert f"fetch failed: {FULL}" in log
    # The log says why in words, and quotes no mail: no statement parameters in it.
    assert "All work and no play" not in log and "[parameters:" not in log
