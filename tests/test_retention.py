"""Retention removes completed mail older than its window, in batches, and nothing else."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.processing.retention import Retention
from muninmaild.protocol import RequeueFilter
from muninmaild.records import (
    BACKFILL_NOTE,
    Analysis,
    QueueCounts,
    SyncAdvance,
    Todo,
    TokenUsage,
)
from muninmaild.store.repository import Completion, Repository
from tests.clock import Clock
from tests.daemon_proc import clean_env, finish, start, stop, write_config
from tests.factories import new_message
from tests.fakes.notify import NotifyReceiver
from tests.waiting import wait_until

ANSWER = Analysis("Old news.", ("urgent",), (Todo("Reply", "high", None),))
MONITORING = "SELECT processing_status, COUNT(*) FROM emails GROUP BY processing_status"


async def complete(repo: Repository, count: int, token: str, **kw: str) -> list[int]:
    held = await repo.claim_batch(token, count, 60)
    done = [
        Completion(
            m.id, token, ANSWER, TokenUsage(10, 5), "m", cache_key=f"k{m.id}", origin="model"
        )
        for m in held
    ]
    return sorted(await repo.complete_many(done))


async def rows(engine: AsyncEngine, sql: str) -> list[tuple[object, ...]]:
    async with engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(text(sql))]


async def test_old_completed_mail_goes_with_everything_it_owns(any_engine: AsyncEngine) -> None:
    clock = Clock(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    repo = Repository(any_engine, clock)
    await repo.add_messages([new_message(i) for i in range(1, 6)])
    old = await complete(repo, 4, "w#1")
    [failed] = await repo.claim_batch("w#2", 1, 60)
    await repo.fail(failed.id, "w#2", "broken")
    clock.now += timedelta(days=40)
    await repo.add_messages([new_message(9)])
    recent = await complete(repo, 1, "w#3")
    retention = Retention(repo, 30, clock=lambda: clock.now, batch=3, pause_s=0)

    assert await retention.run_once() == 4
    assert await rows(any_engine, "SELECT id FROM emails ORDER BY id") == [
        (failed.id,),
        *[(i,) for i in recent],
    ]
    for table in ("results", "email_flags", "todos", "token_usage", "keyword_writes"):
        left = await rows(
            any_engine,
            f"SELECT COUNT(*) FROM {table} WHERE email_id IN ({','.join(map(str, old))})",
        )
        assert left == [(0,)], table
    assert await rows(any_engine, "SELECT key FROM answer_cache") == [(f"k{recent[0]}",)]
    counted = {str(k): int(str(v)) for k, v in await rows(any_engine, MONITORING)}
    assert await repo.counts() == QueueCounts(completed=1, failed=1) == QueueCounts(**counted)
    assert await repo.token_totals() == TokenUsage(10, 5)
    status = retention.status
    assert (status.last_run_at, status.removed, status.removed_total) == (clock.now, 4, 4)
    assert await retention.run_once() == 0


async def test_a_maildir_message_keeps_a_bare_row_so_its_file_is_not_queued_again(
    any_engine: AsyncEngine,
) -> None:
    clock = Clock(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    repo = Repository(any_engine, clock)
    message = new_message(1)
    await repo.add_messages([message.__class__(**{**message.__dict__, "source_key": "1000.m1"})])
    await complete(repo, 1, "w#1")
    clock.now += timedelta(days=40)
    assert await Retention(repo, 30, clock=lambda: clock.now).run_once() == 1
    assert await rows(any_engine, "SELECT source_key, body_text, completed_at FROM emails") == [
        ("1000.m1", "", None)
    ]
    assert await repo.known_source_keys("work", "INBOX", ["1000.m1"]) == {"1000.m1"}
    assert await Retention(repo, 30, clock=lambda: clock.now).run_once() == 0


async def test_a_bare_row_is_never_requeued_since_it_has_nothing_left_to_send(
    any_engine: AsyncEngine,
) -> None:
    clock = Clock(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    repo = Repository(any_engine, clock)
    message = new_message(1)
    await repo.add_messages([message.__class__(**{**message.__dict__, "source_key": "1000.m1"})])
    [done] = await complete(repo, 1, "w#1")
    clock.now += timedelta(days=40)
    assert await Retention(repo, 30, clock=lambda: clock.now).run_once() == 1
    assert await repo.requeue([done]) == 0
    assert await repo.requeue_matching(RequeueFilter(status="completed")) == 0
    assert await rows(any_engine, "SELECT processing_status FROM emails") == [("completed",)]


async def test_removed_mail_the_backfill_window_left_out_leaves_its_count(
    any_engine: AsyncEngine,
) -> None:
    clock = Clock(datetime(2026, 1, 1, 12, 0, tzinfo=UTC))
    repo = Repository(any_engine, clock)
    old = [new_message(n, skip_reason=BACKFILL_NOTE) for n in (1, 2)]
    await repo.add_messages(old, SyncAdvance("work", "INBOX", 1, 2, 2))
    assert await repo.backfill_left_out() == {"work": 2}
    clock.now += timedelta(days=40)
    assert await Retention(repo, 30, clock=lambda: clock.now).run_once() == 2
    assert await repo.backfill_left_out() == {"work": 0}
    assert await repo.count_requeue(RequeueFilter(skipped=True)) == 0


async def test_retention_off_removes_nothing(repo: Repository) -> None:
    await repo.add_messages([new_message(1)])
    assert await Retention(repo, 0).run_once() == 0


@pytest.mark.integration
def test_the_daemon_applies_retention_at_start_and_status_shows_it(tmp_path: Path) -> None:
    maildir = tmp_path / "mail"
    (maildir / "new").mkdir(parents=True)
    for n in range(3):
        (maildir / "new" / f"{n}.m{n}.host").write_text(f"Subject: {n}\n\nHello {n}.\n")
    config = write_config(tmp_path / "m.toml", tmp_path, maildir=maildir)
    code, _, err = finish(start(config, "--once", env=clean_env()))
    assert code == 0, err
    db = tmp_path / "muninmail.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE emails SET completed_at = '2020-01-01 00:00:00' WHERE uid < 3")
    config.write_text(
        config.read_text().replace("[database]\n", "[database]\nretention_days = 30\n")
    )
    notify = NotifyReceiver(tmp_path / "notify.sock")
    proc = start(config, env=clean_env(NOTIFY_SOCKET=str(notify.path)))
    try:
        assert notify.wait_for("READY=1")
        ctl = [
            str(Path(sys.executable).parent / "muninctl"),
            "--socket",
            str(tmp_path / "control.sock"),
        ]
        found: dict[str, object] = {}

        def ran() -> bool:
            out = subprocess.run([*ctl, "--json", "status"], capture_output=True, text=True)
            found.update(json.loads(out.stdout)["retention"])
            return found["last_run_at"] is not None

        wait_until(ran, what="retention's first pass")
        status = found
        human = subprocess.run([*ctl, "status"], capture_output=True, text=True).stdout
    finally:
        code, _, err = stop(proc)
        notify.close()
    assert code == 0, err
    assert status["days"] == 30 and status["removed"] == 2
    assert "retention" in human and "removed 2" in human
    with sqlite3.connect(db) as conn:
        bare = conn.execute("SELECT COUNT(*) FROM emails WHERE body_text = ''").fetchone()
        results = conn.execute("SELECT COUNT(*) FROM results").fetchone()
    assert bare == (2,) and results == (1,)
