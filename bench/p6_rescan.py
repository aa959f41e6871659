"""P6R: peak memory of `muninmaild --once` rescanning a big mailbox whose UIDVALIDITY changed.

For each first-sync size (10,000 and 100,000 at full size): `--once` syncs and drains the
mailbox (`noop` backend, SQLite), then Dovecot is stopped, the mailbox's index and uidlist are
removed (so it comes back under a new UIDVALIDITY, as after a server's index was rebuilt) and
`--once` runs again on the same queue. That run reads the header of every message, recognises
each by its Message-ID and queues nothing. Its peak RSS (VmHWM) is the figure; the anchor is the
first sync's peak on the same mailbox in the same run. Goal: <= 100 MB at every size, as a
first sync (nothing of a mailbox may be held whole: neither its UIDs nor the messages known).
`MUNINMAIL_BENCH_TREE=<checkout>` measures another tree.
"""

from __future__ import annotations

from bench.context import Context
from bench.core import Goal, ScenarioResult, absolute, median
from bench.mailbox import BenchMailbox
from bench.p6_first_sync import NOOP, FirstSync, measure_once
from bench.procs import daemon_tree
from bench.queue import SqliteProbe
from tests.peers.dovecot import USER, Dovecot


def new_uidvalidity(dovecot: Dovecot) -> None:
    """Without its index and uidlist, Dovecot gives the mailbox a new UIDVALIDITY."""
    dovecot.stop()
    box = dovecot.root / "mail" / USER
    for path in [box / "dovecot-uidlist", *box.glob("dovecot.index*")]:
        path.unlink()
    dovecot.start()


def one_size(ctx: Context, count: int, run: int) -> tuple[FirstSync, FirstSync]:
    box = BenchMailbox(count, seed=6)
    try:
        daemon = ctx.daemon(None, box.account_toml() + NOOP, f"p6-rescan-{count}-{run}")
        first = measure_once(daemon, box)
        before = box.dovecot.uidvalidity()
        new_uidvalidity(box.dovecot)
        if box.dovecot.uidvalidity() == before:
            raise RuntimeError("the mailbox kept its UIDVALIDITY")
        rescan = measure_once(daemon, box)
        probe = SqliteProbe(daemon.db_path)
        rows = probe.number("SELECT COUNT(*) FROM emails")
        probe.close()
        if rows != count or "UIDVALIDITY changed" not in (daemon.state / "once.log").read_text():
            raise RuntimeError(f"the rescan left {rows} rows for {count} messages")
        return first, rescan
    finally:
        box.remove()


def run(ctx: Context) -> ScenarioResult:
    sizes = ctx.size.p6_first_sync
    result = ScenarioResult("P6R", f"memory of a --once UIDVALIDITY rescan of {sizes[-1]:,}")
    for count in sizes:
        firsts: list[float] = []
        rescans: list[float] = []
        seconds: list[float] = []
        for i in range(ctx.runs):
            first, rescan = one_size(ctx, count, i)
            ctx.log(
                f"P6R {count:,}: first sync peak {first.peak_rss_mb:.1f} MB, rescan peak "
                f"{rescan.peak_rss_mb:.1f} MB in {rescan.total_s:.1f} s"
            )
            firsts.append(first.peak_rss_mb)
            rescans.append(rescan.peak_rss_mb)
            seconds.append(rescan.total_s)
        result.rows.append(
            absolute(
                "P6R",
                f"peak RSS, --once rescan of {count:,}",
                "MB",
                rescans,
                Goal("<=", 100, "<= 100 MB"),
                "the first sync before it",
                median(firsts),
                note=f"the rescan took {median(seconds):.1f} s; daemon tree: {daemon_tree()}",
            )
        )
        result.details[str(count)] = {"first_mb": firsts, "rescan_mb": rescans, "s": seconds}
    return result
