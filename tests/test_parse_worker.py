"""Parsing in a child process: the same results as in this process, and nothing lost whatever
happens to the child (it cannot start, dies mid-batch, answers nonsense, is cancelled)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from muninmaild.mail.parse import parse_message
from muninmaild.mail.parse_process import ParseWorker, child_command
from tests.peers.dovecot import message
from tests.reliability.hostile import hostile_messages

# Each test runs the parse process beside this one: several processes at once (tests/kinds.py).
pytestmark = pytest.mark.integration

FAILED = "parsing in a separate process failed"
# Everything the child may import of ours: the parser, what it is made of, and the records
# (and the protocol's names they use), all standard library only.
PARSER_MODULES = {
    "muninmaild",
    "muninmaild.mail",
    "muninmaild.mail.headers",
    "muninmaild.mail.html",
    "muninmaild.mail.mime",
    "muninmaild.mail.parse",
    "muninmaild.mail.parse_child",
    "muninmaild.protocol",
    "muninmaild.records",
}


def batch() -> list[bytes]:
    plain = [message(n, body="Please send the report.\n" * n) for n in range(1, 40)]
    return plain + hostile_messages()


def long_batch() -> list[bytes]:
    """Several megabytes that take the child a good while to parse: far more than a pipe
    holds, so once they are all written the child is reading or parsing them."""
    return [message(n, body="Please send the report by Friday.\n" * 30) for n in range(3000)]


def here(raws: Sequence[bytes]) -> list[object]:
    return [parse_message(raw) for raw in raws]


def child_of(worker: ParseWorker) -> asyncio.subprocess.Process:
    proc = worker._proc
    assert proc is not None, "the worker has no child"
    return proc


async def until_written(worker: ParseWorker, within_s: float = 30.0) -> asyncio.subprocess.Process:
    """The child, once the whole batch has left this process: it is busy with it now."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        proc = worker._proc
        if proc is not None and proc.stdin is not None:
            transport = proc.stdin.transport
            if transport.get_write_buffer_size() == 0 and not transport.is_closing():
                return proc
        assert loop.time() < deadline, "the batch was never written to the child"
        await asyncio.sleep(0.001)


# -- results ----------------------------------------------------------------------------------


async def test_the_child_parses_the_hostile_corpus_as_this_process_does() -> None:
    raws = batch()
    worker = ParseWorker()
    try:
        assert await worker.parse(raws) == here(raws)
        assert await worker.parse(raws[:3]) == here(raws[:3])  # the same child, a second batch
    finally:
        await worker.close()


