"""The metrics' parts: the counts kept while working, what the store reads for them, and the
exposition prometheus_client renders from a snapshot, checked by promtool."""

from __future__ import annotations

import asyncio
import math
import platform
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.ai.base import ModelAnswer, ModelInput
from muninmaild.ai.budget import RateBudget
from muninmaild.config.settings import AISettings, ProcessorSettings
from muninmaild.errors import (
    ModelAnswerInvalid,
    ModelRateLimited,
    ModelUnavailable,
)
from muninmaild.processing.handler import MessageHandler, ProcessorStats
from muninmaild.processing.hold import Hold
from muninmaild.processing.model_calls import LATENCY_BUCKETS, ModelCalls, outcome_of
from muninmaild.records import Analysis, FetchStatus, MailboxFetch, SyncAdvance, TokenUsage
from muninmaild.redact import Redactor
from muninmaild.service import exposition
from muninmaild.service.metrics import Snapshot
from muninmaild.store.repository import Repository
from tests.factories import new_message
from tests.peers import promtool

T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)
GOOD = ModelAnswer(Analysis("A summary.", (), ()), TokenUsage(120, 30), "m-1")


def status(**changes: Any) -> dict[str, Any]:
    """A `status` answer as the daemon gives it (the fields the metrics read)."""
    found: dict[str, Any] = {
        "paused": {"fetcher": False, "processor": True},
        "queue": {"pending": 3, "processing": 1, "completed": 40, "failed": 2},
        "waiting": {"due": 2, "oldest_pending_s": 75.5, "oldest_due_s": 12.0},
        "model": {"backend": "cerebras", "model": "gpt-oss-120b", "tokens_in": 9, "tokens_out": 1},
        "database": {"failing": False, "last_error": None, "last_error_at": None},
    }
    return found | changes


def snapshot(status_: dict[str, Any] | None = None, **changes: Any) -> Snapshot:
    calls = ModelCalls()
    calls.record(None, 0.8, TokenUsage(100, 20))
    calls.record(ModelRateLimited("429", 5.0), 0.02, TokenUsage())
    calls.record(asyncio.CancelledError(), 30.0, TokenUsage())
    fetch = FetchStatus("work", state="backoff", queued=7, errors=3)
    fetch.last_success_at = T0
    values: dict[str, Any] = {
        "version": "0.1.0",
        "status": status_ or status(),
        "processed": ProcessorStats(completed=5, retried=1, failed=2),
        "model": calls,
        "budget": None,
        "fetchers": [fetch],
        "mailboxes": [
            MailboxFetch("work", "INBOX", T0),
            MailboxFetch("work", 'Archiv "2026"', None),
        ],
    }
    return Snapshot(**(values | changes))


def samples(text: str) -> dict[str, float]:
    """`name{labels}` -> value, for every sample line of an exposition."""
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


# -- the exposition ---------------------------------------------------------------------------


def test_the_exposition_passes_promtool_and_names_everything_muninmail() -> None:
    text = exposition.render(snapshot())
    checked = promtool.check_metrics(text)
    assert checked.returncode == 0 and checked.stdout + checked.stderr == "", checked.stdout
    families = re.findall(r"^# TYPE (\S+) (\S+)", text, re.M)
    ours = {name: kind for name, kind in families if name.startswith("muninmail_")}
    assert len(ours) == 23
    assert all(name.endswith("_total") for name, kind in ours.items() if kind == "counter")
    # Besides ours only the client's standard process and Python families.
    assert {n.split("_")[0] for n, _ in families} == {"muninmail", "process", "python"}


def test_every_label_value_is_there_from_the_start_as_zero() -> None:
    got = samples(exposition.render(snapshot()))
    assert got['muninmail_queue_messages{status="failed"}'] == 2
    assert got['muninmail_paused{component="processor"}'] == 1
    assert got['muninmail_paused{component="fetcher"}'] == 0
    assert got['muninmail_model_requests_total{outcome="ok"}'] == 1
    assert got['muninmail_model_requests_total{outcome="rate_limited"}'] == 1
    assert got['muninmail_model_requests_total{outcome="auth_error"}'] == 0
    assert got['muninmail_model_held{reason="quota"}'] == 0  # no model.hold in this status
    assert got['muninmail_messages_processed_total{outcome="lost"}'] == 0
    assert got['muninmail_fetch_state{account="work",state="backoff"}'] == 1
    assert got['muninmail_fetch_state{account="work",state="idle"}'] == 0
    assert got["muninmail_model_quota_waits_total"] == 0


