"""The metrics of answers that cost no request: cache hits and misses, skipped mail, the cache."""

from __future__ import annotations

from muninmaild.processing.handler import ProcessorStats
from muninmaild.service import exposition
from tests.peers import promtool
from tests.test_metrics import samples, snapshot, status


def test_hits_misses_skips_and_entries_are_exposed_and_pass_promtool() -> None:
    stats = ProcessorStats(completed=9)
    stats.answers.cached, stats.answers.cache_misses = 4, 3
    stats.answers.skipped["automated"] = 2
    model = status()["model"] | {
        "skip": ["automated"],
        "cache": {"entries": 17, "max_entries": 20000, "max_age_days": 7},
    }
    text = exposition.render(snapshot(status(model=model), processed=stats))
    checked = promtool.check_metrics(text)
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stdout
    got = samples(text)
    assert got["muninmail_model_cache_hits_total"] == 4
    assert got["muninmail_model_cache_misses_total"] == 3
    assert got['muninmail_model_skipped_total{reason="automated"}'] == 2
    assert got['muninmail_model_skipped_total{reason="bulk"}'] == 0  # there from the start
    assert got["muninmail_model_cache_entries"] == 17


def test_an_older_status_or_a_cache_that_is_off_reads_as_zero() -> None:
    got = samples(exposition.render(snapshot()))
    assert got["muninmail_model_cache_entries"] == 0
    assert got["muninmail_model_cache_hits_total"] == 0
    off = status()["model"] | {"skip": [], "cache": None}
    got = samples(exposition.render(snapshot(status(model=off))))
    assert got["muninmail_model_cache_entries"] == 0


def test_every_family_is_in_the_table_of_docs_monitoring_md() -> None:
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "monitoring.md").read_text()
    text = exposition.render(snapshot())
    families = re.findall(r"^# TYPE (muninmail_\S+) ", text, re.M)
    assert len(families) == 23
    for name in families:  # counters are named with their _total here
        assert f"| `{name}` |" in doc, name
