"""Parsing in a child process: the same results as in this process, and nothing lost when the
child fails."""

from __future__ import annotations

import asyncio
import functools
import logging

import pytest

from muninmaild.mail.message import ParsedMail
from muninmaild.mail.parse import parse_message
from muninmaild.mail.parse_process import ParseWorker
from tests.peers.dovecot import message
from tests.reliability.hostile import hostile_messages
from tests.waiting import until


@functools.cache
def batch() -> list[bytes]:
    plain = [message(n, body="Please send the report.\n" * n) for n in range(1, 40)]
    return plain + hostile_messages()


@functools.cache
def parsed_here() -> list[ParsedMail]:
    """The batch parsed in this process, once for the module (it takes seconds)."""
    return [parse_message(raw) for raw in batch()]


async def test_the_child_parses_as_this_process_does() -> None:
    raws = batch()
    worker = ParseWorker()
    try:
        assert await worker.parse(raws) == parsed_here()
        assert await worker.parse(raws[:3]) == parsed_here()[:3]
    finally:
        await worker.close()


async def test_a_child_that_dies_leaves_the_batch_to_a_thread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raws = batch()
    worker = ParseWorker()
    try:
        await worker.parse(raws[:1])
        assert worker._proc is not None
        worker._proc.kill()
        assert await worker.parse(raws) == parsed_here()
        assert worker._proc is None
        assert "parsing in a separate process failed" in caplog.text
    finally:
        await worker.close()


async def test_a_cancelled_parse_ends_the_child_and_the_next_one_works() -> None:
    raws = batch() * 20
    worker = ParseWorker()
    try:
        task = asyncio.create_task(worker.parse(raws))
        await until(lambda: worker._proc is not None)  # the child runs; the batch goes to it
        child = worker._proc
        assert child is not None
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert worker._proc is None
        assert await asyncio.wait_for(child.wait(), 10) != 0  # killed, not left behind
        assert await worker.parse(raws[:5]) == [parse_message(raw) for raw in raws[:5]]
    finally:
        await worker.close()


async def test_close_ends_the_child() -> None:
    worker = ParseWorker()
    await worker.parse([message(1)])
    proc = worker._proc
    assert proc is not None
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