def test_the_figures_come_from_the_snapshot() -> None:
    got = samples(exposition.render(snapshot()))
    assert got["muninmail_backlog_messages"] == 2
    assert got["muninmail_backlog_wait_seconds"] == 12.0
    assert got["muninmail_oldest_pending_age_seconds"] == 75.5
    assert got['muninmail_model_tokens_total{direction="in"}'] == 100
    assert got['muninmail_model_tokens_total{direction="out"}'] == 20
    assert got['muninmail_fetch_errors_total{account="work"}'] == 3
    assert got['muninmail_messages_queued_total{account="work"}'] == 7
    assert got['muninmail_fetch_last_success_timestamp_seconds{account="work"}'] == T0.timestamp()
    mailbox = 'muninmail_mailbox_last_fetch_timestamp_seconds{account="work",mailbox='
    assert got[mailbox + '"INBOX"}'] == T0.timestamp()
    assert got[mailbox + '"Archiv \\"2026\\""}'] == 0  # never synced; the quotes escaped
    python = platform.python_version()
    assert got[f'muninmail_build_info{{protocol="1",python="{python}",version="0.1.0"}}'] == 1


def test_the_latency_histogram_leaves_cancelled_calls_out() -> None:
    got = samples(exposition.render(snapshot()))
    bucket = "muninmail_model_request_duration_seconds_bucket"
    assert got[f'{bucket}{{le="0.025"}}'] == 1  # the 429, 20 ms
    assert got[f'{bucket}{{le="0.5"}}'] == 1
    assert got[f'{bucket}{{le="1.0"}}'] == 2  # the answer, 0.8 s
    assert got[f'{bucket}{{le="+Inf"}}'] == 2  # not the cancelled 30 s
    assert got["muninmail_model_request_duration_seconds_count"] == 2
    assert math.isclose(got["muninmail_model_request_duration_seconds_sum"], 0.82)


def test_a_hold_and_a_failing_database_show_as_ones() -> None:
    held = status(
        model={"backend": "cerebras", "hold": {"reason": "quota", "message": "", "until": None}},
        database={"failing": True, "last_error": "disk full", "last_error_at": None},
    )
    got = samples(exposition.render(snapshot(held)))
    assert got['muninmail_model_held{reason="quota"}'] == 1
    assert got['muninmail_model_held{reason="account"}'] == 0
    assert got["muninmail_database_write_failing"] == 1


def test_a_budget_s_waits_are_reported() -> None:
    budget = RateBudget(30, 60000)
    budget.waits, budget.waited_s = 4, 7.5
    got = samples(exposition.render(snapshot(budget=budget)))
    assert got["muninmail_model_quota_waits_total"] == 4
    assert got["muninmail_model_quota_wait_seconds_total"] == 7.5


def test_importing_the_daemon_does_not_load_prometheus_client() -> None:
    code = (
        "import sys, muninmaild.service.daemon, muninmaild.cli; "
        "print('prometheus_client' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- the counts kept while working --------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, "ok"),
        (ModelRateLimited("429", 1.0), "rate_limited"),
        (ModelUnavailable("503"), "unavailable"),
        (ModelAnswerInvalid("not JSON"), "invalid_answer"),
        (asyncio.CancelledError(), "cancelled"),
        (KeyError("x"), "error"),
    ],
)
def test_each_error_has_its_outcome(error: BaseException | None, outcome: str) -> None:
    assert outcome_of(error) == outcome


