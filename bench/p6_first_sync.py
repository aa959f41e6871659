"""P6, first sync: peak memory and pace of `muninmaild --once` over a new, big mailbox.

A bench Dovecot holds N generated messages (10,000 and 100,000 at full size); `muninmaild
--once` with one IMAP account, the `noop` backend and SQLite starts on an empty queue, syncs
the whole mailbox, drains it and exits. Every 0.1 s the process's VmRSS and VmHWM are read,
and the queue is counted (`SELECT COUNT(*)` and the claimable rows, both index reads). Peak
RSS is the process's VmHWM at its last reading; the sync's pace is N over the time until
every row existed, the drain's is N over the time from the first completed row to the last.
The anchor is the same run at 10,000: memory must not grow with the mailbox (goal <= 100 MB
at every size).
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from typing import IO

from bench.context import Context
from bench.core import Goal, Row, ScenarioResult, absolute, median
from bench.mailbox import BenchMailbox
from bench.procs import REPO, Daemon, daemon_tree, memory_kb, stop_process
from bench.queue import UNFINISHED_SQL, SqliteProbe
from tests.daemon_proc import clean_env

MB = 1024.0
NOOP = '\n[ai]\nbackend = "noop"\n'


@dataclass
class FirstSync:
    messages: int
    peak_rss_mb: float
    drained_rss_mb: float  # the peak when the last row was completed, before the report
    sync_s: float  # start until every row existed
    drain_s: float  # first completed row until the last
    total_s: float  # start until the process ended

    @property
    def sync_rate(self) -> float:
        return self.messages / self.sync_s if self.sync_s else 0.0

    @property
    def drain_rate(self) -> float:
        return self.messages / self.drain_s if self.drain_s else 0.0


def spawn_once(daemon: Daemon, log: IO[bytes]) -> subprocess.Popen[bytes]:
    """`muninmaild --once` of the measured tree, with `daemon`'s configuration."""
    env = clean_env()
    tree = daemon_tree()
    if tree != REPO:
        env["PYTHONPATH"] = str(tree)
    return subprocess.Popen(
        [sys.executable, "-m", "muninmaild", "--config", str(daemon.config), "--once"],
        env=env,
        cwd=tree,
        stdout=subprocess.DEVNULL,  # the report of every message is not what is measured
        stderr=log,
        stdin=subprocess.DEVNULL,
    )


def first_sync(ctx: Context, box: BenchMailbox, run: int) -> FirstSync:
    daemon = ctx.daemon(None, box.account_toml() + NOOP, f"p6-first-{box.count}-{run}")
    return measure_once(daemon, box)


def measure_once(daemon: Daemon, box: BenchMailbox) -> FirstSync:
    log = (daemon.state / "once.log").open("ab")
    start = time.monotonic()
    proc = spawn_once(daemon, log)
    probe = SqliteProbe(daemon.db_path)
    peak = drained_peak = 0
    all_rows = first_done = last_done = 0.0
    try:
        while proc.poll() is None:
            peak = max(peak, memory_kb([proc.pid])[1])
            now = time.monotonic()
            if daemon.db_path.exists():
                rows = probe.number("SELECT COUNT(*) FROM emails")
                unfinished = probe.number(UNFINISHED_SQL)
                if not all_rows and rows >= box.count:
                    all_rows = now
                if not first_done and 0 <= unfinished < max(rows, 1) and rows > 0:
                    first_done = now
                if all_rows and unfinished == 0 and not last_done:
                    last_done, drained_peak = now, peak
            time.sleep(0.1)
    finally:
        stop_process(proc, 600)
        probe.close()
        log.close()
    end = time.monotonic()
    if proc.returncode != 0:
        raise RuntimeError(f"--once exited {proc.returncode}: {daemon.tail()}")
    last_done = last_done or end
    return FirstSync(
        box.count,
        peak / MB,
        (drained_peak or peak) / MB,
        (all_rows or end) - start,
        last_done - (first_done or start),
        end - start,
    )


def run_sizes(ctx: Context) -> list[list[FirstSync]]:
    """Each size's runs, smallest first; each mailbox is made once and removed after."""
    found: list[list[FirstSync]] = []
    for count in ctx.size.p6_first_sync:
        box = BenchMailbox(count, seed=6)
        try:
            runs = []
            for i in range(ctx.runs):
                one = first_sync(ctx, box, i)
                ctx.log(
                    f"P6 first sync of {count:,}: peak {one.peak_rss_mb:.1f} MB "
                    f"({one.drained_rss_mb:.1f} MB drained), sync "
                    f"{one.sync_rate:,.0f}/s, drain {one.drain_rate:,.0f}/s, {one.total_s:.1f} s"
                )
                runs.append(one)
            found.append(runs)
        finally:
            box.remove()
    return found


def rows(ctx: Context, found: list[list[FirstSync]], key: str = "P6") -> list[Row]:
    """Peak RSS, sync and drain pace of each size; the smallest is the anchor of the others."""
    out: list[Row] = []
    base = found[0] if found else []
    for runs in found:
        n = runs[0].messages
        anchor = f"first sync of {base[0].messages:,}" if base else "-"
        peak = absolute(
            key,
            f"peak RSS, --once first sync of {n:,}",
            "MB",
            [r.peak_rss_mb for r in runs],
            Goal("<=", 100, "<= 100 MB"),
            anchor,
            median([r.peak_rss_mb for r in base]),
        )
        drained = median([r.drained_rss_mb for r in runs]) or 0.0
        peak.note = (
            f"{drained:.1f} MB when the last row was completed, before the report that "
            f"--once prints; daemon tree: {daemon_tree()}"
        )
        out.append(peak)
        for label, pace in (("sync", "sync_rate"), ("drain", "drain_rate")):
            out.append(
                absolute(
                    key,
                    f"{label} pace, first sync of {n:,}",
                    "msg/s",
                    [getattr(r, pace) for r in runs],
                    None,
                    anchor,
                    median([getattr(r, pace) for r in base]),
                )
            )
    return out


def run(ctx: Context) -> ScenarioResult:
    """The first-sync part of P6 alone (`--scenario P6S`)."""
    found = run_sizes(ctx)
    sizes = ", ".join(f"{n:,}" for n in ctx.size.p6_first_sync)
    result = ScenarioResult("P6S", f"memory and pace of a --once first sync of {sizes} messages")
    result.rows = rows(ctx, found, "P6S")
    result.details = {
        "runs": [[r.__dict__ for r in runs] for runs in found],
        "daemon_tree": str(daemon_tree()),
    }
    return result
