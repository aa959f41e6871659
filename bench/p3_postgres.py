"""P3: the drain of P2 on PostgreSQL, with 1, 2 and 4 daemons sharing one database.

Each daemon is its own process with its own control socket and `[processor] concurrency = 8`,
all pointed at a fresh copy of the prepared queue (`CREATE DATABASE ... TEMPLATE`). They start
with the processor paused; each is resumed over its own socket, and the clock runs from the
first resume until the monitoring query counts every row completed. It runs with whatever
the daemon offers for scale-out at the time (batch claims, LISTEN/NOTIFY): no setting of the
benchmark depends on them.
"""

from __future__ import annotations

from bench.context import Context
from bench.core import Goal, Row, ScenarioResult, absolute, compare, median
from bench.drain import drain, processor_config
from bench.queue import PgProbe, drop_database

TITLE = "drain queued messages, no-op model, PostgreSQL"
CONCURRENCY = 8


def ours(ctx: Context, count: int, daemons: int) -> float:
    template = ctx.pg_template(count)
    name, url = template.copy()
    try:
        procs = [
            ctx.daemon(url, processor_config(CONCURRENCY), f"p3-{daemons}") for _ in range(daemons)
        ]
        probe = PgProbe(name)
        try:
            return drain(procs, probe, count)
        finally:
            probe.close()
    finally:
        drop_database(name)


def run(ctx: Context) -> ScenarioResult:
    n = ctx.size.p3_messages
    counts = ctx.size.p3_daemons
    rates: dict[int, list[float]] = {k: [] for k in counts}
    for i in range(ctx.runs):
        turn = list(counts) if i % 2 == 0 else list(reversed(counts))
        for k in turn:
            seconds = ours(ctx, n, k)
            rates[k].append(n / seconds)
            ctx.log(f"P3 run {i + 1}: {k} daemon(s) {n / seconds:,.0f} messages/s")
    result = ScenarioResult("P3", f"{TITLE} ({n:,})")
    one = counts[0]
    for k in counts:
        label = f"{k} daemon{'s' if k > 1 else ''} x concurrency {CONCURRENCY}"
        row: Row
        if k == max(counts):
            row = absolute("P3", label, "msg/s", rates[k], Goal(">=", 2000, ">= 2,000 msg/s"))
            row.anchor_label = f"{one} daemon"
            row.anchor = median(rates[one])
            row.note = _scaling(rates, one, k)
        elif k == one:
            row = absolute("P3", label, "msg/s", rates[k], None)
        else:
            row = compare("P3", label, "msg/s", rates[k], f"{one} daemon", rates[one], None)
        result.rows.append(row)
    result.details = {
        "messages": n,
        "concurrency": CONCURRENCY,
        "rates": {str(k): v for k, v in rates.items()},
    }
    return result


def _scaling(rates: dict[int, list[float]], one: int, k: int) -> str:
    row = compare("P3", "", "", rates[k], "", rates[one], None)
    if row.judged is None:
        return ""
    return f"{k} daemons drain {row.judged:.2f}x as fast as {one} (median of per-run ratios)"
