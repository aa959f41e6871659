"""Parsing in a process of its own, for the big batches of an initial sync.

Parsing is the largest share of an initial sync's CPU (0.17 ms a message, more than fetching
and storing it), and under the GIL a thread cannot run it beside the event loop that talks IMAP
and writes the queue. A child process can, on another core:
`python -m muninmaild.mail.parse_process`, fed batches of raw messages over a pipe
(length-prefixed pickles, between two processes of ours).

The child imports only the parser and the standard library. A big fetch starts two of them,
taking its batches in turn, and stops them after it. Anything that goes wrong with one (it
cannot start, dies on a message, answers nonsense) is logged once and its batches are parsed in
a thread instead: never a message lost.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import sys
from collections.abc import Sequence

from muninmaild.mail.parse import parse_message
from muninmaild.records import ParsedMail

log = logging.getLogger(__name__)
_LENGTH = 8  # bytes of the big-endian length before every frame
_MAX_FRAME = 1 << 31


def parse_all(raws: Sequence[bytes]) -> list[ParsedMail]:
    return [parse_message(raw) for raw in raws]


class ParseWorker:
    """One child process; `parse()` one batch at a time; `close()` ends the child."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self._failed = False

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

    async def _in_child(self, raws: Sequence[bytes]) -> list[ParsedMail]:
        proc = self._proc or await self._start()
        try:
            return await self._exchange(proc, raws)
        except BaseException:
            # Cancelled or failed halfway through a frame: the pipe is out of step for good.
            self._proc = None
            if proc.returncode is None:
                proc.kill()
            raise

    async def _exchange(
        self, proc: asyncio.subprocess.Process, raws: Sequence[bytes]
    ) -> list[ParsedMail]:
        assert proc.stdin is not None and proc.stdout is not None
        frame = pickle.dumps(list(raws), protocol=pickle.HIGHEST_PROTOCOL)
        proc.stdin.write(len(frame).to_bytes(_LENGTH, "big") + frame)
        await proc.stdin.drain()
        size = int.from_bytes(await proc.stdout.readexactly(_LENGTH), "big")
        if size > _MAX_FRAME:
            raise ValueError(f"an answer of {size} bytes")
        parsed = pickle.loads(await proc.stdout.readexactly(size))
        if not isinstance(parsed, list) or len(parsed) != len(raws):
            raise ValueError("an answer that does not match the batch")
        if not all(isinstance(mail, ParsedMail) for mail in parsed):
            raise ValueError("an answer that is not parsed mail")
        return parsed

    async def _start(self) -> asyncio.subprocess.Process:
        # -I: the installed package only, never a `muninmaild` folder in the working directory.
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-m",
            __name__,
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


def _serve() -> None:
    """The child: frames in on stdin, frames out on stdout, until stdin ends."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = stdin.read(_LENGTH)
        if len(head) < _LENGTH:
            return
        raws = pickle.loads(stdin.read(int.from_bytes(head, "big")))
        answer = pickle.dumps(parse_all(raws), protocol=pickle.HIGHEST_PROTOCOL)
        stdout.write(len(answer).to_bytes(_LENGTH, "big") + answer)
        stdout.flush()


if __name__ == "__main__":
    _serve()
