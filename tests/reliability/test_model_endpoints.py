"""Real model endpoints, through the real binary: the Cerebras API as documented, and
OpenAI-compatible servers as users run them.

The daemon runs with its default `[ai]` and `[processor]` settings unless a test says otherwise;
the fake model server behaves as the Cerebras documentation says (reasoning counted in the
completion's tokens, a daily quota answered by a 429 that says nothing of when it refills, a
retired model answered by 404), or as a local server does.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.model_server import FLAVOURS, FakeModelServer
from tests.reliability.conftest import StartDaemon
from tests.reliability.harness import (
    Daemon,
    fill_maildir,
    maildir_account,
    numbered_message,
    query,
    status_counts,
    wait_until,
    write_config,
)

API_KEY = "csk-endpoints-key-5e1d"
LONG_CHARS = 12_000


@pytest.fixture
def model() -> Iterator[FakeModelServer]:
    # The server's own minute and day are roomy: the daemon's default budget is what counts.
    with FakeModelServer(tokens_per_minute=10**9, requests_per_day=10**9) as server:
        yield server


def long_message(n: int) -> bytes:
    sentence = f"Section {n}: the figures for the region changed again this quarter. "
    body = (sentence * (LONG_CHARS // len(sentence) + 1))[:LONG_CHARS]
    return numbered_message(n, body=body + f"\nPlease send the report {n} by Friday.\n")


def start(
    tmp_path: Path,
    daemons: StartDaemon,
    count: int,
    ai: dict[str, Any],
    *,
    messages: Any = numbered_message,
    account: str = "",
) -> Daemon:
    maildir = tmp_path / "Maildir"
    fill_maildir(maildir, (messages(n) for n in range(1, count + 1)))
    config = write_config(
        tmp_path,
        accounts=[maildir_account("mail", maildir) + account],
        processor={"poll_interval": 0.2},
        ai=ai,
    )
    return daemons(tmp_path, config, {"CEREBRAS_API_KEY": API_KEY}).start()


def hold_of(daemon: Daemon) -> dict[str, Any] | None:
    hold: dict[str, Any] | None = daemon.call("status")["model"]["hold"]
    return hold


def attempts(db: Path) -> list[int]:
    return [row[0] for row in query(db, "SELECT attempts FROM emails ORDER BY id")]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_twelve_thousand_character_mails_complete_with_the_default_settings(
    tmp_path: Path, model: FakeModelServer, daemons: StartDaemon
) -> None:
    count = 12  # what the default free-tier budget lets through in its first minute
    daemon = start(
        tmp_path,
        daemons,
        count,
        {"backend": "cerebras", "base_url": model.base_url},
        messages=long_message,
    )
    daemon.wait_idle(within_s=120)
    assert daemon.stop() == 0, daemon.log_tail()
    db = tmp_path / "muninmail.db"
    assert status_counts(db) == {"completed": count}
    assert attempts(db) == [1] * count
    assert model.length_cuts == 0
    assert model.requests_by_room == {1024: count}
    assert {b["reasoning_effort"] for b in model.last_bodies()} == {"low"}


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_retired_model_fails_nothing_and_everything_completes_after_resume(
    tmp_path: Path, model: FakeModelServer, daemons: StartDaemon
) -> None:
    count = 20
    model.retired_models.add("llama3.1-8b")
    daemon = start(
        tmp_path,
        daemons,
        count,
        {"backend": "cerebras", "base_url": model.base_url, "model": "llama3.1-8b"},
    )
    wait_until(lambda: hold_of(daemon) is not None, 60, "a hold", daemon.log_tail)
    hold = hold_of(daemon)
    assert hold is not None and hold["reason"] == "account"
    assert "HTTP 404" in hold["message"] and "check ai.model ('llama3.1-8b')" in hold["message"]
    db = tmp_path / "muninmail.db"
    wait_until(lambda: set(status_counts(db)) == {"pending"}, 30, "rows given back")
    assert attempts(db) == [0] * count  # kept as they were
    assert query(db, "SELECT COUNT(*) FROM emails WHERE last_error IS NOT NULL") == [(0,)]
    assert model.requests <= 4  # the workers that asked at once; then nothing is claimed
    notify = daemon.notify
    assert notify is not None
    wait_until(
        lambda: any(line.startswith("STATUS=") and "model held" in line for line in notify.lines()),
        20,
        "STATUS= saying why",
    )
    shown = daemon.ctl("status")
    assert "model hold: model held until" in shown.stdout and "HTTP 404" in shown.stdout
    held_lines = [line for line in daemon.log_text().splitlines() if "processing held" in line]
    assert len(held_lines) == 1 and " ERROR " in held_lines[0]  # once, at error priority

    # A reload tries again at once; the model is still gone, so it holds again, quietly.
    asked = model.requests
    assert daemon.ctl("reload").returncode == 0
    wait_until(lambda: model.requests > asked, 30, "a new try after reload")
    wait_until(lambda: hold_of(daemon) is not None, 30, "held again")
    wait_until(lambda: status_counts(db) == {"pending": count}, 30, "rows given back again")
    assert attempts(db) == [0] * count
    asked = model.requests  # SIGHUP (systemctl reload) is the same path
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: model.requests > asked, 30, "a new try after SIGHUP")
    wait_until(lambda: hold_of(daemon) is not None, 30, "held again")
    wait_until(lambda: status_counts(db) == {"pending": count}, 30, "rows given back again")

    model.retired_models.clear()  # the model is back (or ai.model was corrected)
    assert daemon.ctl("resume", "processor").returncode == 0
    daemon.wait_idle(within_s=120)
    assert status_counts(db) == {"completed": count}
    assert hold_of(daemon) is None
    assert attempts(db) == [1] * count
    assert daemon.stop() == 0, daemon.log_tail()
    lines = daemon.log_text().splitlines()
    errors = [line for line in lines if " ERROR " in line and "processing held" in line]
    assert len(errors) == 1, errors  # once at error priority; the second hold is a warning
    assert any(" WARNING " in line and "still held" in line for line in lines)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_spent_daily_quota_is_probed_rarely_and_fails_nothing(
    tmp_path: Path, model: FakeModelServer, daemons: StartDaemon
) -> None:
    count = 20
    model.spend_daily_quota()
    daemon = start(tmp_path, daemons, count, {"backend": "cerebras", "base_url": model.base_url})
    wait_until(lambda: hold_of(daemon) is not None, 60, "a hold", daemon.log_tail)
    hold = hold_of(daemon)
    assert hold is not None and hold["reason"] == "quota"
    assert hold["message"].startswith("model quota spent until ")
    assert "Tokens per day limit exceeded" in hold["message"]
    first_burst = model.requests
    assert 1 <= first_burst <= 4  # the workers that asked before the first 429 came back
    shown = daemon.ctl("status").stdout
    assert "model hold: model quota spent until " in shown and "(tokens per day)" in shown

    # Nothing says when the quota refills: the next probe is minutes away, not a minute.
    status = daemon.call("status")
    assert status["model"]["hold"]["until"] > status["cluster"]["instances"][0]["heartbeat_at"]
    db = tmp_path / "muninmail.db"
    assert set(status_counts(db)) == {"pending"}
    assert attempts(db) == [0] * count

    # Resuming asks at once, with one probe; the quota is still spent, so it holds again.
    assert daemon.ctl("resume", "processor").returncode == 0
    wait_until(lambda: model.requests == first_burst + 1, 30, "one probe")
    wait_until(lambda: hold_of(daemon) is not None, 30, "held again")
    assert model.requests == first_burst + 1
    wait_until(lambda: set(status_counts(db)) == {"pending"}, 30, "rows given back")

    model.reset_day()  # the quota has room again
    assert daemon.ctl("resume", "processor").returncode == 0
    daemon.wait_idle(within_s=120)
    assert status_counts(db) == {"completed": count}
    assert attempts(db) == [1] * count
    assert model.faults.get("daily_quota", 0) == first_burst + 1
    assert daemon.stop() == 0, daemon.log_tail()


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_openai_backend_completes_every_message_against_each_server(
    tmp_path: Path, model: FakeModelServer, daemons: StartDaemon, flavour: str
) -> None:
    count = 10
    model.flavour = flavour
    daemon = start(
        tmp_path,
        daemons,
        count,
        {"backend": "openai", "base_url": model.base_url + "/v1", "model": "qwen3:4b"},
        account="send_body = false\n" if flavour == "local" else "",
    )
    daemon.wait_idle(within_s=120)
    db = tmp_path / "muninmail.db"
    assert status_counts(db) == {"completed": count}
    assert attempts(db) == [1] * count
    shown = daemon.call("show", {"id": 1})["message"]
    assert shown["summary"] == "Summary of: Report 1"
    if flavour == "local":
        assert shown["sent"] == "headers"
        assert "send_body = false" in daemon.ctl("show", "1").stdout
        assert all("Please send the report" not in r.body.decode() for r in model.recorded())
    else:
        assert shown["sent"] == "all"
    assert daemon.stop() == 0, daemon.log_tail()
    assert "Traceback" not in daemon.log_text()
