"""P6: the daemon's memory (VmRSS), idle and with a full queue being worked.

Ours, configured as in production: one IMAP account (a bench Dovecot, IDLE), the `cerebras`
backend (the real SDK) against our model server with 200 ms answers, SQLite.
Idle: on an existing queue whose schema is current (as after every start but the first),
after READY=1 and `wait-idle`, the highest VmRSS over a short while; the same after a first
start, which creates the schema, is shown beside it. Loaded: a queue of
N pending messages, the processor resumed with concurrency 32, VmRSS sampled every 0.1 s
while thousands are still pending; the peak (VmHWM) is kept in the details.

Anchor in the same runs: a Celery worker (threads, and prefork with 2 processes) summed over
its processes, plus the machine's redis-server, idle and then with N model tasks queued.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from bench import anchors, p6_first_sync
from bench.context import Context
from bench.core import Goal, ScenarioResult, absolute, compare, median
from bench.mailbox import BenchMailbox
from bench.p4_model import cerebras_config
from bench.procs import ModelServer
from bench.queue import SqliteProbe, populate, sqlite_url

TITLE = "memory (VmRSS): IMAP account, cerebras backend, SQLite"
MB = 1024.0
IDLE_SAMPLE_S = 1.0


def sample(read: Callable[[], tuple[int, int]], seconds: float) -> tuple[float, float]:
    """Highest VmRSS and last VmHWM, in MB, over `seconds`."""
    best = hwm = 0
    deadline = time.monotonic() + seconds
    while True:
        rss, hwm = read()
        best = max(best, rss)
        if time.monotonic() >= deadline:
            return best / MB, hwm / MB
        time.sleep(0.1)


def ours_idle(
    ctx: Context, box: BenchMailbox, server: ModelServer, db: Path | None
) -> tuple[float, float]:
    """Idle on a copy of `db` (its schema current), or on a new database when `db` is None."""
    daemon = ctx.daemon(None, box.account_toml() + cerebras_config(server.base_url), "p6-idle")
    if db is not None:
        shutil.copyfile(db, daemon.db_path)
    daemon.start()
    try:
        daemon.wait_ready()
        daemon.wait_idle(60)
        time.sleep(1.0)
        return sample(daemon.memory_kb, IDLE_SAMPLE_S)
    finally:
        daemon.stop()


def ours_loaded(ctx: Context, box: BenchMailbox, server: ModelServer) -> tuple[float, float, int]:
    """(max VmRSS, VmHWM, pending at the end of sampling)."""
    count = ctx.size.p6_pending
    config = box.account_toml() + cerebras_config(server.base_url)
    daemon = ctx.daemon(None, config, "p6-loaded")
    ctx.sqlite_template(count).copy_to(daemon.db_path)
    probe = SqliteProbe(daemon.db_path)
    daemon.start()
    try:
        daemon.wait_ready()
        daemon.call("resume", {"what": "processor"})
        rss, hwm = sample(daemon.memory_kb, ctx.size.p6_sample_s)
        pending = probe.counts().get("pending", 0)
    finally:
        daemon.stop()
        probe.close()
    return rss, hwm, pending


def celery(ctx: Context, server: ModelServer, pool: str, concurrency: int) -> tuple[float, float]:
    """(idle MB, loaded MB) of a Celery worker plus redis-server."""
    anchors.enqueue("noop", 0)  # an empty queue first
    worker = anchors.CeleryWorker(ctx.folder(f"p6-celery-{pool}"), pool, concurrency)

    def both() -> tuple[int, int]:
        rss, hwm = worker.memory_kb()
        redis_rss, redis_hwm = anchors.redis_memory_kb()
        return rss + redis_rss, hwm + redis_hwm

    try:
        worker.wait_ready()
        time.sleep(1.0)
        idle, _ = sample(both, IDLE_SAMPLE_S)
        anchors.enqueue("model", ctx.size.p6_pending, server.base_url)
        loaded, _ = sample(both, ctx.size.p6_sample_s)
    finally:
        worker.stop()
        anchors.enqueue("noop", 0)
    return idle, loaded


def run(ctx: Context) -> ScenarioResult:
    missing = anchors.celery_missing()
    box = BenchMailbox(0)
    server = ModelServer(ctx.root, 0.2)
    db = ctx.folder("p6-db") / "queue.db"
    asyncio.run(populate(sqlite_url(db), [], []))
    keys = ("idle", "first", "loaded", "hwm", "pending", "t_idle", "t_loaded", "p_idle", "p_loaded")
    figures: dict[str, list[float]] = {k: [] for k in keys}
    try:
        for i in range(ctx.runs):
            idle, _ = ours_idle(ctx, box, server, db)
            figures["first"].append(ours_idle(ctx, box, server, None)[0])
            loaded, hwm, pending = ours_loaded(ctx, box, server)
            figures["idle"].append(idle)
            figures["loaded"].append(loaded)
            figures["hwm"].append(hwm)
            figures["pending"].append(pending)
            if missing is None:
                t_idle, t_loaded = celery(ctx, server, "threads", 32)
                p_idle, p_loaded = celery(ctx, server, "prefork", 2)
                figures["t_idle"] += [t_idle]
                figures["t_loaded"] += [t_loaded]
                figures["p_idle"] += [p_idle]
                figures["p_loaded"] += [p_loaded]
            ctx.log(
                f"P6 run {i + 1}: ours {idle:.1f} MB idle, {loaded:.1f} MB loaded "
                f"({pending} pending); Celery threads "
                f"{figures['t_idle'][-1] if figures['t_idle'] else 0:.1f} / "
                f"{figures['t_loaded'][-1] if figures['t_loaded'] else 0:.1f} MB"
            )
    finally:
        server.stop()
        box.remove()
    result = _result(ctx, figures, missing)
    first = p6_first_sync.run_sizes(ctx)
    result.rows += p6_first_sync.rows(ctx, first)
    result.details["first_sync"] = [[r.__dict__ for r in runs] for runs in first]
    return result


def _result(ctx: Context, f: dict[str, list[float]], missing: str | None) -> ScenarioResult:
    n = ctx.size.p6_pending
    result = ScenarioResult("P6", f"{TITLE} ({n:,} pending)")
    threads = "Celery threads 32 + redis-server"
    prefork = "Celery prefork 2 + redis-server"
    anchor = None if missing else f["t_idle"]
    result.rows.append(
        absolute(
            "P6",
            "RSS idle",
            "MB",
            f["idle"],
            Goal("<=", 60, "<= 60 MB"),
            threads,
            _med(anchor),
            missing or "",
        )
    )
    result.rows.append(
        absolute(
            "P6",
            "RSS idle after a first start",
            "MB",
            f["first"],
            None,
            note="a first start creates the schema with Alembic in a child process "
            "(python -m muninmaild.store.migrate), so the daemon never loads it",
        )
    )
    loaded_anchor = None if missing else f["t_loaded"]
    row = absolute(
        "P6",
        f"RSS with {n:,} pending",
        "MB",
        f["loaded"],
        Goal("<=", 100, "<= 100 MB"),
        threads,
        _med(loaded_anchor),
    )
    pending = sorted(f["pending"])
    row.note = (
        f"sampled while {pending[0]:,} to {pending[-1]:,} were still pending; "
        f"peak VmHWM {max(f['hwm']):.1f} MB"
    )
    result.rows.append(row)
    if missing is None:
        result.rows.append(
            compare("P6", "RSS idle vs prefork", "MB", f["idle"], prefork, f["p_idle"], None)
        )
        result.rows.append(
            compare("P6", "RSS loaded vs prefork", "MB", f["loaded"], prefork, f["p_loaded"], None)
        )
    result.details = {"pending": n, "runs_mb": f}
    return result


def _med(values: list[float] | None) -> float | None:
    return median(values) if values is not None else None
