"""Answers without a model request, through the real binary and the real SDK against the fake
model server: `ai.skip` for bulk and automated mail, and the answer cache, which survives a
restart and is shared by two daemons on one PostgreSQL."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from muninmaild.store.engine import create_engine
from tests.fakes.model_server import FakeModelServer
from tests.peers import promtool
from tests.reliability.conftest import StartDaemon
from tests.reliability.harness import (
    Daemon,
    fill_maildir,
    maildir_account,
    query,
    wait_until,
    write_config,
)

API_KEY = "csk-answers-key-77a1"
DATE = "Fri, 27 Nov 2026 09:00:00 +0000"


@pytest.fixture
def model() -> Iterator[FakeModelServer]:
    with FakeModelServer(tokens_per_minute=10**9, requests_per_day=10**9) as server:
        yield server


def mail(message_id: str, subject: str, sender: str, body: str, headers: str = "") -> bytes:
    return (
        f"From: {sender}\nTo: robin@example.com\nDate: {DATE}\nSubject: {subject}\n"
        f"Message-ID: <{message_id}>\n{headers}\n{body}\n"
    ).encode()


REPORT = ("Q4 figures", "Ann <ann@example.com>", "Hello Robin,\nplease send the Q4 figures.\n")
NEWS = mail(
    "news-1@lists.example",
    "Our November news",
    "Example News <news@lists.example>",
    "Ten things that happened this month. Read them all on our site.",
    "List-Id: <news.lists.example>\nList-Unsubscribe: <mailto:leave@lists.example>\n",
)
BUILD = mail(
    "build-1@ci.example",
    "Build 812 passed",
    "CI <noreply@ci.example.com>",
    "All 812 checks passed on main.",
)


def ai(model: FakeModelServer, **more: Any) -> dict[str, Any]:
    return {"backend": "cerebras", "base_url": model.base_url} | more


def start(
    daemons: StartDaemon,
    state: Path,
    accounts: dict[str, Path],
    settings: dict[str, Any],
    db_url: str | None = None,
) -> Daemon:
    state.mkdir(parents=True, exist_ok=True)
    config = write_config(
        state,
        accounts=[maildir_account(name, path) for name, path in accounts.items()],
        db_url=db_url,
        ai=settings,
    )
    return daemons(state, config, {"CEREBRAS_API_KEY": API_KEY}).start()


def origins(db: Path) -> dict[str, tuple[str, str | None]]:
    rows = query(
        db,
        "SELECT e.account || '/' || e.message_id, r.origin, r.origin_note "
        "FROM emails e JOIN results r ON r.email_id = e.id",
    )
    return {str(key): (str(origin), note) for key, origin, note in rows}


def ids(db: Path) -> dict[str, int]:
    rows = query(db, "SELECT account || '/' || message_id, id FROM emails")
    return {str(key): int(n) for key, n in rows}


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_skipped_and_repeated_mail_cost_no_request_and_the_cache_survives_a_restart(
    tmp_path: Path, model: FakeModelServer, daemons: StartDaemon
) -> None:
    boxes = {"work": tmp_path / "work", "home": tmp_path / "home"}
    fill_maildir(boxes["work"], [mail("report-1@example.com", *REPORT), NEWS, BUILD])
    fill_maildir(boxes["home"], [mail("report-1@example.com", *REPORT)])  # the same mail
    settings = ai(model, skip=["bulk", "automated"])
    daemon = start(daemons, tmp_path, boxes, settings)
    daemon.wait_idle(within_s=90)
    db = tmp_path / "muninmail.db"

    assert model.requests == 1, daemon.log_tail()
    found = origins(db)
    assert found["work/<news-1@lists.example>"] == ("skipped", "bulk: List-Id")
    assert found["work/<build-1@ci.example>"] == (
        "skipped",
        "automated: a sender that takes no replies",
    )
    pair = sorted(found[f"{box}/<report-1@example.com>"][0] for box in ("work", "home"))
    assert pair == ["cache", "model"]
    body = model.last_bodies()[0]
    assert "Q4 figures" in body["messages"][1]["content"]

    status = daemon.call("status")
    today = status["model"]["today"]
    assert (today["requests"], today["cached"], today["skipped"]) == (1, 1, 2)
    assert status["model"]["skip"] == ["bulk", "automated"]
    assert status["model"]["cache"] == {"entries": 1, "max_entries": 20000, "max_age_days": 7}
    assert (status["session"]["cached"], status["session"]["skipped"]) == (1, 2)
    shown = daemon.ctl("status").stdout
    assert "without a request: 1 cached, 2 skipped" in shown
    assert "cache:      1 answers kept (at most 20000, for 7 days)" in shown

    by_key = ids(db)
    cached = next(k for k in ("work", "home") if found[f"{k}/<report-1@example.com>"][0] == "cache")
    cached_id = by_key[f"{cached}/<report-1@example.com>"]
    show = daemon.ctl("show", str(cached_id)).stdout
    assert "answer:  from the answer cache" in show and "tokens:  0 in, 0 out" in show
    news = daemon.call("show", {"id": by_key["work/<news-1@lists.example>"]})["message"]
    assert (news["origin"], news["sent"], news["tokens"]) == ("skipped", None, {"in": 0, "out": 0})
    listed = daemon.ctl("list", "--details").stdout
    assert "by the offline rules, the model was not asked (ai.skip: bulk: List-Id)" in listed
    assert listed.count("answer:  from the answer cache") == 1

    text = daemon.call("metrics")["text"]
    checked = promtool.check_metrics(text)
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stdout
    assert "muninmail_model_cache_hits_total 1.0" in text
    assert "muninmail_model_cache_misses_total 1.0" in text
    assert 'muninmail_model_skipped_total{reason="bulk"} 1.0' in text
    assert 'muninmail_model_skipped_total{reason="automated"} 1.0' in text
    assert "muninmail_model_cache_entries 1.0" in text
    assert re.search(r'muninmail_model_requests_total\{outcome="ok"\} 1\.0', text)

    # A restart keeps the cache: another copy, arriving later, is answered from it.
    assert daemon.stop() == 0
    fill_maildir(boxes["home"], [mail("report-1-again@example.com", *REPORT)], first=10)
    daemon.start()
    daemon.wait_idle(within_s=90)
    assert model.requests == 1, daemon.log_tail()
    assert origins(db)["home/<report-1-again@example.com>"] == ("cache", None)
    assert daemon.call("status")["model"]["today"]["cached"] == 2
    assert daemon.stop() == 0


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_without_skip_and_cache_every_message_is_a_request(
    tmp_path: Path, model: FakeModelServer, daemons: StartDaemon
) -> None:
    boxes = {"work": tmp_path / "work", "home": tmp_path / "home"}
    fill_maildir(boxes["work"], [mail("report-1@example.com", *REPORT), NEWS, BUILD])
    fill_maildir(boxes["home"], [mail("report-1@example.com", *REPORT)])
    daemon = start(daemons, tmp_path, boxes, ai(model, skip=[], cache=False))
    daemon.wait_idle(within_s=90)
    assert model.requests == 4
    assert set(origins(tmp_path / "muninmail.db").values()) == {("model", None)}
    status = daemon.call("status")["model"]
    assert (status["skip"], status["cache"], status["today"]["cached"]) == ([], None, 0)
    assert daemon.stop() == 0


def pg_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    async def run() -> list[tuple[Any, ...]]:
        from sqlalchemy import text

        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return [tuple(r) for r in (await conn.execute(text(sql))).all()]
        finally:
            await engine.dispose()

    return asyncio.run(run())


def pg_origins(url: str) -> dict[str, str]:
    rows = pg_rows(
        url,
        "SELECT e.account, r.origin FROM emails e JOIN results r ON r.email_id = e.id",
    )
    return {str(account): str(origin) for account, origin in rows}


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_two_daemons_on_one_postgresql_share_the_cache(
    tmp_path: Path, model: FakeModelServer, daemons: StartDaemon, pg_url: str
) -> None:
    boxes = {"first": tmp_path / "first", "second": tmp_path / "second"}
    for box in boxes.values():
        fill_maildir(box, [])
    one = start(daemons, tmp_path / "one", {"first": boxes["first"]}, ai(model), pg_url)
    two = start(daemons, tmp_path / "two", {"second": boxes["second"]}, ai(model), pg_url)

    fill_maildir(boxes["first"], [mail("report-1@example.com", *REPORT)])
    wait_until(lambda: pg_origins(pg_url) == {"first": "model"}, 60, "the first answer")
    fill_maildir(boxes["second"], [mail("report-1@example.com", *REPORT)])
    wait_until(lambda: len(pg_origins(pg_url)) == 2, 60, "the second answer", two.log_tail)
    assert pg_origins(pg_url) == {"first": "model", "second": "cache"}
    assert model.requests == 1
    assert two.call("status")["model"]["cache"]["entries"] == 1
    assert one.call("status")["model"]["today"]["cached"] == 1  # counted for the database
    assert one.stop() == 0 and two.stop() == 0


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_two_daemons_asking_the_same_request_at_once_both_store_without_error(
    tmp_path: Path, model: FakeModelServer, daemons: StartDaemon, pg_url: str
) -> None:
    """Each may ask (they share no memory; whichever claims first may take both messages, so
    whether both ask depends on timing): one answer is kept, and nothing fails. The race of two
    inserts of one key is pinned down in tests/test_answer_cache.py."""
    model.set_latency(1.0)  # a request in flight while the other daemon starts and claims
    boxes = {"first": tmp_path / "first", "second": tmp_path / "second"}
    for box in boxes.values():
        fill_maildir(box, [mail("report-1@example.com", *REPORT)])
    one = start(daemons, tmp_path / "one", {"first": boxes["first"]}, ai(model), pg_url)
    two = start(daemons, tmp_path / "two", {"second": boxes["second"]}, ai(model), pg_url)
    wait_until(lambda: len(pg_origins(pg_url)) == 2, 60, "both answers", two.log_tail)
    assert model.requests in (1, 2)
    assert sorted(pg_origins(pg_url).values()) in (["cache", "model"], ["model", "model"])
    assert pg_rows(pg_url, "SELECT COUNT(*) FROM answer_cache") == [(1,)]
    statuses = pg_rows(pg_url, "SELECT processing_status, COUNT(*) FROM emails GROUP BY 1")
    assert statuses == [("completed", 2)]
    for daemon in (one, two):
        assert " ERROR " not in daemon.log_text(), daemon.log_tail()
        assert daemon.stop() == 0
