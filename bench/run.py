"""Run the benchmarks: `python -m bench.run [--scenario P1..P11|all] [--size smoke|full]`.

Each scenario measures our daemon and its anchor in the same runs, on this machine, and reports
medians and per-run ratios; the table goes to standard output and, with every single figure,
to `results.json` and `results.md` (`results-smoke.*` for the smoke size) in `--out`; a run of
some scenarios only writes `results-<size>-<scenarios>.*` instead, so it never overwrites the
results of a whole run.
A scenario that fails is reported as failed and the others still run; the exit status is 1
then, and 0 otherwise, whether goals were met or not: benchmarks report, tests assert.
"""

from __future__ import annotations

import argparse
import compileall
import importlib
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import report
from bench.context import Context
from bench.core import SIZES, ScenarioResult
from bench.procs import SLOW_STOPS

SCENARIOS = {
    "P1": "bench.p1_sync",
    "P2": "bench.p2_drain",
    "P3": "bench.p3_postgres",
    "P4": "bench.p4_model",
    "P5": "bench.p5_latency",
    "P6": "bench.p6_memory",
    "P7": "bench.p7_startup",
    "P8": "bench.p8_status",
    "P9": "bench.p9_live",
    "P10": "bench.p10_requests",
    "P11": "bench.p11_retention",
}
# Parts of a scenario that also run alone, by name only (never in "all": their scenario runs them).
PARTS = {"P6S": "bench.p6_first_sync", "P6R": "bench.p6_rescan"}
MODULES = SCENARIOS | PARTS
HERE = Path(__file__).resolve().parent


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench.run", description="muninmail benchmarks")
    p.add_argument("--scenario", action="append", help="P1..P11 or all (repeatable; default all)")
    p.add_argument("--size", choices=sorted(SIZES), default="full")
    p.add_argument("--runs", type=int, help="runs per scenario (default: 3 full, 1 smoke)")
    p.add_argument("--out", type=Path, default=HERE, help="folder for results.json/.md")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def selected(names: list[str] | None) -> list[str]:
    wanted = [n.upper() for n in names or ["all"]]
    if "ALL" in wanted:
        return list(SCENARIOS)
    unknown = [n for n in wanted if n not in MODULES]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(MODULES)}")
    return [n for n in MODULES if n in wanted]


def run_one(ctx: Context, key: str) -> ScenarioResult:
    start = time.monotonic()
    ctx.log(f"{key}: starting")
    try:
        module = importlib.import_module(MODULES[key])
        scenario: Callable[[Context], ScenarioResult] = module.run
        result = scenario(ctx)
    except Exception as exc:
        traceback.print_exc()
        result = ScenarioResult(key, MODULES[key], error=f"{type(exc).__name__}: {exc}")
    result.seconds = time.monotonic() - start
    ctx.log(f"{key}: done in {result.seconds:.1f} s")
    return result


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    size = SIZES[args.size]
    runs = args.runs or (3 if size.name == "full" else 1)
    keys = selected(args.scenario)
    compile_sources()
    started, start = report.now(), time.monotonic()
    with Context(size, runs, verbose=not args.quiet) as ctx:
        results = [run_one(ctx, key) for key in keys]
    meta = {
        "size": size.name,
        "runs": runs,
        "started": started,
        "seconds": time.monotonic() - start,
        "machine": report.machine(),
        "slow_daemon_stops": list(SLOW_STOPS),
        "complete": keys == list(SCENARIOS),
    }
    json_path, md_path = report.write(results, meta, args.out)
    report.echo(report.markdown(results, meta))
    print(f"\nwritten: {json_path} and {md_path}", file=sys.stderr)
    return 1 if any(r.error for r in results) else 0


def compile_sources() -> None:
    """Bytecode for the project's own modules, as an installed package has.

    The venv holds an editable install, whose modules are compiled on first import and cached
    only where Python may write bytecode; with PYTHONDONTWRITEBYTECODE set (as on some build
    machines) every daemon start and every `muninctl` call would compile them again, which P7
    would count as start-up.
    """
    root = Path(__file__).resolve().parent.parent
    for package in ("muninmaild", "muninctl"):
        compileall.compile_dir(root / package, quiet=1)


if __name__ == "__main__":
    sys.exit(main())
