"""The metrics listener over real TCP on loopback: /metrics and nothing else, bounded requests,
and the socket systemd passes; and the `[metrics]` configuration that switches it on."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from muninmaild.config import loader, show
from muninmaild.config.settings import MetricsSettings, parse_listen
from muninmaild.control.listener import activated_socket
from muninmaild.errors import ConfigError, StoreError
from muninmaild.service import metrics_http
from muninmaild.service.metrics_http import MetricsServer, open_metrics_socket

TEXT = "# HELP muninmail_up x\n# TYPE muninmail_up gauge\nmuninmail_up 1.0\n"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Scrapes:
    def __init__(self) -> None:
        self.count = 0
        self.error: Exception | None = None
        self.gate: asyncio.Event | None = None
        self.all_waiting = asyncio.Event()  # set once `waiting_for` scrapes wait at the gate
        self.waiting_for = 0

    async def __call__(self) -> dict[str, Any]:
        self.count += 1
        if self.count == self.waiting_for:
            self.all_waiting.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return {"content_type": CONTENT_TYPE, "text": TEXT}


@pytest.fixture
async def served() -> AsyncIterator[tuple[MetricsServer, Scrapes]]:
    scrapes = Scrapes()
    async with MetricsServer(metrics_http.bind("127.0.0.1", 0), scrapes) as server:
        yield server, scrapes


async def ask(server: MetricsServer, request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection(*server.address)
    writer.write(request)
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)  # the server closes after one answer
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), fields, body


def get(path: str, method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n".encode()


async def test_get_metrics_answers_the_exposition_and_closes(
    served: tuple[MetricsServer, Scrapes],
) -> None:
    server, scrapes = served
    status, fields, body = await ask(server, get("/metrics?x=1"))
    assert (status, body.decode()) == (200, TEXT)
    assert fields["Content-Type"] == CONTENT_TYPE
    assert fields["Content-Length"] == str(len(TEXT)) and fields["Connection"] == "close"
    status, fields, body = await ask(server, get("/metrics", "HEAD"))
    assert (status, body) == (200, b"") and fields["Content-Length"] == str(len(TEXT))
    assert scrapes.count == 2


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        (get("/"), 404),
        (get("/metrics/../control"), 404),
        (get("/debug"), 404),
        (get("/metrics", "POST"), 405),
        (get("/metrics", "DELETE"), 405),
        (b"GET /metrics\r\n\r\n", 400),  # HTTP/0.9
        (b"\x16\x03\x01\x02\x00\r\n\r\n", 400),  # a TLS client hello, more or less
        (b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431),
    ],
)
async def test_anything_but_get_of_metrics_is_refused_without_a_scrape(
    served: tuple[MetricsServer, Scrapes], request_: bytes, status: int
) -> None:
    server, scrapes = served
    got, fields, _ = await ask(server, request_)
    assert got == status
    if status == 405:
        assert fields["Allow"] == "GET, HEAD"
    assert scrapes.count == 0


async def test_a_state_that_cannot_be_read_is_503_and_the_next_scrape_works(
    served: tuple[MetricsServer, Scrapes], caplog: pytest.LogCaptureFixture
) -> None:
    server, scrapes = served
    scrapes.error = StoreError("database error: disk I/O error")
    status, _, body = await ask(server, get("/metrics"))
    assert status == 503 and b"journal" in body
    assert "disk I/O error" in caplog.text
    scrapes.error = None
    assert (await ask(server, get("/metrics")))[0] == 200


async def test_a_silent_client_does_not_hold_up_the_others(
    served: tuple[MetricsServer, Scrapes],
) -> None:
    server, _ = served
    silent = [await asyncio.open_connection(*server.address) for _ in range(3)]
    assert (await ask(server, get("/metrics")))[0] == 200
    for _, writer in silent:
        writer.close()


async def test_beyond_the_connection_limit_newcomers_are_closed_at_once(
    served: tuple[MetricsServer, Scrapes],
) -> None:
    server, scrapes = served
    scrapes.gate = asyncio.Event()
    scrapes.waiting_for = metrics_http.MAX_CONNECTIONS
    busy = [
        asyncio.create_task(ask(server, get("/metrics")))
        for _ in range(metrics_http.MAX_CONNECTIONS)
    ]
    await asyncio.wait_for(scrapes.all_waiting.wait(), 10)
    reader, writer = await asyncio.open_connection(*server.address)
    assert await asyncio.wait_for(reader.read(), 10) == b""  # closed without an answer
    writer.close()
    scrapes.gate.set()
    assert [r[0] for r in await asyncio.gather(*busy)] == [200] * metrics_http.MAX_CONNECTIONS


# -- where the listener comes from ------------------------------------------------------------


def _passed(*socks: socket.socket) -> int:
    """The sockets as systemd passes them: on consecutive descriptors; the first is returned."""
    first = 100
    while any(_open(fd) for fd in range(first, first + len(socks))):
        first += len(socks)
    for offset, sock in enumerate(socks):
        os.dup2(sock.fileno(), first + offset, inheritable=False)
        sock.close()
    return first


def _open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_a_socket_named_metrics_from_systemd_is_the_listener_and_never_the_control_socket(
    tmp_path: Path,
) -> None:
    tcp = socket.create_server(("127.0.0.1", 0))
    port = tcp.getsockname()[1]
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(tmp_path / "c.sock"))
    unix.listen()
    # systemd passes them in its own order: here the metrics socket first, as seen under 252.
    first = _passed(tcp, unix)
    env = {
        "LISTEN_PID": str(os.getpid()),
        "LISTEN_FDS": "2",
        "LISTEN_FDNAMES": "metrics:muninmaild.socket",
    }
    metrics = open_metrics_socket(MetricsSettings("127.0.0.1:1"), env=env, first_fd=first)
    control = activated_socket(env, first_fd=first)
    assert metrics is not None and control is not None
    try:
        assert metrics.getsockname()[1] == port  # not the configured port 1
        assert control.family == socket.AF_UNIX
        assert not metrics.get_inheritable()
    finally:
        metrics.close()
        control.close()


def test_a_metrics_socket_alone_leaves_the_control_socket_to_be_bound() -> None:
    tcp = _passed(socket.create_server(("127.0.0.1", 0)))
    env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "metrics"}
    try:
        assert activated_socket(dict(env), first_fd=tcp) is None
    finally:
        os.close(tcp)


def test_a_unix_socket_named_metrics_is_refused() -> None:
    unix = _passed(socket.socket(socket.AF_UNIX))
    env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "metrics"}
    with pytest.raises(ConfigError, match="not a TCP socket"):
        open_metrics_socket(MetricsSettings(), env=env, first_fd=unix)


def test_no_listen_and_no_socket_means_no_listener() -> None:
    assert open_metrics_socket(MetricsSettings(), env={}) is None


def test_an_address_in_use_stops_the_start_naming_the_key() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(
            ConfigError, match=rf"metrics.listen: cannot listen on 127.0.0.1:{port}"
        ):
            open_metrics_socket(MetricsSettings(f"127.0.0.1:{port}"), env={})


def test_ipv6_loopback_is_bound_as_written() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        sock = metrics_http.bind("::1", 0)
    except ConfigError as exc:
        pytest.skip(f"::1 cannot be bound here: {exc}")
    with sock:
        assert sock.family == socket.AF_INET6 and sock.getsockname()[0] == "::1"


# -- the configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("9464", ("127.0.0.1", 9464)),
        (":9464", ("127.0.0.1", 9464)),
        ("[::1]:9464", ("::1", 9464)),
        ("0.0.0.0:9100", ("0.0.0.0", 9100)),
        ("localhost:9464", ("localhost", 9464)),
    ],
)
def test_listen_addresses(text: str, address: tuple[str, int]) -> None:
    assert parse_listen(text) == address


@pytest.mark.parametrize("text", ["127.0.0.1", "127.0.0.1:0", "host:70000", "a b:1", "[::1:9464"])
def test_bad_listen_addresses_are_refused_naming_the_key(tmp_path: Path, text: str) -> None:
    path = tmp_path / "m.toml"
    path.write_text(f'[metrics]\nlisten = "{text}"\n')
    with pytest.raises(ConfigError, match=r"metrics\.listen"):
        loader.load(path, env={})


def test_metrics_are_off_by_default_and_shown_by_check_config(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text("")
    assert loader.load(path, env={}).metrics.address is None
    path.write_text('[metrics]\nlisten = "127.0.0.1:9464"\n')
    settings = loader.load(path, env={})
    assert settings.metrics.address == ("127.0.0.1", 9464)
    assert '[metrics]\nlisten = "127.0.0.1:9464"' in show.render(settings)
    path.write_text('[metrics]\nlisten_on = "9464"\n')
    with pytest.raises(ConfigError, match=r"metrics\.listen_on: unknown key"):
        loader.load(path, env={})
