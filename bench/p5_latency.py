"""P5: from a message APPENDed to Dovecot until its row is completed (rules backend, IDLE).

The daemon watches an empty mailbox with IDLE; a second client APPENDs realistic messages one
at a time, each with its own Message-ID, and a gap longer than a message's whole trip, so each
is measured on its own as sparse real mail would be (with shorter gaps several messages share
one push and one fetch, which flatters the figure). A message's latency is its row's
`completed_at` minus the wall time just before its APPEND went out (one machine, one clock);
`created_at` tells the part spent before the row existed (push, fetch, parse, insert).

Beside the daemon, a raw IDLE client on the same mailbox records when Dovecot itself announced
each message (`* N EXISTS`): the server's own push delay is the floor under any IDLE client.
The anchor of the issue is computed, not run: the original design polled every 300 s, so mail
arriving at random waited half a period on average, p50 150 s and p99 297 s.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bench import mailgen
from bench.context import Context
from bench.core import Goal, ScenarioResult, absolute, median, percentile
from bench.mailbox import BenchMailbox, IdleWatcher
from bench.procs import wait_until
from bench.queue import SqliteProbe

TITLE = "APPEND to completed row, rules backend, IDLE"
POLL_S = 300.0
RULES = '\n[ai]\nbackend = "rules"\n'


@dataclass
class Latencies:
    completed: list[float] = field(default_factory=list)
    queued: list[float] = field(default_factory=list)  # until the row existed
    pushed: list[float] = field(default_factory=list)  # until Dovecot's EXISTS (the floor)
    after_push: list[float] = field(default_factory=list)  # our part: completed - pushed


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def append_all(ctx: Context, box: BenchMailbox, run: int) -> tuple[list[str], list[float]]:
    """APPEND the run's messages one at a time; their Message-IDs and send times."""
    rng = random.Random(100 + run)
    ids, sent = [], []
    with box.dovecot.client() as imap:
        for i in range(ctx.size.p5_messages):
            raw = mailgen.message(rng, i, prefix=f"p5r{run}")
            ids.append(raw.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode())
            sent.append(time.time())
            status, _ = imap.append("INBOX", None, None, raw)
            assert status == "OK"
            time.sleep(ctx.size.p5_gap_s)
    return ids, sent


def one_run(ctx: Context, box: BenchMailbox, run: int) -> Latencies:
    count = ctx.size.p5_messages
    daemon = ctx.daemon(None, box.account_toml() + RULES, "p5")
    daemon.start()
    daemon.wait_ready()
    daemon.wait_idle(60)
    time.sleep(0.5)  # the fetcher enters IDLE just after it reports caught up
    watcher = IdleWatcher(box)
    probe = SqliteProbe(daemon.db_path)
    mine = (
        "SELECT message_id, created_at, completed_at FROM emails "
        f"WHERE message_id LIKE '<p5r{run}-%'"
    )

    def all_completed() -> bool:
        rows = probe.query(mine)
        return len(rows) >= count and all(completed for _, _, completed in rows)

    try:
        ids, sent = append_all(ctx, box, run)
        wait_until(all_completed, 120, 0.05, "every appended message completed")
        rows = {m: (created, completed) for m, created, completed in probe.query(mine)}
    finally:
        watcher.close()
        probe.close()
        daemon.stop()
        empty(box)
    out = Latencies()
    for i, (message_id, at) in enumerate(zip(ids, sent, strict=True)):
        created, completed = rows[message_id]
        out.completed.append(_stamp(completed) - at)
        out.queued.append(_stamp(created) - at)
        if i + 1 in watcher.pushes:
            out.pushed.append(watcher.pushes[i + 1] - at)
            out.after_push.append(out.completed[-1] - out.pushed[-1])
    return out


def empty(box: BenchMailbox) -> None:
    """Expunge everything, so the next run's daemon starts on an empty mailbox again."""
    with box.dovecot.client() as imap:
        imap.select("INBOX")
        imap.store("1:*", "+FLAGS.SILENT", r"(\Deleted)")
        imap.expunge()


def run(ctx: Context) -> ScenarioResult:
    box = BenchMailbox(0)
    runs: list[Latencies] = []
    try:
        for i in range(ctx.runs):
            found = one_run(ctx, box, i)
            runs.append(found)
            ctx.log(
                f"P5 run {i + 1}: p50 {percentile(found.completed, 50):.3f} s, "
                f"p99 {percentile(found.completed, 99):.3f} s, Dovecot's push p50 "
                f"{percentile(found.pushed, 50):.3f} s"
            )
    finally:
        box.remove()
    return _result(ctx, runs)


def _per_run(runs: list[Latencies], kind: str, q: float) -> list[float]:
    return [percentile(getattr(r, kind), q) for r in runs]


def _result(ctx: Context, runs: list[Latencies]) -> ScenarioResult:
    n = ctx.size.p5_messages
    result = ScenarioResult("P5", f"{TITLE} ({n} messages, {ctx.size.p5_gap_s:g} s apart)")
    push50, push99 = median(_per_run(runs, "pushed", 50)), median(_per_run(runs, "pushed", 99))
    floor = f"Dovecot's own IDLE push: p50 {push50 or 0:.3f} s, p99 {push99 or 0:.3f} s"
    for q, goal in ((50, Goal("<=", 0.5, "p50 <= 0.5 s")), (99, Goal("<=", 1.0, "p99 <= 1 s"))):
        row = absolute(
            "P5",
            f"latency p{q}",
            "s",
            _per_run(runs, "completed", q),
            goal,
            "polling every 300 s (computed)",
            POLL_S / 2 if q == 50 else POLL_S * q / 100,
        )
        row.note = (
            floor
            if q == 50
            else (
                f"rows existed after p50 {median(_per_run(runs, 'queued', 50)) or 0:.3f} s; "
                "300 s polling would wait 150 s on average"
            )
        )
        result.rows.append(row)
    result.rows.append(
        absolute(
            "P5",
            "p50 after Dovecot's push (our part)",
            "s",
            _per_run(runs, "after_push", 50),
            None,
            note="Dovecot announces new mail to IDLE clients 0.5 s after it arrives "
            "(NOTIFY_DELAY_MSECS in its mailbox watch); the raw IDLE client beside the "
            "daemon measures that floor in the same run",
        )
    )
    pooled = [x for r in runs for x in r.completed]
    result.details = {
        "messages": n,
        "gap_s": ctx.size.p5_gap_s,
        "completed_p50_runs": _per_run(runs, "completed", 50),
        "completed_p99_runs": _per_run(runs, "completed", 99),
        "row_created_p50_runs": _per_run(runs, "queued", 50),
        "dovecot_push_p50_runs": _per_run(runs, "pushed", 50),
        "dovecot_push_p99_runs": _per_run(runs, "pushed", 99),
        "after_push_p50_runs": _per_run(runs, "after_push", 50),
        "after_push_p99_runs": _per_run(runs, "after_push", 99),
        "pooled_p50": percentile(pooled, 50),
        "pooled_p99": percentile(pooled, 99),
        "pooled_max": max(pooled) if pooled else None,
        "anchor": {"poll_s": POLL_S, "mean_s": POLL_S / 2, "p50_s": POLL_S / 2},
    }
    return result
