"""P7: from starting the process to READY=1, and `muninctl status` as a whole command.

Start: the daemon as production runs it (one IMAP account on a bench Dovecot, the `cerebras`
backend, an existing SQLite queue whose schema is current), timed from just before the
process is spawned to the READY=1 datagram on our NOTIFY_SOCKET; also with the `rules`
backend, and a first start that has to create the schema. `muninctl status`: the installed
console script against the running daemon, wall time of the whole command, beside a bare
`python -c pass` measured in the same run (the floor of any Python command).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time

from bench import costs
from bench.context import Context
from bench.core import Goal, ScenarioResult, absolute, median
from bench.mailbox import BenchMailbox
from bench.p4_model import cerebras_config
from bench.procs import BIN, ModelServer
from bench.queue import populate, sqlite_url

TITLE = "start to READY=1; muninctl status; single operations"
PINGS = 20
RULES = '\n[ai]\nbackend = "rules"\n'


def starts(ctx: Context, config: str, db: str | None, count: int, name: str) -> list[float]:
    """Seconds to READY=1 of `count` starts on copies of the database file `db`."""
    found = []
    for _ in range(count):
        daemon = ctx.daemon(None, config, name)
        if db is not None:
            shutil.copyfile(db, daemon.db_path)
        daemon.start()
        try:
            found.append(daemon.wait_ready())
            # A SIGTERM during the first sync is not acted on until the sync's end and the
            # next wake-up (reported): let the sync finish before stopping.
            daemon.wait_idle(60)
        finally:
            daemon.stop()
    return found


def timed(command: list[str], count: int) -> list[float]:
    found = []
    env = {k: v for k, v in os.environ.items() if k != "MUNINCTL_SOCKET"}
    for _ in range(count):
        start = time.monotonic()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
        found.append(time.monotonic() - start)
    return found


def status_calls(
    ctx: Context, config: str, db: str, count: int
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Wall times of `muninctl status` and of `python -c pass`, interleaved; then ping round
    trips (ms) on the idle daemon and beside busy clients (bench/costs.py)."""
    daemon = ctx.daemon(None, config, "p7-status")
    shutil.copyfile(db, daemon.db_path)
    daemon.start()
    try:
        daemon.wait_ready()
        daemon.wait_idle(60)
        muninctl = [str(BIN / "muninctl"), "--socket", str(daemon.socket), "status"]
        ours, floor = [], []
        for _ in range(count):
            ours += timed(muninctl, 1)
            floor += timed([sys.executable, "-c", "pass"], 1)
        idle = [costs.ping_ms(daemon.socket) for _ in range(PINGS)]
        with costs.busy_clients(daemon.socket):
            busy = [costs.ping_ms(daemon.socket) for _ in range(PINGS)]
        return ours, floor, idle, busy
    finally:
        daemon.stop()


def run(ctx: Context) -> ScenarioResult:
    k = ctx.size.p7_starts
    box = BenchMailbox(0)
    server = ModelServer(ctx.root, 0.2)
    db = ctx.folder("p7-db") / "queue.db"
    asyncio.run(populate(sqlite_url(db), [], []))
    production = box.account_toml() + cerebras_config(server.base_url, concurrency=4)
    rules = box.account_toml() + RULES
    names = ("cerebras", "rules", "first", "ctl", "py", "ping", "ping_busy", "ping_busy_max")
    figures: dict[str, list[float]] = {k: [] for k in names}
    steps: dict[str, list[float]] = {}
    try:
        for i in range(ctx.runs):
            figures["cerebras"].append(median(starts(ctx, production, str(db), k, "p7")) or 0)
            figures["rules"].append(median(starts(ctx, rules, str(db), k, "p7-rules")) or 0)
            figures["first"] += starts(ctx, production, None, 1, "p7-first")
            ctl, py, ping, busy = status_calls(ctx, production, str(db), ctx.size.p7_status_calls)
            figures["ctl"].append((median(ctl) or 0) * 1000)
            figures["py"].append((median(py) or 0) * 1000)
            figures["ping"].append(median(ping) or 0)
            figures["ping_busy"].append(median(busy) or 0)
            figures["ping_busy_max"].append(max(busy))
            for name, ms in costs.step_costs().items():
                steps.setdefault(name, []).append(ms)
            ctx.log(
                f"P7 run {i + 1}: READY after {figures['cerebras'][-1]:.3f} s (cerebras), "
                f"{figures['rules'][-1]:.3f} s (rules), {figures['first'][-1]:.3f} s (new "
                f"database); muninctl status {figures['ctl'][-1]:.0f} ms"
            )
    finally:
        server.stop()
        box.remove()
    result = ScenarioResult("P7", TITLE)
    result.rows += [
        absolute(
            "P7",
            "start to READY=1, IMAP + cerebras",
            "s",
            figures["cerebras"],
            Goal("<=", 0.8, "<= 0.8 s"),
            note=f"median of {k} starts per run",
        ),
        absolute("P7", "start to READY=1, IMAP + rules", "s", figures["rules"], None),
        absolute("P7", "first start, schema created", "s", figures["first"], None),
        absolute(
            "P7",
            "muninctl status (whole command)",
            "ms",
            figures["ctl"],
            Goal("<=", 150, "<= 150 ms"),
            "python -c pass",
            median(figures["py"]),
            note=f"median of {ctx.size.p7_status_calls} calls per run",
        ),
    ]
    result.rows += [
        absolute("P7", "ping round trip, idle daemon", "ms", figures["ping"], None),
        absolute(
            "P7",
            "ping round trip beside busy clients",
            "ms",
            figures["ping_busy"],
            None,
            "slowest of them",
            median(figures["ping_busy_max"]),
            note=f"{costs.IDLE_CLIENTS} idle connections and a 10 MB line being sent; "
            f"median of {PINGS} pings per run",
        ),
        absolute(
            "P7",
            "parse: a message with a 10 MB attachment",
            "ms",
            steps.get("parse_10mb_attachment", []),
            None,
        ),
        absolute(
            "P7",
            "trim: the slowest pathological body (about 1 MB)",
            "ms",
            steps.get("trim_pathological", []),
            None,
        ),
        absolute(
            "P7", "rules backend: a typical message", "ms", steps.get("rules_typical", []), None
        ),
        absolute(
            "P7",
            "rules backend: a 2.3 MB body (read up to its cap)",
            "ms",
            steps.get("rules_huge_body", []),
            None,
        ),
    ]
    result.details = {"starts_per_run": k, "runs": figures, "steps_ms": steps}
    return result
