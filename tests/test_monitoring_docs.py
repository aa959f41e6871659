"""What docs/monitoring.md tells operators to paste is what works: the alert rules pass
`promtool check rules` and fire (and stay quiet) as `promtool test rules` expects, the scrape
configuration passes `promtool check config`, and the textfile timer's units verify."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.peers import promtool

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "monitoring.md"
RULES_TEST = Path(__file__).parent / "data" / "monitoring_rules_test.yml"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", DOC.read_text(), re.M | re.S)


def block(language: str, starting: str) -> str:
    (found,) = [b for b in blocks(language) if b.startswith(starting)]
    return found


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yml"
    path.write_text(block("yaml", "groups:"))
    return path


def test_the_alert_rules_pass_promtool_check_rules(rules: Path) -> None:
    checked = promtool.run("check", "rules", rules)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 3 rules found" in checked.stdout


def test_the_alert_rules_fire_when_they_should_and_only_then(rules: Path) -> None:
    shutil.copy(RULES_TEST, rules.parent / "test.yml")
    tested = promtool.run("test", "rules", "test.yml", cwd=rules.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_scrape_configuration_passes_promtool_check_config(rules: Path, tmp_path: Path) -> None:
    config = tmp_path / "prometheus.yml"
    config.write_text(block("yaml", "scrape_configs:") + "rule_files:\n  - rules.yml\n")
    checked = promtool.run("check", "config", config)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_textfile_timer_units_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("needs systemd-analyze")
    muninctl = str(Path(sys.executable).parent / "muninctl")
    for text in blocks("ini"):
        name = re.match(r"# /etc/systemd/system/(\S+)\n", text)
        assert name is not None, text
        # The documented /usr/bin/muninctl is the installed one; here the test's own.
        (tmp_path / name[1]).write_text(text.replace("/usr/bin/muninctl", muninctl))
    units = sorted(str(p) for p in tmp_path.iterdir())
    assert [Path(u).name for u in units] == [
        "muninmail-textfile.service",
        "muninmail-textfile.timer",
    ]
    verify = subprocess.run(
        ["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60
    )
    # Only complaints about our units count (the host's own units may have their quirks).
    ours = [line for line in verify.stderr.splitlines() if "muninmail-textfile" in line]
    assert verify.returncode == 0 and ours == [], verify.stderr
