"""A metrics snapshot as Prometheus text, rendered by prometheus_client.

Imported only when metrics are asked for (`service/metrics.py`). Every name starts with
`muninmail_`, counters end in `_total`, times are seconds; docs/monitoring.md lists them all.
Every label value that can occur is reported from the start (as 0), so a rule never has to
tell a missing series from a zero.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)

from muninmaild.config.settings import SKIP_KINDS
from muninmaild.processing.model_calls import LATENCY_BUCKETS, OUTCOMES
from muninmaild.protocol import COMPONENTS, PROTOCOL, STATUSES
from muninmaild.service.metrics import Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # what generate_latest writes
HOLD_REASONS = ("quota", "account", "rate_limit")
FETCH_STATES = ("starting", "syncing", "idle", "backoff", "auth_failed", "paused", "stopped")
PROCESSED = ("completed", "retried", "snoozed", "failed", "lost")


def render(snapshot: Snapshot) -> str:
    registry = CollectorRegistry()
    registry.register(_Collector(snapshot))
    # The process's own figures (memory, CPU, file descriptors, start time) and Python's.
    for standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(standard)
    return generate_latest(registry).decode("utf-8")


class _Collector:
    def __init__(self, snapshot: Snapshot) -> None:
        self._s = snapshot

    def collect(self) -> Iterator[Metric]:
        yield from _build(self._s)
        yield from _queue(self._s.status)
        yield from _processing(self._s)
        yield from _model(self._s)
        yield from _shortcuts(self._s)
        yield from _fetching(self._s)


def _build(s: Snapshot) -> Iterator[Metric]:
    yield InfoMetricFamily(
        "muninmail_build",
        "The running muninmaild: its version, control protocol and Python.",
        value={
            "version": s.version,
            "protocol": str(PROTOCOL),
            "python": platform.python_version(),
        },
    )


def _queue(status: dict[str, Any]) -> Iterator[Metric]:
    queue = GaugeMetricFamily(
        "muninmail_queue_messages",
        "Messages in the queue by processing_status, as the database counts them.",
        labels=["status"],
    )
    for name in STATUSES:
        queue.add_metric([name], status["queue"].get(name, 0))
    yield queue
    waiting = status.get("waiting") or {}
    yield GaugeMetricFamily(
        "muninmail_backlog_messages",
        "Pending messages due now: waiting for a worker, not for a later retry.",
        value=waiting.get("due", 0),
    )
    yield GaugeMetricFamily(
        "muninmail_backlog_wait_seconds",
        "How long the longest-waiting due message has waited for a worker (0: none waits).",
        value=waiting.get("oldest_due_s") or 0.0,
    )
    yield GaugeMetricFamily(
        "muninmail_oldest_pending_age_seconds",
        "Age of the oldest pending message since it was queued, retries included (0: none).",
        value=waiting.get("oldest_pending_s") or 0.0,
    )
    paused = GaugeMetricFamily(
        "muninmail_paused",
        "1 while the component is paused (muninctl pause; shared by every instance).",
        labels=["component"],
    )
    for component in COMPONENTS:
        paused.add_metric([component], 1 if status["paused"].get(component) else 0)
    yield paused
    database = status.get("database") or {}
    yield GaugeMetricFamily(
        "muninmail_database_write_failing",
        "1 while this instance's latest write to the database failed (disk full, gone).",
        value=1 if database.get("failing") else 0,
    )


def _processing(s: Snapshot) -> Iterator[Metric]:
    processed = CounterMetricFamily(
        "muninmail_messages_processed",
        "Messages this process finished with, by outcome: completed (answer stored), retried "
        "(later), snoozed (rate limited, no attempt used), failed (held), lost (taken over).",
        labels=["outcome"],
    )
    for outcome in PROCESSED:
        processed.add_metric([outcome], getattr(s.processed, outcome))
    yield processed
    queued = CounterMetricFamily(
        "muninmail_messages_queued",
        "Messages this process fetched and queued, by account.",
        labels=["account"],
    )
    for fetcher in s.fetchers:
        queued.add_metric([fetcher.account], fetcher.queued)
    yield queued


def _model(s: Snapshot) -> Iterator[Metric]:
    calls = s.model
    requests = CounterMetricFamily(
        "muninmail_model_requests",
        "Model requests by outcome; rate_limited counts HTTP 429 answers.",
        labels=["outcome"],
    )
    for outcome in OUTCOMES:
        requests.add_metric([outcome], calls.outcomes[outcome])
    yield requests
    cumulative, buckets = 0, []
    for bound, count in zip((*LATENCY_BUCKETS, float("inf")), calls.buckets, strict=True):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
    yield HistogramMetricFamily(
        "muninmail_model_request_duration_seconds",
        "Time from sending a model request to its answer or error (cancelled ones left out), "
        "waits for the rate budget included.",
        buckets=buckets,
        sum_value=calls.seconds,
    )
    tokens = CounterMetricFamily(
        "muninmail_model_tokens",
        "Tokens the model service counted: in (prompt) and out (answer, reasoning included).",
        labels=["direction"],
    )
    tokens.add_metric(["in"], calls.tokens_in)
    tokens.add_metric(["out"], calls.tokens_out)
    yield tokens
    budget = s.budget
    yield CounterMetricFamily(
        "muninmail_model_quota_waits",
        "Model requests that waited for the rate budget (per-minute limits, a spent quota, "
        "a 429's retry delay) before they were sent.",
        value=budget.waits if budget else 0,
    )
    yield CounterMetricFamily(
        "muninmail_model_quota_wait_seconds",
        "Seconds model requests spent waiting for the rate budget.",
        value=budget.waited_s if budget else 0.0,
    )
    model = s.status.get("model") or {}
    hold = model.get("hold") or {}
    held = GaugeMetricFamily(
        "muninmail_model_held",
        "1 while nothing is sent to the model, by reason: quota (an hourly or daily quota is "
        "spent), account (the key or the model is refused), rate_limit (a 429 holds all).",
        labels=["reason"],
    )
    for reason in HOLD_REASONS:
        held.add_metric([reason], 1 if hold.get("reason") == reason else 0)
    yield held


def _shortcuts(s: Snapshot) -> Iterator[Metric]:
    """Answers that cost no model request: `ai.skip` and the answer cache."""
    answers = s.processed.answers
    yield CounterMetricFamily(
        "muninmail_model_cache_hits",
        "Messages answered from the answer cache: the same request was answered before.",
        value=answers.cached,
    )
    yield CounterMetricFamily(
        "muninmail_model_cache_misses",
        "Messages the answer cache had no answer for, so the model was asked.",
        value=answers.cache_misses,
    )
    skipped = CounterMetricFamily(
        "muninmail_model_skipped",
        "Messages answered by the offline rules without a model request (ai.skip), by reason.",
        labels=["reason"],
    )
    for kind in SKIP_KINDS:
        skipped.add_metric([kind], answers.skipped.get(kind, 0))
    yield skipped
    cache = (s.status.get("model") or {}).get("cache") or {}
    yield GaugeMetricFamily(
        "muninmail_model_cache_entries",
        "Answers in the answer cache, shared by every instance (0: the cache is off).",
        value=cache.get("entries") or 0,
    )


def _fetching(s: Snapshot) -> Iterator[Metric]:
    success = GaugeMetricFamily(
        "muninmail_fetch_last_success_timestamp_seconds",
        "When this process last synced the account successfully (Unix time; 0: not yet).",
        labels=["account"],
    )
    errors = CounterMetricFamily(
        "muninmail_fetch_errors",
        "Syncs of the account that failed (connection, login, a refused mailbox).",
        labels=["account"],
    )
    state = GaugeMetricFamily(
        "muninmail_fetch_state",
        "1 for the fetcher's current state, 0 for the others.",
        labels=["account", "state"],
    )
    for f in s.fetchers:
        when = f.last_success_at
        success.add_metric([f.account], when.timestamp() if when else 0.0)
        errors.add_metric([f.account], f.errors)
        for name in FETCH_STATES:
            state.add_metric([f.account, name], 1 if f.state == name else 0)
    yield from (success, errors, state)
    mailbox = GaugeMetricFamily(
        "muninmail_mailbox_last_fetch_timestamp_seconds",
        "When the mailbox was last synced successfully, by any instance sharing the database "
        "(Unix time; 0: never).",
        labels=["account", "mailbox"],
    )
    for m in s.mailboxes:
        when = m.last_fetch_at
        mailbox.add_metric([m.account, m.mailbox], when.timestamp() if when else 0.0)
    yield mailbox
