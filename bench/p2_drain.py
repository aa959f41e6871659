"""P2: draining a queue of realistic messages with the no-op model, on SQLite.

Ours: the daemon (`[ai] backend = "noop"`, `[processor] concurrency = 8`) on a copy of the
prepared queue; from `resume processor` until every row is completed. The journal mode is read
from the database file afterwards: WAL must still be on. Anchor in the same runs: Celery 5 with
Redis, threads pool with 8 threads, the same number of no-op tasks queued before the worker
starts; from its first task's start to its last task's end.
"""

from __future__ import annotations

from bench import anchors
from bench.context import Context
from bench.core import Goal, Row, ScenarioResult, compare
from bench.drain import drain, processor_config
from bench.queue import SqliteProbe

TITLE = "drain queued messages, no-op model, SQLite"
CONCURRENCY = 8


def ours(ctx: Context, count: int) -> tuple[float, str]:
    template = ctx.sqlite_template(count)
    daemon = ctx.daemon(None, processor_config(CONCURRENCY), "p2")
    template.copy_to(daemon.db_path)
    probe = SqliteProbe(daemon.db_path)
    try:
        seconds = drain([daemon], probe, count)
        journal = str(probe.query("PRAGMA journal_mode")[0][0])
    finally:
        probe.close()
    return seconds, journal


def run(ctx: Context) -> ScenarioResult:
    n = ctx.size.p2_messages
    missing = anchors.celery_missing()
    journals: list[str] = []

    def drain_ours() -> float:
        seconds, journal = ours(ctx, n)
        journals.append(journal)
        return seconds

    def drain_celery() -> float:
        return anchors.drain(ctx.folder("p2-celery"), n, "threads", CONCURRENCY)

    contenders = {"ours": drain_ours, "celery": drain_celery if missing is None else None}
    rates = ctx.alternate("P2", n, contenders)
    result = ScenarioResult("P2", f"{TITLE} ({n:,})")
    result.rows.append(
        compare(
            "P2",
            f"drain rate (concurrency {CONCURRENCY})",
            "msg/s",
            rates["ours"],
            f"Celery+Redis, threads {CONCURRENCY}",
            rates["celery"] if missing is None else None,
            Goal(">=", 2.0, ">= 2x Celery+Redis"),
            missing or "",
        )
    )
    wal = all(j.lower() == "wal" for j in journals) and bool(journals)
    result.rows.append(
        Row(
            "P2",
            "SQLite journal mode after the runs",
            1.0 if wal else 0.0,
            "",
            judged=1.0 if wal else 0.0,
            judged_unit="",
            goal=Goal(">=", 1.0, "WAL kept"),
            shown=", ".join(sorted(set(journals))) or "-",
        )
    )
    result.details = {"messages": n, "concurrency": CONCURRENCY, "rates": rates}
    return result
