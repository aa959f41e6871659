"""P1: the initial sync of a large mailbox from Dovecot into the queue.

Ours: the daemon starts with its fetcher and processor paused (stored in the database, as
`muninctl pause` would), so start-up is not part of the figure; the clock starts when the
fetcher is resumed over the control socket and stops when every message has its row. Anchors
in the same runs, in rotating order: mbsync (default settings, fsync included) into an empty
Maildir, and the raw floor, one client streaming `UID FETCH` 500 messages at a time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bench.context import Context
from bench.core import Goal, ScenarioResult, compare
from bench.mailbox import BenchMailbox, mbsync, mbsync_available, raw_floor
from bench.procs import wait_until
from bench.queue import ROWS_SQL, SqliteProbe, populate, sqlite_url

TITLE = "initial sync of realistic messages from Dovecot into the queue"
NOOP = '\n[ai]\nbackend = "noop"\n'


def ours(ctx: Context, box: BenchMailbox) -> float:
    daemon = ctx.daemon(None, box.account_toml() + NOOP, "p1")
    asyncio.run(populate(sqlite_url(daemon.db_path), [], ["fetcher", "processor"]))
    daemon.start()
    daemon.wait_ready()
    probe = SqliteProbe(daemon.db_path)
    try:
        start = time.monotonic()
        daemon.call("resume", {"what": "fetcher"})
        done = wait_until(
            lambda: probe.number(ROWS_SQL) >= box.count, 900, 0.02, "every message queued"
        )
        if (counts := probe.counts()) != {"pending": box.count}:
            raise RuntimeError(f"the sync ended with {counts}, not {box.count} pending")
    finally:
        probe.close()
        daemon.stop()
    return done - start


def run(ctx: Context) -> ScenarioResult:
    n = ctx.size.p1_messages
    box = ctx.mailbox(n)
    have_mbsync = mbsync_available()
    contenders: dict[str, Callable[[], float] | None] = {
        "ours": lambda: ours(ctx, box),
        "raw": lambda: raw_floor(box),
        "mbsync": (lambda: mbsync(box, ctx.root / "mbsync")) if have_mbsync else None,
    }
    rates = ctx.alternate("P1", n, contenders)
    result = ScenarioResult("P1", f"{TITLE} ({n:,})")
    result.rows.append(
        compare(
            "P1",
            "sync rate vs mbsync",
            "msg/s",
            rates["ours"],
            "mbsync (defaults, fsync)",
            rates["mbsync"] if have_mbsync else None,
            Goal(">=", 1.5, ">= 1.5x mbsync"),
            "" if have_mbsync else "mbsync is not installed (apt-get install isync)",
        )
    )
    result.rows.append(
        compare(
            "P1",
            "sync rate vs raw floor",
            "msg/s",
            rates["ours"],
            "raw UID FETCH, 500 a batch",
            rates["raw"],
            Goal(">=", 0.10, ">= 0.10x raw floor"),
        )
    )
    result.details = {"messages": n, "rates": rates, "mbsync": have_mbsync}
    return result
