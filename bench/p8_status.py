"""P8: `muninctl status` and an idle daemon's CPU with 10,000 to 1,000,000 rows in `emails`.

In `bench.run` (`--scenario P8`): SQLite and PostgreSQL at `p8_rows` (10,000, 100,000 and
1,000,000 at full size), once per size whatever `--runs` says (each figure is itself the median
of `CALLS` commands), the anchor being the same at the smallest size: a cost that does not grow
with the table reads 1x. `MUNINMAIL_BENCH_TREE=<checkout>` measures another tree.
Alone: `python -m bench.p8_status [--tree DIR] [--sizes 10000,100000] [--db sqlite,pg]`.
`--tree` runs another checkout's daemon and client (its own `muninmaild`/`muninctl` packages on
PYTHONPATH, this venv's libraries), so the same measurement runs before and after a change.
The schema is made by that tree's own migrations; the rows are bulk INSERTs (completed, with a
result each; a hundred pending and ten failed), then the daemon starts (an empty Maildir
account) and, once READY=1, `muninctl status` runs as a whole command `CALLS` times (median),
and the daemon's CPU time (/proc/PID/stat) is read over `IDLE_S` seconds of idling.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

from bench.context import Context
from bench.core import Goal, ScenarioResult, absolute
from bench.procs import daemon_tree

CALLS = 7
IDLE_S = 30.0
REPO = Path(__file__).resolve().parent.parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
ROWS_SQL = """
INSERT INTO emails (account, mailbox, uidvalidity, uid, subject, from_addr, to_addrs, cc_addrs,
  size, headers, body_text, attachments, defects, has_calendar, processing_status, attempts,
  next_attempt_at, created_at, updated_at, completed_at)
SELECT 'bench', 'INBOX', 1, n, 'Subject ' || n, 'a@example.com', 'b@example.com', '', 100,
  '{{}}', 'body', '[]', '[]', {false},
  CASE WHEN n % 10000 = 1 THEN 'failed' WHEN n > {count} - 100 THEN 'pending'
       ELSE 'completed' END,
  1, {ts}, {ts}, {ts}, {ts}
