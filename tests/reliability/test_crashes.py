"""Scenario 1, crashes: 20 SIGKILLs at random points while 2,000 messages are processed.

The daemon is restarted after every kill, on the same SQLite file, as systemd would. The model
is the real SDK against our own server with a little latency and a one-second lease, so that a
kill lands while messages are held and their model calls are running. At the end every message
is completed exactly once: one set of results and to-dos each, one completion's token usage
each, and nothing left in `processing`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.model_server import FakeModelServer
from tests.reliability.conftest import StartDaemon
from tests.reliability.harness import (
    fill_maildir,
    maildir_account,
    numbered_message,
    query,
    status_counts,
    wait_until,
    write_config,
)

TOTAL = 2000
KILLS = 20
SEED = 20260517
LEASE_S = 1
API_KEY = "csk-crash-test-key"


@pytest.fixture
def model() -> Iterator[FakeModelServer]:
    # Budgets far above what the run spends: only latency and kills shape it.
    with FakeModelServer(latency=0.05, tokens_per_minute=10**9, requests_per_day=10**9) as server:
        yield server


def one_per_message(db: Path, table: str) -> bool:
    """Every message has exactly one row in `table`."""
    sql = f"SELECT COUNT(*), COUNT(DISTINCT email_id) FROM {table}"
    return query(db, sql) == [(TOTAL, TOTAL)]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_twenty_sigkills_lose_nothing_and_complete_each_message_once(
    tmp_path: Path, model: FakeModelServer, daemons: StartDaemon
) -> None:
    rng = random.Random(SEED)
    maildir = tmp_path / "Maildir"
    fill_maildir(maildir, (numbered_message(n) for n in range(1, TOTAL + 1)))
    config = write_config(
        tmp_path,
        accounts=[maildir_account("crash", maildir)],
        # A killed daemon's fetch lease holds its Maildir until it runs out: keep that short.
        daemon={"fetch_lease_seconds": 2},
        # A message is tried at most once per daemon run; a few unlucky ones may be held by
        # several kills in a row, which must not make them `failed` here.
        processor={"concurrency": 4, "lease_seconds": LEASE_S, "max_attempts": 50},
        ai={
            "backend": "cerebras",
            "base_url": model.base_url,
            "timeout": 0.8,
            "requests_per_minute": 1_000_000,
            "tokens_per_minute": 1_000_000_000,
            # 2,000 messages would spend the free tier's hour and day: only kills shape the run.
            "requests_per_hour": 0,
            "requests_per_day": 0,
            "tokens_per_hour": 0,
            "tokens_per_day": 0,
        },
    )
    db = tmp_path / "muninmail.db"
    daemon = daemons(tmp_path, config, {"CEREBRAS_API_KEY": API_KEY})

    held_at_kill = []
    for kill in range(KILLS):
        # The first start creates the schema, and a slow machine may need longer than the
        # shortest sleep for that: it is killed only after READY=1, the others at any point.
        before = model.requests
        daemon.start(ready=kill == 0)
        assert daemon.proc is not None
        pid = daemon.proc.pid
        # A random point of its work: once this run has sent its k-th model request, k drawn
        # from 1-150 (a run of about two seconds), or at once, in its start-up, now and then.
        point = 0 if rng.random() < 0.1 else rng.randint(1, 150)
        wait_until(
            lambda: model.requests >= before + point or not daemon.running,  # noqa: B023
            60,
            f"model request {point} of run {kill}",
            daemon.log_tail,
        )
        assert daemon.running, daemon.log_tail()
        daemon.kill()
        # The rows this process held when it died: its claim tokens carry its pid.
        held = query(
            db,
            "SELECT COUNT(*) FROM emails WHERE processing_status = 'processing' "
            "AND claimed_by LIKE ?",
            [f"%:{pid}:%"],
        )
        held_at_kill.append(int(held[0][0]))
    landed = sum(1 for held in held_at_kill if held)
    assert landed >= KILLS * 3 // 4, f"too few kills landed mid-processing: {held_at_kill}"
    assert status_counts(db).get("completed", 0) < TOTAL, "the work ended before the kills did"

    daemon.start()
    daemon.wait_idle(within_s=180)
    assert daemon.stop() == 0, daemon.log_tail()

    assert status_counts(db) == {"completed": TOTAL}
    # Each Maildir file became exactly one row, and no row is still claimed.
    assert query(db, "SELECT COUNT(DISTINCT source_key), COUNT(claimed_by) FROM emails") == [
        (TOTAL, 0)
    ]
    assert one_per_message(db, "results")
    assert one_per_message(db, "todos")  # each message asks for one thing
    # Token usage is written in the completing transaction: one row each means one completion.
    assert one_per_message(db, "token_usage")
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    assert model.requests >= TOTAL
    log = daemon.log_text()
    assert "Traceback" not in log, log[-5000:]
    assert API_KEY not in log
