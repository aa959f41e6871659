"""Profile the daemon inside a scenario's setup with py-spy, and summarise where time goes.

    python -m bench.profile drain-sqlite [--messages 10000] [--seconds 15] [--out DIR]
    python -m bench.profile drain-pg | sync | model

The daemon is set up as in P2 (drain-sqlite), P3 (drain-pg, one daemon), P1 (sync) or P4
(model); once it is resumed, `py-spy record` samples it for `--seconds`: by default only the
thread holding the GIL, which is where a GIL-bound daemon's time goes (`--all-threads` samples
the waiting ones too). The raw collapsed stacks go to DIR/<kind>.txt, and the functions with the
most samples, by their own time and including what they call, are printed.

py-spy is found on PATH or in bench/.venv-anchors (`bench/.venv-anchors/bin/pip install
py-spy`); it is not one of the project's dependencies.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.anchors import ANCHOR_VENV
from bench.context import Context
from bench.core import SIZES
from bench.drain import processor_config
from bench.p4_model import cerebras_config
from bench.procs import Daemon, ModelServer
from bench.queue import drop_database, populate, sqlite_url

KINDS = ("drain-sqlite", "drain-pg", "sync", "model")


def py_spy() -> str:
    found = shutil.which("py-spy") or str(ANCHOR_VENV / "bin" / "py-spy")
    if not Path(found).exists():
        raise SystemExit("py-spy is missing: bench/.venv-anchors/bin/pip install py-spy")
    return found


GIL_ONLY = ["--gil"]  # set by --all-threads to []


def record(daemon: Daemon, seconds: float, out: Path) -> Path:
    command = [py_spy(), "record", "--pid", str(daemon.pid), "--duration", str(int(seconds))]
    command += ["--rate", "200", "--format", "raw", "--output", str(out)]
    command += GIL_ONLY
    subprocess.run(command, check=True, capture_output=True)
    return out


def summarise(stacks: Path, top: int = 25) -> str:
    """The functions with the most samples: by their own time, and including callees."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in stacks.read_text().splitlines():
        path, _, count = line.rpartition(" ")
        if not path:
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in path.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{total} samples", "", "own time:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines += ["", "including callees:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    """`func (path/to/module.py:123)` -> `func (module.py)`: lines differ, functions add up."""
    name, _, where = frame.partition(" (")
    file = where.split(":")[0].rstrip(")")
    parts = Path(file).parts
    package = next((p for p in parts if p in {"muninmaild", "sqlalchemy", "aiosqlite"}), "")
    return f"{name} ({package + '/' if package else ''}{Path(file).name})"


def _resume_and_record(daemon: Daemon, what: str, seconds: float, out: Path) -> Path:
    daemon.start()
    daemon.wait_ready()
    daemon.call("resume", {"what": what})
    time.sleep(0.5)  # past the first claims: the steady state is what matters
    return record(daemon, seconds, out)


def profile(kind: str, messages: int, seconds: float, out: Path) -> Path:
    with Context(SIZES["full"], 1) as ctx:
        target = out / f"{kind}.txt"
        if kind == "drain-sqlite":
            daemon = ctx.daemon(None, processor_config(8), "profile")
            ctx.sqlite_template(messages).copy_to(daemon.db_path)
            return _resume_and_record(daemon, "processor", seconds, target)
        if kind == "drain-pg":
            name, url = ctx.pg_template(messages).copy()
            try:
                daemon = ctx.daemon(url, processor_config(8), "profile")
                return _resume_and_record(daemon, "processor", seconds, target)
            finally:
                daemon.stop()
                drop_database(name)
        if kind == "model":
            server = ModelServer(ctx.root, 0.2)
            try:
                daemon = ctx.daemon(None, cerebras_config(server.base_url), "profile")
                ctx.sqlite_template(messages).copy_to(daemon.db_path)
                return _resume_and_record(daemon, "processor", seconds, target)
            finally:
                daemon.stop()
                server.stop()
        box = ctx.mailbox(messages)
        daemon = ctx.daemon(None, box.account_toml() + '\n[ai]\nbackend = "noop"\n', "profile")
        asyncio.run(populate(sqlite_url(daemon.db_path), [], ["fetcher", "processor"]))
        return _resume_and_record(daemon, "fetcher", seconds, target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.profile", description=__doc__)
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--out", type=Path, default=Path("/tmp/munin-profile"))
    parser.add_argument(
        "--all-threads",
        action="store_true",
        help="sample every thread, waiting ones too (default: only the one holding the GIL)",
    )
    args = parser.parse_args(argv)
    if args.all_threads:
        GIL_ONLY.clear()
    args.out.mkdir(parents=True, exist_ok=True)
    stacks = profile(args.kind, args.messages, args.seconds, args.out)
    print(f"{args.kind}: raw stacks in {stacks}\n")
    print(summarise(stacks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