FROM {series}
"""
RESULTS_SQL = """
INSERT INTO results (email_id, summary, model, created_at)
SELECT id, 'A summary.', 'm', created_at FROM emails WHERE processing_status = 'completed'
"""


def env_for(tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAP_", "CEREBRAS_"))}
    for key in ("DATABASE_URL", "NOTIFY_SOCKET", "WATCHDOG_USEC"):
        env.pop(key, None)
    env["PYTHONPATH"] = str(tree)
    return env


def migrate(tree: Path, url: str) -> None:
    code = (
        "import asyncio, sys; from muninmaild.store.engine import create_engine; "
        "from muninmaild.store.migrate import migrate\n"
        "async def m():\n e = create_engine(sys.argv[1]); await migrate(e); await e.dispose()\n"
        "asyncio.run(m())"
    )
    subprocess.run([sys.executable, "-c", code, url], check=True, env=env_for(tree), cwd=tree)


def fill_sqlite(path: Path, count: int) -> None:
    series = (
        "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s "
        f"WHERE n < {count}) SELECT n FROM s)"
    )
    with sqlite3.connect(path) as conn:
        conn.execute(
            ROWS_SQL.format(false=0, count=count, ts="'2026-01-01 00:00:00'", series=series)
        )
        conn.execute(RESULTS_SQL)


async def fill_pg(name: str, count: int) -> None:
    conn = await asyncpg.connect(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}")
    try:
        series = f"generate_series(1, {count}) AS s(n)"
        await conn.execute(
            ROWS_SQL.format(
                false="false", count=count, ts="'2026-01-01 00:00:00+00'", series=series
            )
        )
        await conn.execute(RESULTS_SQL)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(tree: Path, url: str, state: Path, idle_s: float = IDLE_S) -> tuple[float, float]:
    """(median ms of `muninctl status`, idle CPU in percent of a core)."""
    (state / "mail" / "new").mkdir(parents=True, exist_ok=True)
    config = state / "m.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{state}"\ncontrol_socket = "{state}/c.sock"\n'
        f'[database]\nurl = "{url}"\n[[accounts]]\nname = "b"\nsource = "maildir"\n'
        f'path = "{state}/mail"\npoll_interval = 60\n'
    )
    env = env_for(tree)
    log = (state / "daemon.log").open("ab")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "muninmaild", "--config", str(config)],
        env=env,
        cwd=tree,
        stdout=log,
        stderr=log,
    )
    ctl = [
        sys.executable,
        "-c",
        "from muninctl.cli import main; main()",
        "--socket",
        f"{state}/c.sock",
        "status",
    ]
    try:
        deadline = time.monotonic() + 120
        while subprocess.run(ctl, env=env, cwd=tree, capture_output=True).returncode != 0:
            if time.monotonic() > deadline or daemon.poll() is not None:
                raise RuntimeError((state / "daemon.log").read_text()[-2000:])
            time.sleep(0.2)
        times = []
        for _ in range(CALLS):
            start = time.monotonic()
            subprocess.run(ctl, env=env, cwd=tree, check=True, capture_output=True)
            times.append((time.monotonic() - start) * 1000)
        before, at = cpu_s(daemon.pid), time.monotonic()
        time.sleep(idle_s)
        idle = (cpu_s(daemon.pid) - before) / (time.monotonic() - at) * 100
        return statistics.median(times), idle
    finally:
        daemon.terminate()
        daemon.wait(30)


def one(tree: Path, db: str, count: int, idle_s: float = IDLE_S) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="munin-p8-") as tmp:
        state = Path(tmp)
        if db == "sqlite":
            url = f"sqlite+aiosqlite:///{state}/q.db"
            migrate(tree, url)
            fill_sqlite(state / "q.db", count)
            return measure(tree, url, state, idle_s)

        name = f"munin_p8_{os.getpid()}"
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
        try:
            url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
            migrate(tree, url)
            asyncio.run(fill_pg(name, count))
            return measure(tree, url, state, idle_s)
        finally:
            asyncio.run(_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


STATUS_GOAL_MS = 150.0
IDLE_GOAL_PCT = 1.0


def run(ctx: Context) -> ScenarioResult:
    sizes = ctx.size.p8_rows
    tree = daemon_tree()
    result = ScenarioResult(
        "P8", f"`muninctl status` and idle CPU at {sizes[0]:,} to {sizes[-1]:,} rows"
    )
    for db in ("sqlite", "pg"):
        figures = {}
        for count in sizes:
            figures[count] = one(tree, db, count, ctx.size.p8_idle_s)
            ms, idle = figures[count]
            ctx.log(f"P8 {db} {count:,} rows: status {ms:.0f} ms, idle CPU {idle:.2f} %")
        base_ms, base_idle = figures[sizes[0]]
        for count, (ms, idle) in figures.items():
            anchor = f"the same at {sizes[0]:,}"
            result.rows.append(
                absolute(
                    "P8",
                    f"{db}, {count:,} rows: muninctl status",
                    "ms",
                    [ms],
                    Goal("<=", STATUS_GOAL_MS, f"<= {STATUS_GOAL_MS:g} ms"),
                    anchor,
                    base_ms,
                    note=f"{ms / base_ms:.2f}x the smallest size",
                )
            )
            result.rows.append(
                absolute(
                    "P8",
                    f"{db}, {count:,} rows: idle daemon CPU",
                    "%",
                    [idle],
                    Goal("<=", IDLE_GOAL_PCT, f"<= {IDLE_GOAL_PCT:g} %"),
                    anchor,
                    base_idle,
                )
            )
        result.details[db] = {
            str(n): {"status_ms": f[0], "idle_cpu_pct": f[1]} for n, f in figures.items()
        }
    result.details["daemon_tree"] = str(tree)
    return result


def main() -> None:
    p = argparse.ArgumentParser(prog="bench.p8_status")
    p.add_argument("--tree", type=Path, default=REPO)
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--db", default="sqlite,pg")
    args = p.parse_args()
    for db in args.db.split(","):
        for count in (int(n) for n in args.sizes.split(",")):
            ms, idle = one(args.tree.resolve(), db, count)
            print(
                f"P8 {db} {count:>9,} rows: muninctl status {ms:6.0f} ms, idle CPU {idle:5.2f} %",
                flush=True,
            )


if __name__ == "__main__":
    main()
