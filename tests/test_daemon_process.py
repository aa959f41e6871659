"""The binary from outside: sd_notify, the watchdog, SIGTERM, --once, --check-config."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_proc import DEMO_MAILDIR, clean_env, finish, start, stop, write_config
from tests.fakes.notify import NotifyReceiver
from tests.waiting import wait_until

pytestmark = pytest.mark.integration  # starts the daemon as a process (tests/kinds.py)

DEMO_COUNT = len(list((DEMO_MAILDIR / "new").iterdir()))


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifyReceiver]:
    receiver = NotifyReceiver(tmp_path / "notify.sock")
    yield receiver
    receiver.close()


def statuses(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT processing_status, COUNT(*) FROM emails GROUP BY processing_status"
        ).fetchall()
    return dict(rows)


def test_ready_watchdog_and_clean_stop(tmp_path: Path, notify: NotifyReceiver) -> None:
    config = write_config(tmp_path / "m.toml", tmp_path)
    env = clean_env(NOTIFY_SOCKET=str(notify.path), WATCHDOG_USEC="400000")
    proc = start(config, env=env)
    db = tmp_path / "muninmail.db"
    try:
        assert notify.wait_for("READY=1"), proc.stderr
        # Pinging from the start, on through the work on the demo mail, and on after it. (The
        # interval is half of WATCHDOG_USEC: test_logs_notify; the longest gap: bench P4.)
        assert notify.times_of("WATCHDOG=1")
        wait_until(lambda: statuses(db) == {"completed": DEMO_COUNT}, what="the demo mail")
        after_work = len(notify.times_of("WATCHDOG=1"))
        wait_until(lambda: len(notify.times_of("WATCHDOG=1")) >= after_work + 3, what="pings")
        ready_status = next(m for m in notify.lines() if m.startswith("STATUS="))
        assert "pending" in ready_status and "completed" in ready_status
    finally:
        code, _, err = stop(proc)
    assert "STOPPING=1" in notify.lines()
    assert code == 0, err
    assert statuses(tmp_path / "muninmail.db") == {"completed": DEMO_COUNT}


def test_watchdog_is_silent_without_watchdog_usec(tmp_path: Path, notify: NotifyReceiver) -> None:
    config = write_config(tmp_path / "m.toml", tmp_path)
    proc = start(config, env=clean_env(NOTIFY_SOCKET=str(notify.path)))
    try:
        assert notify.wait_for("READY=1")
        # A whole life, through the work on the demo mail to the stop: with WATCHDOG_USEC the
        # first ping comes as the loops start.
        db = tmp_path / "muninmail.db"
        wait_until(lambda: statuses(db) == {"completed": DEMO_COUNT}, what="the demo mail")
    finally:
        code, _, _ = stop(proc)
    assert code == 0
    assert "STOPPING=1" in notify.lines()
    assert "WATCHDOG=1" not in notify.lines()


def test_sighup_reloads_and_a_broken_file_keeps_the_old_config(
    tmp_path: Path, notify: NotifyReceiver
) -> None:
    config = write_config(tmp_path / "m.toml", tmp_path)
    proc = start(config, env=clean_env(NOTIFY_SOCKET=str(notify.path)))
    try:
        assert notify.wait_for("READY=1")
        config.write_text(config.read_text().replace('log_level = "info"', 'log_level = "loud"'))
        proc.send_signal(signal.SIGHUP)
        assert notify.wait_for("RELOADING=1")
        # READY=1 again: the reload is over, refused, and the daemon goes on.
        wait_until(lambda: notify.lines().count("READY=1") == 2, what="READY=1 after reload")
        assert proc.poll() is None
    finally:
        code, _, err = stop(proc)
    assert code == 0
    assert "reload refused" in err and "daemon.log_level" in err


def test_once_processes_everything_and_reports(tmp_path: Path) -> None:
    config = write_config(tmp_path / "m.toml", tmp_path)
    proc = start(config, "--once")
    code, out, err = finish(proc)
    assert code == 0, err
    assert f"processed {DEMO_COUNT}: {DEMO_COUNT} completed" in out
    assert "summary:" in out and "todo [" in out
    assert statuses(tmp_path / "muninmail.db") == {"completed": DEMO_COUNT}
    again = start(config, "--once")
    code, out, _ = finish(again)
    assert code == 0 and "processed 0" in out
    assert statuses(tmp_path / "muninmail.db") == {"completed": DEMO_COUNT}


def test_broken_config_exits_78_naming_the_key(tmp_path: Path) -> None:
    config = write_config(tmp_path / "m.toml", tmp_path, extra="[processor]\nconcurrency = 'x'\n")
    code, _, err = finish(start(config))
    assert code == 78
    assert "processor.concurrency" in err
    assert err.count("\n") == 1


def test_check_config_masks_secrets(tmp_path: Path) -> None:
    config = write_config(tmp_path / "m.toml", tmp_path)
    env = clean_env(
        CEREBRAS_API_KEY="csk-supersecret-123",
        DATABASE_URL="postgresql+asyncpg://u:dbpass99@h/db",
    )
    done = subprocess.run(
        [sys.executable, "-m", "muninmaild", "--config", str(config), "--check-config"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "csk-supersecret-123" not in done.stdout and "dbpass99" not in done.stdout
    assert 'backend = "cerebras"' in done.stdout
    assert 'api_key = "********"' in done.stdout
    assert "u:********@h" in done.stdout
