"""Parsing in processes of their own, for the big batches of an initial sync.

Parsing is the largest share of an initial sync's CPU (0.17 ms a message, more than fetching
and storing it), and under the GIL a thread cannot run it beside the event loop that talks IMAP
and writes the queue. Child processes can, on the other cores: a `ProcessPoolExecutor` of
`spawn`ed interpreters (never `fork`: the daemon has threads and an event loop), fed batches
through `loop.run_in_executor`. A big fetch starts one and shuts it down after it, so an idle
daemon has no parsing processes.

Anything that goes wrong with the children (they cannot start, one dies on a message, an answer
does not match its batch) is logged once, and that batch and every later one is parsed in a
thread instead: never a message lost.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from muninmaild.mail.message import ParsedMail
from muninmaild.mail.parse import parse_message

log = logging.getLogger(__name__)


def parse_all(raws: Sequence[bytes]) -> list[ParsedMail]:
    return [parse_message(raw) for raw in raws]


class ParsePool:
    """Up to `workers` child processes; `parse()` a batch; `close()` ends them."""

    def __init__(self, workers: int) -> None:
        self._workers = max(1, workers)
        self._pool: ProcessPoolExecutor | None = None
        self._failed = False

    async def parse(self, raws: Sequence[bytes]) -> list[ParsedMail]:
        batch = list(raws)
        if not self._failed:
            try:
                return _checked(await self._in_child(batch), len(batch))
            except Exception as exc:  # the fallback below parses every message anyway
                self._give_up(exc)
        return await asyncio.to_thread(parse_all, batch)

    async def close(self) -> None:
        """Ends the children, after the batch each one is parsing (a few milliseconds)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

    async def _in_child(self, batch: list[bytes]) -> list[ParsedMail]:
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self._workers, mp_context=context)
        # Cancelled while a child parses it, the batch is finished there and its answer dropped:
        # the pool stays usable.
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, parse_all, batch)

    def _give_up(self, exc: Exception) -> None:
        if self._failed:
            return  # the other batches in flight when it broke say the same
        self._failed = True
        log.warning("parsing in separate processes failed (%r); in a thread now", exc)
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _checked(parsed: object, expected: int) -> list[ParsedMail]:
    if not isinstance(parsed, list) or len(parsed) != expected:
        raise ValueError("an answer that does not match the batch")
    if not all(isinstance(mail, ParsedMail) for mail in parsed):
        raise ValueError("an answer that is not parsed mail")
    return parsed
