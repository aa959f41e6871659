"""Parsing in a process of its own, for the big batches of an initial sync.

Parsing is the largest share of an initial sync's CPU (more than fetching and storing it),
and under the GIL a thread cannot run it beside the event loop that talks IMAP
and writes the queue. A child process can, on another core: `python -I -m
muninmaild.mail.parse_child`, fed batches of raw messages over a pipe (length-prefixed pickles,
between two processes of ours). `-I`: the child imports the installed package only, never a
`muninmaild` folder in the working directory, and it imports the parser and nothing else.

A big fetch starts two of them, taking its batches in turn, and stops them after it: an idle
daemon has no children. Anything that goes wrong with one (it cannot start, dies on a message,
answers nonsense) is logged once and its batches are parsed in a thread instead: never a
message lost. A batch cancelled halfway kills its child; the next batch starts a fresh one.

Why not `concurrent.futures.ProcessPoolExecutor` (docs/dependencies.md has the figures): in P1
side by side it synced 0.88x as fast (median of 13 runs, slower in 12), its `spawn` start leaves
multiprocessing's resource tracker process running for the daemon's lifetime, and its children
import the daemon's main module again (the `muninmaild` script: the CLI and the configuration).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import sys
from collections.abc import Sequence

from muninmaild.mail import parse_child
from muninmaild.mail.parse_child import LENGTH, parse_all
from muninmaild.records import ParsedMail

log = logging.getLogger(__name__)
_MAX_FRAME = 1 << 31


def child_command() -> list[str]:
    """-I: the installed package only, never a `muninmaild` folder in the working directory."""
    return [sys.executable, "-I", "-m", parse_child.__name__]


class ParseWorker:
    """One child process; `parse()` one batch at a time; `close()` ends the child."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self._failed = False
        self._reaping: set[asyncio.Task[None]] = set()  # children killed, not yet gone

    async def parse(self, raws: Sequence[bytes]) -> list[ParsedMail]:
        async with self._lock:
            if not self._failed:
                try:
                    return await self._in_child(raws)
                except Exception as exc:  # the fallback below parses every message anyway
                    self._failed = True
                    log.warning("parsing in a separate process failed (%s); in a thread now", exc)
                    await self._stop()
            return await asyncio.to_thread(parse_all, raws)

    async def close(self) -> None:
        async with self._lock:
            await self._stop()
            await asyncio.gather(*self._reaping)

    async def _in_child(self, raws: Sequence[bytes]) -> list[ParsedMail]:
        proc = self._proc or await self._start()
        try:
            return await self._exchange(proc, raws)
        except BaseException:
            # Cancelled or failed halfway through a frame: the pipe is out of step for good.
            self._proc = None
            if proc.returncode is None:
                proc.kill()
            # Reaped in a task of its own, so a cancelled parse does not wait for it; close()
            # does, so no child and none of its pipes outlive the worker.
            task = asyncio.ensure_future(_reap(proc))
            self._reaping.add(task)
            task.add_done_callback(self._reaping.discard)
            raise

    async def _exchange(
        self, proc: asyncio.subprocess.Process, raws: Sequence[bytes]
    ) -> list[ParsedMail]:
        assert proc.stdin is not None and proc.stdout is not None
        frame = pickle.dumps(list(raws), protocol=pickle.HIGHEST_PROTOCOL)
        proc.stdin.write(len(frame).to_bytes(LENGTH, "big") + frame)
        await proc.stdin.drain()
        size = int.from_bytes(await proc.stdout.readexactly(LENGTH), "big")
        if size > _MAX_FRAME:
            raise ValueError(f"an answer of {size} bytes")
        parsed = pickle.loads(await proc.stdout.readexactly(size))
        if not isinstance(parsed, list) or len(parsed) != len(raws):
            raise ValueError("an answer that does not match the batch")
        if not all(isinstance(mail, ParsedMail) for mail in parsed):
            raise ValueError("an answer that is not parsed mail")
        return parsed

    async def _start(self) -> asyncio.subprocess.Process:
        self._proc = await asyncio.create_subprocess_exec(
            *child_command(),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            limit=1 << 20,
        )
        return self._proc

    async def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # the child ends at the end of its input
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def _reap(proc: asyncio.subprocess.Process) -> None:
    """Wait for a killed child, reading what it left in its pipe, and close the pipes."""
    with contextlib.suppress(Exception):  # whatever its pipes say, it is gone
        await proc.communicate()
