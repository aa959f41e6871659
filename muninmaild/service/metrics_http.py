"""The metrics listener: `GET /metrics` over HTTP, for Prometheus to scrape (docs/monitoring.md).

Off unless `[metrics] listen` names an address or systemd passes a socket named `metrics`
(`muninmaild-metrics.socket`). A small server in the daemon's own event loop: it serves
`/metrics` and nothing else (any other path is 404, any other method 405), one request per
connection, a bounded request head that must arrive in time, and a few connections at once, so
a stuck or hostile client costs a socket, never the loop. It has no authentication: it listens on
loopback unless configured otherwise, and the systemd socket unit admits loopback peers only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any

from muninmaild.config.settings import MetricsSettings
from muninmaild.errors import ConfigError, StoreError

log = logging.getLogger(__name__)
KEY = "metrics.listen"
FD_NAME = "metrics"
PATH = "/metrics"
MAX_HEAD_BYTES = 8 * 1024
HEAD_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 8
BACKLOG = 64
Scrape = Callable[[], Awaitable[dict[str, Any]]]


def open_metrics_socket(
    settings: MetricsSettings, env: Mapping[str, str] | None = None, first_fd: int = 3
) -> socket.socket | None:
    """The socket systemd passed as `metrics`, else one bound at `listen`, else None (off).

    Call it before the control socket is taken: that removes the activation variables.
    """
    env = os.environ if env is None else env
    sock = activated_metrics_socket(env, first_fd)
    if sock is not None:
        if settings.listen:
            log.info("metrics: systemd passed the listener; %s is not used", KEY)
        return sock
    address = settings.address
    return None if address is None else bind(*address)


def activated_metrics_socket(env: Mapping[str, str], first_fd: int = 3) -> socket.socket | None:
    if env.get("LISTEN_PID") != str(os.getpid()):
        return None
    count = int(env.get("LISTEN_FDS", "0") or "0")
    names = env.get("LISTEN_FDNAMES", "").split(":")[:count]
    if FD_NAME not in names:
        return None
    sock = socket.socket(fileno=first_fd + names.index(FD_NAME))
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or sock.type != socket.SOCK_STREAM:
        sock.close()
        raise ConfigError(KEY, "the socket systemd passed as metrics is not a TCP socket")
    sock.set_inheritable(False)
    sock.setblocking(False)
    return sock


def bind(host: str, port: int) -> socket.socket:
    where = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
    try:
        family, *_, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.create_server(address, family=family, backlog=BACKLOG)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(KEY, f"cannot listen on {where}: {reason}") from None
    sock.setblocking(False)
    return sock


class MetricsServer:
    """Serves `scrape()`'s answer (`content_type`, `text`) at /metrics while entered."""

    def __init__(self, sock: socket.socket, scrape: Scrape) -> None:
        self._sock = sock
        self._scrape = scrape
        self._server: asyncio.Server | None = None
        self._active = 0

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    async def __aenter__(self) -> MetricsServer:
        self._server = await asyncio.start_server(
            self._serve, sock=self._sock, limit=MAX_HEAD_BYTES
        )
        log.info("metrics: serving http://%s:%d%s", *self.address, PATH)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self._sock.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection, one request: its own error barrier."""
        if self._active >= MAX_CONNECTIONS:
            writer.close()
            return
        self._active += 1
        try:
            writer.write(await self._respond(reader))
            await writer.drain()
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the client went away or never finished its request: nothing to answer
        except Exception:
            log.exception("metrics: a request failed")
        finally:
            self._active -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _respond(self, reader: asyncio.StreamReader) -> bytes:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
        except (asyncio.LimitOverrunError, ValueError):
            return response(431, "the request head is too large")
        method, path = parse_request_line(head)
        if path is None:
            return response(400, "not an HTTP/1 request")
        if path != PATH:
            return response(404, f"muninmaild serves {PATH} only")
        if method not in ("GET", "HEAD"):
            return response(405, "GET or HEAD only", ("Allow", "GET, HEAD"))
        try:
            found = await self._scrape()
        except Exception as exc:
            if isinstance(exc, StoreError):
                log.error("metrics: cannot read the daemon's state: %s", exc)
            else:
                log.exception("metrics: cannot read the daemon's state")
            return response(503, "muninmaild cannot read its state now; the journal says why")
        body = str(found["text"]).encode("utf-8")
        return response(
            200, body, ("Content-Type", str(found["content_type"])), head=method == "HEAD"
        )


def parse_request_line(head: bytes) -> tuple[str, str | None]:
    """Method and path (without the query) of a request head; path None if it is no request."""
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
        return "", None
    return parts[0], parts[1].split("?", 1)[0]


REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


def response(
    status: int, body: str | bytes, *headers: tuple[str, str], head: bool = False
) -> bytes:
    data = body.encode("utf-8") + b"\n" if isinstance(body, str) else body
    fields = {"Content-Type": "text/plain; charset=utf-8"} | dict(headers)
    fields |= {"Content-Length": str(len(data)), "Connection": "close"}
    lines = [f"HTTP/1.1 {status} {REASONS[status]}", *(f"{k}: {v}" for k, v in fields.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else data)
