"""P4: model-bound processing; our model server answers every request in 200 ms.

Ours: the `cerebras` backend (the real SDK) against `bench/model_proc.py` with
`[processor] concurrency = 32` and budgets far above the load, draining a copy of the prepared
queue; the limit is 32 / 0.2 s = 160 messages a second. Anchor in the same runs: Celery with
Redis, threads pool with 32 threads, each task one request to the same server; and the floor:
32 coroutines of a bare aiohttp client posting to the same server, no queue at all
(`bench/model_floor.py`), the best a Python client gets from that server on this machine.

Then the budget: a daemon with `requests_per_minute = 60` and more work queued than that is
left running for a fixed window, and the server's own request log is checked: no 60-second
window may hold more than 60 requests.
"""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
import time
from collections.abc import Callable

from bench import anchors
from bench.context import Context
from bench.core import Goal, Row, ScenarioResult, absolute, compare
from bench.drain import drain, processor_config
from bench.procs import REPO, ModelServer
from bench.queue import SqliteProbe

TITLE = "model-bound: 200 ms model, concurrency 32"
LATENCY = 0.2
CONCURRENCY = 32
LIMIT = CONCURRENCY / LATENCY
BUDGET_RPM = 60
BIG = 1_000_000_000
WATCHDOG_S = 0.1  # the daemon's ping interval in our runs (WATCHDOG_USEC twice that)


def cerebras_config(base_url: str, rpm: int = BIG, concurrency: int = CONCURRENCY) -> str:
    ai = "\n".join(
        [
            'backend = "cerebras"',
            f'base_url = "{base_url}"',
            'api_key = "bench"',
            f"requests_per_minute = {rpm}",
            f"tokens_per_minute = {BIG}",
            # Only the minute's budget is measured: the hour's and the day's are off.
            "requests_per_hour = 0",
            "requests_per_day = 0",
            "tokens_per_hour = 0",
            "tokens_per_day = 0",
            "timeout = 30",
        ]
    )
    return processor_config(concurrency, ai)


def ours(ctx: Context, server: ModelServer, count: int, gaps: list[float]) -> float:
    """Seconds for the drain; the longest gap between watchdog pings in it goes to `gaps`."""
    template = ctx.sqlite_template(count)
    daemon = ctx.daemon(None, cerebras_config(server.base_url), "p4")
    daemon.env["WATCHDOG_USEC"] = str(int(WATCHDOG_S * 2e6))  # a ping every WATCHDOG_S
    template.copy_to(daemon.db_path)
    probe = SqliteProbe(daemon.db_path)
    try:
        return drain([daemon], probe, count)
    finally:
        probe.close()
        pings = daemon.pings
        gaps.append(max((b - a for a, b in itertools.pairwise(pings)), default=0.0) * 1000)


