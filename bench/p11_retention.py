"""P11: how long retention makes claims and `status` wait, with 1,000,000 old rows (SQLite).

In `bench.run` (`--scenario P11`; N = `p11_rows`, 1,000,000 at full size, once whatever `--runs`
says), or alone (`python -m bench.p11_retention [--rows N]`): a queue of N completed messages
(with results) older than the window and 2,000 pending, filled with bulk INSERTs
(bench/p8_status.py); then one retention pass (`processing/retention.py`, its batches as the
daemon runs them) while, in the same event loop, a claimer takes one row at a time and a thread
with its own connection runs the queries of `status` (the counts, the waiting mail) in a loop.
Reported: the pass's time, the longest claim and the longest status read during it, beside the
same figures with no retention running (the anchor).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.context import Context
from bench.core import Goal, ScenarioResult, absolute
from bench.p8_status import REPO, fill_sqlite, migrate
from muninmaild.processing.retention import Retention
from muninmaild.store.engine import create_engine
from muninmaild.store.repository import Repository

STATUS_SQL = (
    "SELECT name, value FROM counters",
    "SELECT COUNT(*), MIN(created_at) FROM emails "
    "WHERE processing_status IN ('pending', 'processing') AND processing_status = 'pending'",
)


def status_reads(db: Path, stop_at: list[float]) -> float:
    """The longest status read until `stop_at[0]` is set (another thread)."""
    longest = 0.0
    with sqlite3.connect(db) as conn:
        while not stop_at:
            start = time.monotonic()
            for sql in STATUS_SQL:
                conn.execute(sql).fetchall()
            longest = max(longest, time.monotonic() - start)
            time.sleep(0.005)
    return longest


async def claims(repo: Repository, done: asyncio.Event) -> float:
    longest = 0.0
    n = 0
    while not done.is_set():
        start = time.monotonic()
        found = await repo.claim_batch(f"bench#{n}", 1, 600)
        longest = max(longest, time.monotonic() - start)
        for m in found:
            await repo.release(m.id, f"bench#{n}")
        n += 1
        await asyncio.sleep(0.002)
    return longest


async def measure(db: Path, retain: bool) -> tuple[float, float, float]:
    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    repo = Repository(engine)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    retention = Retention(repo, 30, clock=lambda: now)
    stop_at: list[float] = []
    reader = asyncio.get_running_loop().run_in_executor(None, status_reads, db, stop_at)
    done = asyncio.Event()
    claimer = asyncio.create_task(claims(repo, done))
    start = time.monotonic()
    if retain:
        await retention.run_once()
    else:
        await asyncio.sleep(5)
    took = time.monotonic() - start
    done.set()
    stop_at.append(1)
    longest_claim, longest_read = await claimer, await reader
    await engine.dispose()
    return took, longest_claim * 1000, longest_read * 1000


GOAL_MS = 100.0


def both(rows: int) -> dict[bool, tuple[float, float, float]]:
    """(seconds, longest claim ms, longest status read ms) without and with a retention pass."""
    with tempfile.TemporaryDirectory(prefix="munin-p11-") as tmp:
        db = Path(tmp) / "q.db"
        migrate(REPO, f"sqlite+aiosqlite:///{db}")
        fill_sqlite(db, rows)
        with sqlite3.connect(db) as conn:  # 2,000 to claim beside the old mail
            conn.execute(
                "UPDATE emails SET processing_status = 'pending', completed_at = NULL "
                "WHERE uid > (SELECT MAX(uid) FROM emails) - 2000"
            )
        return {retain: asyncio.run(measure(db, retain)) for retain in (False, True)}


def run(ctx: Context) -> ScenarioResult:
    rows = ctx.size.p11_rows
    figures = both(rows)
    took, claim_ms, read_ms = figures[True]
    _, claim_base, read_base = figures[False]
    result = ScenarioResult("P11", f"retention's pass over {rows:,} old rows (SQLite)")
    goal = Goal("<=", GOAL_MS, f"<= {GOAL_MS:g} ms")
    anchor = "no retention running"
    note = f"the pass took {took:.1f} s"
    result.rows += [
        absolute(
            "P11", "longest claim during the pass", "ms", [claim_ms], goal, anchor, claim_base, note
        ),
        absolute("P11", "longest status read during it", "ms", [read_ms], goal, anchor, read_base),
    ]
    result.details = {
        "rows": rows,
        "pass_s": took,
        "figures": {str(k): v for k, v in figures.items()},
    }
    return result


def main() -> None:
    p = argparse.ArgumentParser(prog="bench.p11_retention")
    p.add_argument("--rows", type=int, default=1_000_000)
    args = p.parse_args()
    for retain, (took, claim_ms, read_ms) in both(args.rows).items():
        what = "retention pass" if retain else "no retention  "
        print(
            f"P11 {args.rows:,} rows, {what}: {took:6.1f} s, longest claim {claim_ms:5.1f} ms, "
            f"longest status read {read_ms:5.1f} ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
