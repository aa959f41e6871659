"""The benchmark scripts keep working: every scenario at its smoke size, once.

Figures are not judged here (benchmarks are never timed assertions); only that each scenario
ran and reported its rows. The anchors (Celery, mbsync) run when they are installed and are
reported as "not run" otherwise; `make bench` installs them (bench/README.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import peer_missing
from tests.peers.dovecot import available as dovecot_available

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = [f"P{i}" for i in range(1, 12)]


def run_smoke(out: Path, scenarios: list[str], timeout_s: float) -> tuple[str, dict[str, Any]]:
    """`bench.run` at smoke size, once: what it printed, and each scenario's results (every
    one of them ran and reported a figure for each row)."""
    if not dovecot_available():
        peer_missing("Dovecot (dovecot-imapd, run as root)")
    command = [sys.executable, "-m", "bench.run", "--size", "smoke", "--runs", "1", "--quiet"]
    command += [arg for key in scenarios for arg in ("--scenario", key)]
    done = subprocess.run(
        [*command, "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    (found,) = out.glob("results-smoke*.json")
    results: dict[str, Any] = json.loads(found.read_text())
    assert results["size"] == "smoke"
    for key, scenario in results["scenarios"].items():
        assert scenario["error"] is None, f"{key}: {scenario['error']}"
        assert scenario["rows"], key
        assert all(row["ours"] is not None for row in scenario["rows"]), key
    return done.stdout, results


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_every_scenario_runs_at_smoke_size(tmp_path: Path) -> None:
    printed, results = run_smoke(tmp_path, ["all"], 280)
    assert results["machine"]["cores"] >= 1
    assert sorted(results["scenarios"]) == sorted(SCENARIOS)
    table = (tmp_path / "results-smoke.md").read_text()
    assert all(f"| {key} |" in table for key in SCENARIOS)
    assert "| P1 |" in printed  # the table is printed too


@pytest.mark.slow
@pytest.mark.timeout(200)
def test_the_parts_that_also_run_alone_run_at_smoke_size(tmp_path: Path) -> None:
    _, results = run_smoke(tmp_path, ["P6S", "P6R"], 180)
    assert sorted(results["scenarios"]) == ["P6R", "P6S"]
