"""Prometheus's own checker, `promtool` (Debian package `prometheus`), for the exposition
text and the rules the documentation gives."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import peer_missing

PROMTOOL = "promtool"


def need() -> str:
    found = shutil.which(PROMTOOL)
    if found is None:
        peer_missing("promtool (Debian package prometheus)")
        raise AssertionError("unreachable")
    return found


def check_metrics(text: str) -> subprocess.CompletedProcess[str]:
    """`promtool check metrics` on the exposition: exit 0 and no complaint, or its words."""
    return subprocess.run(
        [need(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [need(), *map(str, args)], capture_output=True, text=True, timeout=60, cwd=cwd
    )
