"""P9: a new message behind a backlog, from delivery until its row is completed.

A bench Dovecot holds the backlog (`p9_backlog` messages, 2,000 at full size); the daemon
(`cerebras` backend against our model server answering 200 ms after each request arrives,
`[processor] concurrency = 4`, IDLE) starts on it, so its first sync queues the whole backlog,
which drains at about 4 / 0.2 s = 20 messages a second. As soon as the account reports caught
up, a second client APPENDs `p9_probes` new messages one second apart; a probe's figure is its
row's `completed_at` minus the wall time just before its APPEND (one machine, one clock). The
backlog still pending at the first APPEND is reported beside it.

The anchor is computed: claimed oldest first, a probe waits for the whole backlog, 2,000 x
0.2 s / 4 = 100 s. `MUNINMAIL_BENCH_TREE=<checkout>` measures another tree's daemon with the
same script (the figure before a change).
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime

from bench import mailgen
from bench.context import Context
from bench.core import Goal, ScenarioResult, absolute, median
from bench.mailbox import BenchMailbox
from bench.p4_model import cerebras_config
from bench.procs import ModelServer, daemon_tree, wait_until
from bench.queue import SqliteProbe

LATENCY = 0.2
CONCURRENCY = 4
GOAL_S = 3.0


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def _caught_up(status: dict[str, object]) -> bool:
    accounts = status.get("accounts") or []
    assert isinstance(accounts, list)
    return bool(accounts) and all(a.get("state") == "idle" for a in accounts)


def one_run(ctx: Context, run: int) -> tuple[list[float], int]:
    """Each probe's seconds from APPEND to completed, and the backlog pending at the first."""
    box = BenchMailbox(ctx.size.p9_backlog, seed=9)
    server = ModelServer(ctx.folder("p9-model"), LATENCY)
    config = box.account_toml() + cerebras_config(server.base_url, concurrency=CONCURRENCY)
    daemon = ctx.daemon(None, config, "p9")
    probe_sql = "SELECT message_id, completed_at FROM emails WHERE message_id LIKE '<p9r%'"
    try:
        daemon.start()
        daemon.wait_ready()
        wait_until(lambda: _caught_up(daemon.call("status")), 120, 0.02, "the first sync")
        probe = SqliteProbe(daemon.db_path)
        backlog = probe.number("SELECT COUNT(*) FROM emails WHERE processing_status = 'pending'")
        sent: dict[str, float] = {}
        rng = random.Random(900 + run)
        with box.dovecot.client() as imap:
            for i in range(ctx.size.p9_probes):
                raw = mailgen.message(rng, i, prefix=f"p9r{run}")
                message_id = raw.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()
                sent[message_id] = time.time()
                status, _ = imap.append("INBOX", None, None, raw)
                assert status == "OK"
                time.sleep(1.0)

        def probes_done() -> bool:
            rows = probe.query(probe_sql)
            return len(rows) == len(sent) and all(done for _, done in rows)

        wait_until(probes_done, 600, 0.05, "the new messages completed")
        done = dict(probe.query(probe_sql))
        probe.close()
    finally:
        daemon.stop()
        server.stop()
        box.remove()
    return [_stamp(done[m]) - at for m, at in sent.items()], backlog


def run(ctx: Context) -> ScenarioResult:
    per_run: list[float] = []
    backlogs: list[int] = []
    every: list[list[float]] = []
    for i in range(ctx.runs):
        seconds, backlog = one_run(ctx, i)
        every.append(seconds)
        per_run.append(median(seconds) or 0.0)
        backlogs.append(backlog)
        ctx.log(f"P9 run {i + 1}: {', '.join(f'{s:.2f}' for s in seconds)} s, backlog {backlog}")
    n = ctx.size.p9_backlog
    anchor = n * LATENCY / CONCURRENCY
    result = ScenarioResult(
        "P9", f"new mail behind a {n:,}-message backlog, 200 ms model, concurrency {CONCURRENCY}"
    )
    result.rows.append(
        absolute(
            "P9",
            "delivery to completed",
            "s",
            per_run,
            Goal("<=", GOAL_S, f"<= {GOAL_S:g} s"),
            "oldest first (computed)",
            anchor,
            note=f"backlog pending at the first APPEND: median {median(backlogs):.0f}; "
            f"daemon tree: {daemon_tree()}",
        )
    )
    result.details = {
        "backlog": n,
        "probes": ctx.size.p9_probes,
        "seconds_per_probe_runs": every,
        "pending_at_first_append_runs": backlogs,
        "daemon_tree": str(daemon_tree()),
        "anchor_s": anchor,
    }
    return result
