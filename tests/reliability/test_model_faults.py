"""Scenario 3, model faults: 30 % of the model's answers are faults, and nothing is lost.

The real SDK talks to our own server, which draws a fault for about 30 % of the requests from a
seeded generator: 429 with `retry-after`, 500, 503, a request held past the client's timeout, a
dropped connection, a body that is not JSON, an answer that breaks the schema, and an empty
answer cut short with `finish_reason` "length". Retries come quickly (a small
`retry_base_seconds`) and `max_attempts` is 3, so a few messages run out of attempts.

Every message ends completed, or failed with a reason a person can act on; an answer cut short
is asked once more with more room on the same attempt; a 429 uses no
attempt (the server's own count of requests and 429s is compared with the rows); nothing stays
in `processing`. A 401 holds the whole processor for minutes, so it has its own test
(test_secrets.py) and unit tests (tests/test_processor.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.model_server import FakeModelServer
from tests.reliability.conftest import StartDaemon
from tests.reliability.harness import (
    fill_maildir,
    maildir_account,
    numbered_message,
    query,
    status_counts,
    write_config,
)

TOTAL = 400
MAX_ATTEMPTS = 3
FAULT_RATE = 0.3
FAULTS = ("429", "500", "503", "timeout", "drop", "malformed_json", "bad_schema", "empty_length")
API_KEY = "csk-model-faults-key"

# What a person reads in `muninctl show` after the last attempt: each says what went wrong.
READABLE = [
    re.compile(p)
    for p in (
        r"the model service failed \(HTTP 50[03]\): The (server had an error|service is "
        r"overloaded)",
        r"the model service did not answer within 1 s \(ai\.timeout\)",
        r"cannot reach the model service at http://127\.0\.0\.1:\d+: [A-Za-z].*",
        r"the model service answered with a body that is not JSON; check ai\.base_url .*",
        r"the model's answer breaks the schema: .+",
        r"the model's answer was cut short at the token limit \(4096 tokens, reasoning "
        r"included\); raise ai\.max_completion_tokens or lower ai\.reasoning_effort .*",
    )
]
# Python's own words: type names such as ReadTimeout or JSONDecodeError, reprs, tracebacks
# (OpenAI, in "an OpenAI-compatible API", is a name a person knows).
PYTHON_WORDS = re.compile(r"Traceback|<class|\b(?!OpenAI\b)[A-Z][a-z]+[A-Z][A-Za-z]*\b|Error\(")


@pytest.fixture
def model() -> Iterator[FakeModelServer]:
    server = FakeModelServer(
        latency=0.01,
        hold_s=2.0,  # a `timeout` fault outlasts the client's 1 s
        retry_after="1",
        tokens_per_minute=10**9,
        requests_per_day=10**9,
        window_s=1.0,  # a 429's reset headers then say at most a second
    )
    server.set_fault_rate(FAULT_RATE, FAULTS, seed=3)
    with server:
        yield server


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_thirty_percent_model_faults_end_completed_or_failed_with_a_reason(
    tmp_path: Path, model: FakeModelServer, daemons: StartDaemon
) -> None:
    maildir = tmp_path / "Maildir"
    fill_maildir(maildir, (numbered_message(n) for n in range(1, TOTAL + 1)))
    config = write_config(
        tmp_path,
        accounts=[maildir_account("faults", maildir)],
        processor={
            "concurrency": 4,
            "max_attempts": MAX_ATTEMPTS,
            "lease_seconds": 3,
            "retry_base_seconds": 0.1,
            "retry_max_seconds": 0.5,
        },
        ai={
            "backend": "cerebras",
            "base_url": model.base_url,
            "timeout": 1,
            "requests_per_minute": 1_000_000,
            "tokens_per_minute": 1_000_000_000,
            "requests_per_hour": 0,
            "requests_per_day": 0,
            "tokens_per_hour": 0,
            "tokens_per_day": 0,
        },
    )
    db = tmp_path / "muninmail.db"
    daemon = daemons(tmp_path, config, {"CEREBRAS_API_KEY": API_KEY}).start()
    daemon.wait_idle(within_s=200)
    assert daemon.stop() == 0, daemon.log_tail()

    counts = status_counts(db)
    assert set(counts) <= {"completed", "failed"}, counts
    assert counts.get("failed", 0) > 0 and counts["completed"] + counts["failed"] == TOTAL
    rows = query(db, "SELECT id, processing_status, attempts, last_error FROM emails")
    for email_id, status, attempts, error in rows:
        if status == "completed":
            assert error is None and 1 <= attempts <= MAX_ATTEMPTS, (email_id, attempts)
            continue
        assert attempts == MAX_ATTEMPTS, (email_id, attempts, error)
        prefix = f"gave up after {MAX_ATTEMPTS} attempts: "
        assert error.startswith(prefix), error
        reason = error.removeprefix(prefix)
        assert any(p.fullmatch(reason) for p in READABLE), reason
        assert not PYTHON_WORDS.search(reason), reason

    # Each claim counts an attempt and sends one request with the usual room; an answer cut
    # short is asked once more with more room, on the same attempt; a 429 gives its attempt
    # back, whichever of the two it answered.
    faults = model.faults
    assert set(faults) == set(FAULTS), faults  # every kind was served
    attempts = sum(row[2] for row in rows)
    first_tries = model.requests_by_room[1024]
    assert attempts == first_tries - faults["429"], (attempts, model.requests_by_room, faults)
    assert model.requests_by_room[4096] == model.fault_rooms[("empty_length", 1024)] > 0
    assert query(db, "SELECT COUNT(*), COUNT(DISTINCT email_id) FROM results") == [
        (counts["completed"], counts["completed"])
    ]
    log = daemon.log_text()
    assert API_KEY not in log
    assert "Traceback" not in log, log[-5000:]
