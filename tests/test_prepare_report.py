"""What the model is given, and what `--once` prints."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from muninmaild.ai.prepare import model_input
from muninmaild.processing.processor import ProcessorStats
from muninmaild.records import ClaimedMessage, FetchStatus, QueueCounts
from muninmaild.service.report import render


def claimed(body: str, **kw: object) -> ClaimedMessage:
    values: dict[str, object] = {
        "id": 7,
        "token": "t#1",
        "attempts": 1,
        "account": "work",
        "subject": "Quarterly numbers",
        "from_addr": "Ann <ann@example.com>",
        "to_addrs": "robin@example.com",
        "sent_at": datetime(2026, 11, 27, 9, 30, tzinfo=UTC),
        "body_text": body,
    }
    return ClaimedMessage(**(values | kw))  # type: ignore[arg-type]


def test_model_input_trims_quotes_and_signature_and_caps_the_body() -> None:
    body = (
        "Could you check the numbers by Friday?\n\n"
        "On Tue, 24 Nov 2026, Robin wrote:\n> old text\n> more old text\n"
        "-- \nAnn, Finance\n"
    ) + "filler " * 10
    item = model_input(claimed(body), 200)
    assert item.body.startswith("Could you check the numbers by Friday?")
    assert "old text" not in item.body
    assert "Finance" not in item.body
    assert item.date == "Fri, 27 Nov 2026 09:30:00 +0000"


def test_model_input_keeps_attachment_names_only_and_telling_headers() -> None:
    msg = claimed(
        "See the attached report.",
        attachment_names=("q3.pdf",),
        headers={"list-unsubscribe": "<mailto:x@example.com>", "x-mailer": "whatever"},
    )
    item = model_input(msg, 1000)
    assert item.attachment_names == ("q3.pdf",)
    assert dict(item.headers) == {"list-unsubscribe": "<mailto:x@example.com>"}


def test_long_body_is_capped_at_max_input_chars() -> None:
    item = model_input(claimed("word " * 10_000), 500)
    assert len(item.body) <= 500


def test_a_backend_that_does_not_read_the_message_gets_only_its_id() -> None:
    item = model_input(claimed("word " * 10_000, attachment_names=("a.pdf",)), 500, needed=False)
    assert item.email_id == 7
    assert (item.subject, item.body, item.attachment_names) == ("", "", ())


def test_report_lists_results_and_totals() -> None:
    base: dict[str, Any] = {"account": "demo", "mailbox": "INBOX", "skip_reason": None, "flags": []}
    rows = [
        base
        | {"id": 1, "subject": "Invoice", "from": "a@example.com", "status": "completed"}
        | {"summary": "Pay it.", "flags": ["urgent"], "last_error": None}
        | {"todos": [{"task": "Pay the invoice", "priority": "high", "due": "2026-12-03"}]},
        base
        | {"id": 2, "subject": "Broken", "from": "b@example.com", "status": "failed"}
        | {"summary": None, "todos": []}
        | {"last_error": "gave up after 5 attempts: the model's answer is not JSON"},
    ]
    stats = ProcessorStats(completed=1, failed=1, handled=2)
    text = render(rows, stats, QueueCounts(completed=1, failed=1), [FetchStatus("demo", queued=2)])
    assert "demo: 2 new message(s) queued" in text
    assert "todo [high] due 2026-12-03: Pay the invoice" in text
    assert "status: failed (gave up after 5 attempts" in text
    assert "processed 2: 1 completed, 0 to retry, 1 failed" in text


def test_importing_the_client_does_not_load_the_daemon_sqlalchemy_or_prometheus() -> None:
    # The shared protocol module (standard library only) is the one part of the daemon allowed.
    code = (
        "import sys, muninctl.cli; "
        "shared = {'muninmaild', 'muninmaild.protocol'}; "
        "heavy = ('sqlalchemy', 'muninmaild', 'prometheus_client'); "
        "bad = [m for m in sys.modules if m.startswith(heavy)]; "
        "bad = [m for m in bad if m not in shared]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_a_sqlite_daemon_never_loads_the_postgresql_dialect(tmp_path: Path) -> None:
    # A start on a current schema (a first start's Alembic loads everything), then queueing,
    # a fetch lease and a claim: the statements built per dialect.
    prepare = f"""
import asyncio
from muninmaild.store.engine import create_engine
from muninmaild.store.migrate import migrate
engine = create_engine("sqlite+aiosqlite:///{tmp_path / "q.db"}")
asyncio.run(migrate(engine))
"""
    subprocess.run([sys.executable, "-c", prepare], check=True)
    code = f"""
import asyncio, sys
from muninmaild.service import compose, daemon
from muninmaild.store.engine import create_engine
from muninmaild.store.migrate import migrate
from muninmaild.store.repository import Repository
from tests.factories import new_message

async def main():
    engine = create_engine("sqlite+aiosqlite:///{tmp_path / "q.db"}")
    await migrate(engine)
    repo = Repository(engine)
    await repo.add_messages([new_message(1)])
    await repo.acquire_fetch_lease("work", "INBOX", "me", 60)
    claimed = await repo.claim_batch("t#1", 5, 60)
    await engine.dispose()
    return claimed

assert len(asyncio.run(main())) == 1
loaded = [m for m in sys.modules if m.startswith("sqlalchemy.dialects.postgresql")]
print(loaded)
sys.exit(1 if loaded else 0)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
