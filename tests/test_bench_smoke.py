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

import pytest

from tests.conftest import peer_missing
from tests.peers.dovecot import available as dovecot_available

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = [f"P{i}" for i in range(1, 12)]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_every_scenario_runs_at_smoke_size(tmp_path: Path) -> None:
    if not dovecot_available():
        peer_missing("Dovecot (dovecot-imapd, run as root)")
    command = [sys.executable, "-m", "bench.run", "--size", "smoke", "--runs", "1"]
    done = subprocess.run(
        [*command, "--out", str(tmp_path), "--quiet"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads((tmp_path / "results-smoke.json").read_text())
    assert results["size"] == "smoke"
    assert results["machine"]["cores"] >= 1
    assert sorted(results["scenarios"]) == sorted(SCENARIOS)
    for key, scenario in results["scenarios"].items():
        assert scenario["error"] is None, f"{key}: {scenario['error']}"
        assert scenario["rows"], key
        assert all(row["ours"] is not None for row in scenario["rows"]), key
    table = (tmp_path / "results-smoke.md").read_text()
    assert all(f"| {key} |" in table for key in SCENARIOS)
    assert "| P1 |" in done.stdout  # the table is printed too


@pytest.mark.slow
@pytest.mark.timeout(200)
def test_the_parts_that_also_run_alone_run_at_smoke_size(tmp_path: Path) -> None:
    if not dovecot_available():
        peer_missing("Dovecot (dovecot-imapd, run as root)")
    parts = ["P6S", "P6R"]
    command = [sys.executable, "-m", "bench.run", "--size", "smoke", "--runs", "1"]
    for part in parts:
        command += ["--scenario", part]
    done = subprocess.run(
        [*command, "--out", str(tmp_path), "--quiet"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads((tmp_path / "results-smoke-P6S-P6R.json").read_text())
    assert sorted(results["scenarios"]) == sorted(parts)
    for key, scenario in results["scenarios"].items():
        assert scenario["error"] is None, f"{key}: {scenario['error']}"
        assert all(row["ours"] is not None for row in scenario["rows"]), key