def floor(server: ModelServer, count: int) -> float:
    """Seconds the bare HTTP client needs for `count` answers, in a process of its own."""
    command = [sys.executable, "-m", "bench.model_floor", "--url", server.base_url]
    command += ["--count", str(count), "--concurrency", str(CONCURRENCY)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


def steady_rate(
    readings: list[tuple[float, int]], start: float, end: float, count: int
) -> float | None:
    """Requests a second between the 5 % and the 95 % mark of one run, from the server's log:
    the pace once started, without the start (loading the SDK) and the last wave."""
    before = max((n for t, n in readings if t < start), default=0)
    inside = [(t, n - before) for t, n in readings if start <= t <= end]
    low, high = math.ceil(count * 0.05), math.floor(count * 0.95)
    at_low = next((t for t, n in inside if n >= low), None)
    at_high = next((t for t, n in inside if n >= high), None)
    if at_low is None or at_high is None or at_high <= at_low:
        return None
    return (high - low) / (at_high - at_low)


def ideal(count: int) -> float:
    """The limit for `count` answers: every wave of 32 takes the latency, the last one too."""
    return count / (math.ceil(count / CONCURRENCY) * LATENCY)


def budget_check(ctx: Context, window: float) -> tuple[int, int, float]:
    """(most requests in any 60 s, requests in all, seconds watched) under a 60/min budget."""
    server = ModelServer(ctx.root, LATENCY)
    try:
        template = ctx.sqlite_template(ctx.size.p4_messages)
        daemon = ctx.daemon(None, cerebras_config(server.base_url, BUDGET_RPM), "p4-budget")
        template.copy_to(daemon.db_path)
        daemon.start()
        daemon.wait_ready()
        start = time.time()
        daemon.call("resume", {"what": "processor"})
        time.sleep(window)
        daemon.stop()
    finally:
        readings = server.stop()
    return max_in_window(readings, 60.0), readings[-1][1] if readings else 0, time.time() - start


def max_in_window(readings: list[tuple[float, int]], window: float) -> int:
    """The most requests that arrived within any `window` seconds, from cumulative readings."""
    best, first = 0, 0
    for t, count in readings:
        while readings[first][0] <= t - window:
            first += 1
        before = readings[first - 1][1] if first > 0 else 0
        best = max(best, count - before)
    return best


def run(ctx: Context) -> ScenarioResult:
    n = ctx.size.p4_messages
    missing = anchors.celery_missing()
    server = ModelServer(ctx.root, LATENCY)
    windows: list[tuple[float, float]] = []  # wall clock of each of our runs
    gaps: list[float] = []  # the longest watchdog gap of each of our runs, ms
    readings: list[tuple[float, int]] = []
    try:

        def drain_celery() -> float:
            folder = ctx.folder("p4-celery")
            return anchors.drain(folder, n, "threads", CONCURRENCY, "model", server.base_url)

        def drain_ours() -> float:
            start = time.time()
            try:
                return ours(ctx, server, n, gaps)
            finally:
                windows.append((start, time.time()))

        contenders: dict[str, Callable[[], float] | None] = {
            "ours": drain_ours,
            "celery": drain_celery if missing is None else None,
            "floor": lambda: floor(server, n),
        }
        rates = ctx.alternate("P4", n, contenders, digits=1)
    finally:
        readings = server.stop()
    steady = [rate for s, e in windows if (rate := steady_rate(readings, s, e, n)) is not None]
    window = ctx.size.p4_budget_window_s
    most, sent, watched = budget_check(ctx, window)
    ctx.log(f"P4 budget: {sent} requests in {watched:.1f} s, at most {most} in any 60 s")
    result = ScenarioResult("P4", f"{TITLE} ({n:,})")
    result.rows.append(
        compare(
            "P4",
            "throughput vs the limit",
            "msg/s",
            rates["ours"],
            "limit 32 / 0.2 s",
            [LIMIT] * len(rates["ours"]),
            Goal(">=", 0.99, ">= 0.99x the limit"),
            f"{n:,} answers in waves of {CONCURRENCY} need {math.ceil(n / CONCURRENCY)} waves: "
            f"{ideal(n):.1f} msg/s ({ideal(n) / LIMIT:.3f}x) with no cost at all beside the model",
        )
    )
    if steady:
        result.rows.append(
            compare(
                "P4",
                "steady pace (5 % to 95 % of requests) vs the limit",
                "msg/s",
                steady,
                "limit 32 / 0.2 s",
                [LIMIT] * len(steady),
                None,
                "from the model server's request log: the pace once started, without loading "
                "the SDK at the first message and without the last wave",
            )
        )
    result.rows.append(
        absolute(
            "P4",
            "longest gap between watchdog pings",
            "ms",
            gaps,
            None,
            "the ping interval",
            WATCHDOG_S * 1000,
            "from start to the end of the drain, the SDK's first load included: what a blocked "
            "event loop would add to the interval (systemd kills at twice the interval)",
        )
    )
    result.rows.append(
        compare(
            "P4",
            "throughput vs a bare HTTP client",
            "msg/s",
            rates["ours"],
            f"aiohttp alone, {CONCURRENCY} at once",
            rates["floor"],
            None,
        )
    )
    result.rows.append(
        compare(
            "P4",
            "throughput vs Celery",
            "msg/s",
            rates["ours"],
            f"Celery+Redis, threads {CONCURRENCY}",
            rates["celery"] if missing is None else None,
            None,
            missing or "",
        )
    )
    result.rows.append(
        Row(
            "P4",
            f"requests in any 60 s, budget {BUDGET_RPM}/min, {window:g} s watched",
            float(most),
            "req",
            judged=float(most),
            judged_unit="req",
            goal=Goal("<=", BUDGET_RPM, f"<= {BUDGET_RPM} (the budget)"),
            note=f"{sent} requests in {watched:.1f} s with requests_per_minute = {BUDGET_RPM}",
        )
    )
    result.details = {
        "messages": n,
        "latency_s": LATENCY,
        "concurrency": CONCURRENCY,
        "rates": rates,
        "steady_rates": steady,
        "budget": {"window_s": window, "requests": sent, "max_in_60s": most},
    }
    return result