def test_the_child_imports_only_the_parser() -> None:
    # The command the worker starts, with Python telling what it imports.
    python, *options = child_command()
    done = subprocess.run(
        [python, "-X", "importtime", *options],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    imported = set(re.findall(r"^import time:.*\|\s*(\S+)$", done.stderr, re.MULTILINE))
    top = {name.split(".")[0] for name in imported}
    assert {name for name in imported if name.startswith("muninmaild")} <= PARSER_MODULES
    assert not top & {"sqlalchemy", "aiosqlite", "aioimaplib", "cerebras", "httpx", "aiohttp"}
    assert not top & {"click", "muninctl", "alembic", "asyncpg", "sdnotify", "asyncio"}


async def test_a_muninmaild_folder_in_the_working_directory_is_never_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "imported"
    shadow = tmp_path / "muninmaild"
    (shadow / "mail").mkdir(parents=True)
    (shadow / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (shadow / "mail" / "__init__.py").write_text("")
    (shadow / "mail" / "parse_child.py").write_text("import sys\nsys.exit(3)\n")
    monkeypatch.chdir(tmp_path)
    raws = batch()[:40]
    worker = ParseWorker()
    try:
        assert await worker.parse(raws) == here(raws)
        assert child_of(worker).returncode is None  # the installed parser answered
    finally:
        await worker.close()
    assert not marker.exists()
    assert FAILED not in caplog.text


# -- failures: every message is still parsed, in a thread ---------------------------------------


@pytest.mark.parametrize("interpreter", ["missing", "/bin/false"])
async def test_a_child_that_cannot_start_leaves_every_batch_to_a_thread(
    interpreter: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # No interpreter at all, or one that exits at once without a word.
    path = str(tmp_path / interpreter) if interpreter == "missing" else interpreter
    monkeypatch.setattr(sys, "executable", path)
    raws = batch()
    worker = ParseWorker()
    try:
        assert await worker.parse(raws) == here(raws)
        assert await worker.parse(raws[:5]) == here(raws[:5])
        assert worker._proc is None
    finally:
        await worker.close()
    assert caplog.text.count(FAILED) == 1  # said once, not for every batch


async def test_a_child_that_dies_mid_batch_leaves_the_batch_to_a_thread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raws = long_batch()
    worker = ParseWorker()
    try:
        task = asyncio.create_task(worker.parse(raws))
        proc = await until_written(worker)
        proc.kill()
        assert await task == here(raws)
        assert worker._proc is None
        assert FAILED in caplog.text
    finally:
        await worker.close()
    # Gone and reaped. Its status is SIGKILL's, or 255 when the worker's own kill found it
    # already dead: CPython's Popen.send_signal reaps a zombie before signalling, and asyncio's
    # watcher then reports 255 for the child it can no longer wait for.
    assert proc.returncode in (-signal.SIGKILL, 255)
    with pytest.raises(ProcessLookupError):
        os.kill(proc.pid, 0)


async def test_a_child_that_died_between_batches_leaves_the_next_to_a_thread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raws = batch()
    worker = ParseWorker()
    try:
        await worker.parse(raws[:1])
        child_of(worker).kill()
        assert await worker.parse(raws) == here(raws)
        assert worker._proc is None
        assert FAILED in caplog.text
    finally:
        await worker.close()


async def test_a_child_answering_nonsense_is_not_believed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A well-formed frame with the wrong content: one string for the whole batch.
    liar = tmp_path / "liar"
    liar.write_text(
        f"#!{sys.executable}\n"
        "import pickle, sys\n"
        "size = int.from_bytes(sys.stdin.buffer.read(8), 'big')\n"
        "sys.stdin.buffer.read(size)\n"
        "answer = pickle.dumps(['not parsed mail'])\n"
        "sys.stdout.buffer.write(len(answer).to_bytes(8, 'big') + answer)\n"
        "sys.stdout.buffer.flush()\n"
    )
    liar.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(liar))
    for raws in (batch()[:1], batch()[:3]):
        worker = ParseWorker()
        try:
            assert await worker.parse(raws) == here(raws)
        finally:
            await worker.close()
    assert "an answer that is not parsed mail" in caplog.text
    assert "an answer that does not match the batch" in caplog.text


# -- cancellation and the end -----------------------------------------------------------------


async def test_a_parse_cancelled_mid_batch_ends_the_child_and_the_next_one_works(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raws = long_batch()
    worker = ParseWorker()
    try:
        task = asyncio.create_task(worker.parse(raws))
        proc = await until_written(worker)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert worker._proc is None
        assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL
        assert await worker.parse(raws[:5]) == here(raws[:5])
        assert child_of(worker) is not proc  # a fresh child, not the thread
    finally:
        await worker.close()
    assert FAILED not in caplog.text  # a cancellation is no failure


async def test_close_ends_the_child() -> None:
    worker = ParseWorker()
    await worker.parse([message(1)])
    proc = child_of(worker)
    await worker.close()
    assert proc.returncode == 0 and worker._proc is None


def test_nothing_is_logged_when_all_goes_well(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    async def run() -> None:
        worker = ParseWorker()
        await worker.parse([message(1)])
        await worker.close()

    asyncio.run(run())
    assert not caplog.records
