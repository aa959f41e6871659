"""The backfill window through the real binary: Dovecot (old INTERNALDATEs by APPEND) and Maildir
(old file times). Mail older than the window at the first sync is completed without the model
and shows why; mail that arrives later is analysed whatever its age; `status` counts it."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from muninmaild.records import BACKFILL_NOTE
from tests.peers.dovecot import Dovecot
from tests.reliability.harness import (
    Daemon,
    fill_maildir,
    imap_account,
    maildir_account,
    numbered_message,
    query,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
LONG_AGO = datetime.now(UTC) - timedelta(days=60)


def ctl_json(daemon: Daemon, *args: str) -> Any:
    done = daemon.ctl("--json", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def listed(daemon: Daemon) -> dict[str, dict[str, Any]]:
    """Every message by subject, with its details."""
    done = daemon.ctl("--json", "list", "--details", "--limit", "1000")
    assert done.returncode == 0, done.stderr
    return {m["subject"]: m for m in map(json.loads, done.stdout.splitlines())}


def backfill(daemon: Daemon) -> dict[str, Any]:
    return {a["name"]: a["backfill"] for a in ctl_json(daemon, "status")["accounts"]}


def left_out(found: dict[str, Any]) -> bool:
    return bool(
        found["status"] == "completed"
        and found["skip_reason"] == BACKFILL_NOTE
        and found["summary"] is None
    )


def test_imap_first_sync_leaves_old_mail_out_and_later_mail_in(
    dovecot: Dovecot, tmp_path: Path
) -> None:
    dovecot.append([numbered_message(n) for n in (1, 2, 3)], arrived=LONG_AGO)
    dovecot.append([numbered_message(n) for n in (4, 5)])
    dovecot.create("Lists")
    account = imap_account(dovecot, "mail") + 'mailboxes = ["INBOX", "Lists"]\n'
    daemon = Daemon(tmp_path, write_config(tmp_path, accounts=[account], ai={"backend": "rules"}))
    daemon.start()
    try:
        daemon.wait_idle()
        found = listed(daemon)
        assert [s for s in sorted(found) if left_out(found[s])] == [
            f"Report {n}" for n in (1, 2, 3)
        ]
        assert all(found[f"Report {n}"]["summary"] for n in (4, 5))
        assert backfill(daemon) == {"mail": {"window": "14d", "left_out": 3}}
        shown = daemon.ctl("show", str(found["Report 1"]["id"])).stdout
        assert f"note:    {BACKFILL_NOTE}" in shown
        # No model request for them: no tokens, no result row.
        ids = [found[f"Report {n}"]["id"] for n in (1, 2, 3)]
        marks = ",".join("?" * len(ids))
        assert (
            query(
                tmp_path / "muninmail.db", f"SELECT * FROM results WHERE email_id IN ({marks})", ids
            )
            == []
        )

        # Arrived after the first sync: analysed, however old its INTERNALDATE.
        dovecot.append([numbered_message(6)], arrived=LONG_AGO)
        daemon.ctl("fetch-now")
        daemon.wait_idle()
        assert (
            listed(daemon)["Report 6"]["summary"]
            and listed(daemon)["Report 6"]["skip_reason"] is None
        )

        # A recreated mailbox (new UIDVALIDITY) is weighed again, as a first sync.
        with dovecot.client() as imap:
            assert imap.delete("Lists")[0] == "OK" and imap.create("Lists")[0] == "OK"
        dovecot.append([numbered_message(7)], "Lists", arrived=LONG_AGO)
        dovecot.append([numbered_message(8)], "Lists")
        daemon.ctl("fetch-now")
        daemon.wait_idle()
        found = listed(daemon)
        assert left_out(found["Report 7"]) and found["Report 8"]["summary"]
        assert backfill(daemon)["mail"]["left_out"] == 4
    finally:
        daemon.stop()


def age(path: Path, days: int) -> None:
    for file in (path / "new").iterdir():
        when = time.time() - days * 86400
        os.utime(file, (when, when))


def test_maildir_windows_all_none_and_days_by_file_time(tmp_path: Path) -> None:
    accounts = []
    for name, window in (("recent", "14d"), ("everything", "all"), ("nothing", "none")):
        root = tmp_path / name
        fill_maildir(root, [numbered_message(n) for n in (1, 2)])
        age(root, 30)
        fill_maildir(root, [numbered_message(3)], first=10)
        accounts.append(maildir_account(name, root) + f'backfill = "{window}"\n')
    config = write_config(tmp_path, accounts=accounts, ai={"backend": "rules"})
    daemon = Daemon(tmp_path, config).start()
    try:
        daemon.wait_idle()
        assert backfill(daemon) == {
            "recent": {"window": "14d", "left_out": 2},
            "everything": {"window": "all", "left_out": 0},
            "nothing": {"window": "none", "left_out": 3},
        }
        rows = query(
            tmp_path / "muninmail.db",
            "SELECT account, subject, skip_reason FROM emails ORDER BY account, subject",
        )
        skipped = {(a, s) for a, s, reason in rows if reason == BACKFILL_NOTE}
        assert skipped == {
            ("recent", "Report 1"),
            ("recent", "Report 2"),
            ("nothing", "Report 1"),
            ("nothing", "Report 2"),
            ("nothing", "Report 3"),
        }
        table = daemon.ctl("status").stdout
        assert "14d, 2 left out" in table and "none, 3 left out" in table

        # Delivered later with an old file time: analysed, even under "none".
        for name in ("recent", "nothing"):
            fill_maildir(tmp_path / name, [numbered_message(4)], first=20)
            age(tmp_path / name, 30)
        daemon.ctl("fetch-now")
        daemon.wait_idle()
        late = query(
            tmp_path / "muninmail.db",
            "SELECT skip_reason FROM emails WHERE subject = 'Report 4'",
        )
        assert late == [(None,), (None,)]
    finally:
        daemon.stop()
