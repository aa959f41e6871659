"""A daemon killed with SIGKILL mid-message: the message is taken over after its lease and
completed once, through the real cerebras-cloud-sdk against our own model server."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_proc import clean_env, finish, start, stop, write_config
from tests.fakes.model_server import FakeModelServer
from tests.fakes.notify import NotifyReceiver

pytestmark = pytest.mark.integration  # starts the daemon as a process (tests/kinds.py)

MESSAGE = (
    "From: Ann <ann@example.com>\nTo: robin@example.com\nSubject: Report {n}\n"
    "Message-ID: <report-{n}@example.com>\n\nPlease send the report {n} by Friday.\n"
)
LEASE = 4


@pytest.fixture
def model() -> Iterator[FakeModelServer]:
    with FakeModelServer(latency=1.5) as server:
        yield server


def make_maildir(root: Path, count: int) -> Path:
    (root / "new").mkdir(parents=True)
    for n in range(1, count + 1):
        (root / "new" / f"{1000 + n}.m{n}.host").write_text(MESSAGE.format(n=n))
    return root


def query(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.slow
def crash_config(
    tmp_path: Path, maildir: Path, model: FakeModelServer, *, lease_s: float, timeout_s: float
) -> Path:
    """One worker on the model server, with the lease and model timeout given."""
    extra = f"""
[processor]
concurrency = 1
lease_seconds = {lease_s}
poll_interval = 0.2

[ai]
backend = "cerebras"
base_url = "{model.base_url}"
timeout = {timeout_s}
"""
    return write_config(tmp_path / "m.toml", tmp_path, maildir=maildir, extra=extra)


def kill_at_first_request(config: Path, env: dict[str, str], model: FakeModelServer) -> str:
    """Start a daemon, SIGKILL it once its first model request arrived; its stderr."""
    daemon = start(config, env=env)
    deadline = time.monotonic() + 20
    while model.requests < 1 and time.monotonic() < deadline and daemon.poll() is None:
        time.sleep(0.05)
    daemon.send_signal(signal.SIGKILL)
    _, err = daemon.communicate(timeout=10)
    return str(err)


def test_sigkilled_message_is_completed_once_after_its_lease(
    tmp_path: Path, model: FakeModelServer
) -> None:
    maildir = make_maildir(tmp_path / "mail", 3)
    config = crash_config(tmp_path, maildir, model, lease_s=LEASE, timeout_s=3)
    env = clean_env(CEREBRAS_API_KEY="csk-test-key")
    db = tmp_path / "muninmail.db"

    err = kill_at_first_request(config, env, model)
    assert model.requests == 1, f"the first model request never arrived: {err}"
    # The claim takes the newest first: message 3 is the one under the model call.
    [(status, claimed_by)] = query(
        db, "SELECT processing_status, claimed_by FROM emails WHERE id = 3"
    )
    assert status == "processing" and claimed_by

    notify = NotifyReceiver(tmp_path / "notify.sock")
    second = start(config, env=env | {"NOTIFY_SOCKET": str(notify.path)})
    try:
        assert notify.wait_for("READY=1")
        deadline = time.monotonic() + LEASE + 20
        while time.monotonic() < deadline:
            done = query(db, "SELECT COUNT(*) FROM emails WHERE processing_status = 'completed'")
            if done == [(3,)]:
                break
            time.sleep(0.2)
    finally:
        code, _, err = stop(second)
        notify.close()
    assert code == 0, err
    final = query(db, "SELECT id, processing_status, attempts FROM emails ORDER BY id")
    assert [row[:2] for row in final] == [(1, "completed"), (2, "completed"), (3, "completed")]
    # The killed message was tried again; a row claimed ahead for the worker may have been too.
    assert final[2][2] == 2
    assert all(attempts in (1, 2) for _, _, attempts in final[:2])
    assert query(db, "SELECT COUNT(*), COUNT(DISTINCT email_id) FROM results") == [(3, 3)]
    todos = query(db, "SELECT email_id, COUNT(*) FROM todos GROUP BY email_id ORDER BY email_id")
    assert todos == [(1, 1), (2, 1), (3, 1)]
    assert "csk-test-key" not in err


@pytest.mark.slow
def test_sigterm_releases_in_flight_work_after_the_drain_timeout(
    tmp_path: Path, model: FakeModelServer
) -> None:
    model.set_latency(30)
    maildir = make_maildir(tmp_path / "mail", 1)
    extra = f"""
[processor]
concurrency = 1

[ai]
backend = "cerebras"
base_url = "{model.base_url}"
timeout = 60
"""
    config = write_config(tmp_path / "m.toml", tmp_path, maildir=maildir, extra=extra)
    config.write_text(config.read_text().replace("drain_timeout = 5", "drain_timeout = 0.5"))
    db = tmp_path / "muninmail.db"
    notify = NotifyReceiver(tmp_path / "notify.sock")
    proc = start(config, env=clean_env(CEREBRAS_API_KEY="k", NOTIFY_SOCKET=str(notify.path)))
    try:
        deadline = time.monotonic() + 20
        while model.requests < 1 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert model.requests == 1
        code, _, err = stop(proc)
        # Stopped with the model's answer still 30 s away: it did not wait for the call.
        assert model.answered == 0
    finally:
        notify.close()
    assert code == 0, err
    assert "message 1 released to the queue unprocessed" in err
    assert "STOPPING=1" in notify.lines()
    assert query(db, "SELECT processing_status, attempts, claimed_by FROM emails") == [
        ("pending", 0, None)
    ]


@pytest.mark.slow
def test_run_once_rescues_a_killed_instance_of_this_boot_at_once(
    tmp_path: Path, model: FakeModelServer
) -> None:
    """Its rows come back without waiting for their lease (an hour here) and its mailbox
    (leased for two minutes) is fetched by the run-once, new mail included."""
    maildir = make_maildir(tmp_path / "mail", 3)
    config = crash_config(tmp_path, maildir, model, lease_s=3600, timeout_s=3000)
    env = clean_env(CEREBRAS_API_KEY="csk-test-key")
    db = tmp_path / "muninmail.db"
    kill_at_first_request(config, env, model)
    crashed = query(db, "SELECT id FROM emails WHERE processing_status = 'processing'")
    assert crashed
    [(holder,)] = query(db, "SELECT holder FROM fetch_leases")
    (maildir / "new" / "2000.m4.host").write_text(MESSAGE.format(n=4))  # arrived meanwhile

    model.set_latency(0.01)
    code, out, err = finish(start(config, "--once", env=env))
    assert code == 0, err
    assert "released" in err and "took its mailboxes" in err
    final = query(db, "SELECT uid, processing_status, attempts, last_error FROM emails")
    assert {status for _, status, _, _ in final} == {"completed"} and len(final) == 4, final
    assert "processing 0," in out
    held = ", ".join(str(row[0]) for row in crashed)
    # The crash's attempt is counted, as a lease's end counts it.
    assert query(db, f"SELECT DISTINCT attempts FROM emails WHERE id IN ({held})") == [(2,)]
    assert query(db, f"SELECT stopped_at IS NOT NULL FROM instances WHERE id = '{holder}'") == [
        (1,)
    ]
