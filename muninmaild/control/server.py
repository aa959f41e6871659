"""Serve the control protocol: connections, their limits, and one error barrier each.

Each connection is checked against the access policy, greeted, and then answered one request
line at a time. Limits keep any client from hurting the daemon: a request line may not exceed
`MAX_REQUEST_BYTES` (read with a bounded reader; the connection gets `too_large` and is closed,
since the rest of that line cannot be told from the next request), a connection waiting longer
than the idle timeout for its next request is closed, and at the connection limit the
connection idle longest makes room for the new one (so a crowd of idle clients cannot lock out
a real one); only when every connection is busy is a newcomer refused with `unavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from muninmaild import protocol
from muninmaild.control.listener import BACKLOG, Listener, PeerCred, peer_credentials

log = logging.getLogger(__name__)
Respond = Callable[[bytes], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Limits:
    max_connections: int = 64
    idle_timeout: float = 60.0
    max_request: int = protocol.MAX_REQUEST_BYTES


class _Throttled:
    """At most one warning a minute for each kind of refusal, with how many it stood for:
    a client retrying in a loop must not flood the journal."""

    def __init__(self, every_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._every = every_s
        self._clock = clock
        self._last: dict[object, float] = {}
        self._quiet: dict[object, int] = {}

    def warn(self, key: object, message: str, *args: object) -> None:
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._every:
            self._quiet[key] = self._quiet.get(key, 0) + 1
            return
        self._last[key] = now
        quiet = self._quiet.pop(key, 0)
        if quiet:
            message += f" ({quiet} more like it in the last {self._every:g} s not logged)"
        log.warning(message, *args)


class _Connection:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.busy = False
        self.idle_since = time.monotonic()


class ControlServer:
    def __init__(
        self, listener: Listener, respond: Respond, version: str, limits: Limits | None = None
    ) -> None:
        self._listener = listener
        self._respond = respond
        self._greeting = protocol.greeting(version)
        self._limits = limits or Limits()
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self._refusals = _Throttled()

    @property
    def connections(self) -> int:
        return len(self._connections)

    @property
    def busy(self) -> int:
        """Connections answering a request now (only these are never made room from)."""
        return sum(c.busy for c in self._connections)

    async def __aenter__(self) -> ControlServer:
        """Start accepting; the event loop serves the socket until the block ends."""
        try:
            self._server = await asyncio.start_unix_server(
                self._on_connect,
                sock=self._listener.sock,
                limit=self._limits.max_request,
                backlog=BACKLOG,
            )
        except BaseException:
            self._listener.close()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop accepting, end every connection (a running wait-idle too), remove the socket."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in list(self._connections):
            conn.writer.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._listener.close()

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection, one error barrier: nothing a client sends stops the daemon."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        conn = _Connection(writer)
        try:
            await self._answer_requests(reader, conn)
        except (OSError, TimeoutError) as exc:  # the peer went away or stopped reading
            log.debug("control connection dropped: %s", exc)
        except Exception:
            log.exception("control connection failed")
        finally:
            self._connections.discard(conn)
            if task is not None:
                self._tasks.discard(task)
            _close(writer)

    async def _answer_requests(self, reader: asyncio.StreamReader, conn: _Connection) -> None:
        peer = peer_credentials(conn.writer.get_extra_info("socket"))
        refusal = self._refusal(peer)
        if refusal:
            await self._send(conn, protocol.error_answer(None, *refusal))
            return
        self._connections.add(conn)
        await self._send(conn, self._greeting)
        while True:
            line = await self._next_request(reader, conn)
            if line is None:
                return
            if line.strip():
                conn.busy = True
                await self._send(conn, await self._respond(line))
                conn.busy, conn.idle_since = False, time.monotonic()

    def _refusal(self, peer: PeerCred) -> tuple[str, str] | None:
        policy = self._listener.policy
        if not policy.allows(peer):
            self._refusals.warn(
                ("forbidden", peer.uid),
                "refused control connection from uid %d (pid %d)",
                peer.uid,
                peer.pid,
            )
            return protocol.FORBIDDEN, policy.refusal(peer)
        if len(self._connections) >= self._limits.max_connections and not self._evict_idlest():
            self._refusals.warn(
                "busy", "refused control connection: %d busy connections", self.connections
            )
            return protocol.UNAVAILABLE, "too many connections are busy; try again shortly"
        return None

    def _evict_idlest(self) -> bool:
        idle = [c for c in self._connections if not c.busy]
        if not idle:
            return False
        oldest = min(idle, key=lambda c: c.idle_since)
        self._connections.discard(oldest)
        message = "closing this idle connection to make room for a new one"
        oldest.writer.write(
            protocol.encode(protocol.error_answer(None, protocol.UNAVAILABLE, message))
        )
        _close(oldest.writer)
        return True

    async def _next_request(self, reader: asyncio.StreamReader, conn: _Connection) -> bytes | None:
        """The next line, or None when the connection is to end (EOF, idle, too large)."""
        try:
            line = await asyncio.wait_for(reader.readline(), self._limits.idle_timeout)
        except TimeoutError:
            message = f"no request for {self._limits.idle_timeout:g} s; closing"
            await self._send(conn, protocol.error_answer(None, protocol.TIMEOUT, message))
            return None
        except ValueError:  # the bounded reader found no newline within the limit
            message = f"a request may be at most {self._limits.max_request} bytes; closing"
            await self._send(conn, protocol.error_answer(None, protocol.TOO_LARGE, message))
            return None
        return line or None

    async def _send(self, conn: _Connection, message: Mapping[str, Any]) -> None:
        conn.writer.write(protocol.encode(message))
        await asyncio.wait_for(conn.writer.drain(), self._limits.idle_timeout)


def _close(writer: asyncio.StreamWriter) -> None:
    # A client that reads nothing must not keep its socket open through an unsent buffer.
    with contextlib.suppress(Exception):
        if writer.transport.get_write_buffer_size():
            writer.transport.abort()
        else:
            writer.close()