def test_latency_buckets_count_up_to_and_including_their_bound() -> None:
    calls = ModelCalls()
    for seconds in (0.005, 0.0051, 120.0, 121.0):
        calls.record(None, seconds, TokenUsage())
    assert calls.buckets[0] == 1 and calls.buckets[1] == 1
    assert calls.buckets[len(LATENCY_BUCKETS) - 1] == 1  # 120 s: the last finite bucket
    assert calls.buckets[-1] == 1 and calls.timed == 4


class Answers:
    """A backend that answers from a script: an exception to raise, or the good answer."""

    name = "scripted"
    model = "m-1"
    local = True
    reads_input = True

    def __init__(self, *steps: Exception | None) -> None:
        self.steps = list(steps)

    async def analyse(self, item: ModelInput) -> ModelAnswer:
        step = self.steps.pop(0)
        if step is not None:
            raise step
        return GOOD

    async def aclose(self) -> None:
        return None


async def test_the_handler_counts_each_model_call_with_its_tokens(repo: Repository) -> None:
    await repo.add_messages([new_message(i) for i in (1, 2, 3)])
    stats = ProcessorStats()
    invalid = ModelAnswerInvalid("cut short", TokenUsage(50, 1024))
    handler = MessageHandler(
        repo,
        Answers(None, invalid, ModelRateLimited("429", 1.0)),
        AISettings(),
        stats,
        settings=lambda: ProcessorSettings(),
        abort=asyncio.Event(),
        hold=Hold(),
        redact=Redactor(),
    )
    for msg in await repo.claim_batch("t#1", 3, 60):
        await handler.handle(msg)
    model = stats.model
    assert {k: v for k, v in model.outcomes.items() if v} == {
        "ok": 1,
        "invalid_answer": 1,
        "rate_limited": 1,
    }
    assert (model.tokens_in, model.tokens_out) == (170, 1054)  # tokens of failed calls count
    assert model.timed == 3


async def test_the_budget_counts_requests_that_had_to_wait() -> None:
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    budget = RateBudget(2, 60000, clock=lambda: now[0], sleep=sleep)
    await budget.acquire(10)
    await budget.acquire(10)
    assert (budget.waits, budget.waited_s) == (0, 0.0)
    await budget.acquire(10)  # the third within a minute waits for the first to leave it
    assert budget.waits == 1 and budget.waited_s == pytest.approx(60.0)


# -- what the store reads --------------------------------------------------------------------


async def test_waiting_counts_due_pending_and_their_ages(any_engine: AsyncEngine) -> None:
    now = [T0]
    repo = Repository(any_engine, clock=lambda: now[0])
    assert (await repo.waiting()).due == 0
    await repo.add_messages([new_message(i) for i in (1, 2, 3)])
    now[0] = T0 + timedelta(minutes=5)
    (first,) = await repo.claim_batch("t#1", 1, 60)
    await repo.retry(first.id, first.token, "model unavailable", 3600)  # due in an hour
    now[0] = T0 + timedelta(minutes=10)
    found = await repo.waiting()
    assert found.due == 2
    assert found.oldest_pending_at == T0
    assert found.oldest_due_at == T0  # the two never tried were due from their queueing
    await repo.claim_batch("t#2", 1, 60)  # processing now, no longer pending
    found = await repo.waiting()
    assert found.due == 1 and found.oldest_pending_at == T0


async def test_a_mailbox_s_last_sync_is_kept_whether_or_not_it_found_mail(
    any_engine: AsyncEngine,
) -> None:
    now = [T0]
    repo = Repository(any_engine, clock=lambda: now[0])
    await repo.mailbox_synced("work", "INBOX")  # an empty mailbox: no position yet
    assert (await repo.sync_state("work", "INBOX")).highest_uid == 0
    now[0] = T0 + timedelta(minutes=1)
    await repo.add_messages([new_message(1)], SyncAdvance("work", "INBOX", 1, 1))
    now[0] = T0 + timedelta(minutes=2)
    await repo.mailbox_synced("work", "INBOX")
    await repo.mailbox_synced("home", "INBOX")
    assert (await repo.sync_state("work", "INBOX")).highest_uid == 1  # the position stays
    assert await repo.mailbox_fetches(["work"]) == [
        MailboxFetch("work", "INBOX", T0 + timedelta(minutes=2))
    ]
