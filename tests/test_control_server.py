"""The control server in-process, against a real SQLite queue: socket set-up, peers, limits,
and every command's answer."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import json
import logging
import os
import socket
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.config.settings import AccountSettings, Settings
from muninmaild.control.commands import Commands
from muninmaild.control.listener import (
    AccessPolicy,
    PeerCred,
    activated_socket,
    open_listener,
)
from muninmaild.control.server import ControlServer, Limits, _Throttled
from muninmaild.errors import ConfigError
from muninmaild.records import ReloadOutcome
from muninmaild.redact import Redactor
from muninmaild.service.compose import Parts, build
from tests.factories import claim_one, complete_one, new_message
from tests.waiting import until

NO_SUCH_GROUP = "muninmail-test-no-such-group"


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.next_id = 0

    @classmethod
    async def connect(cls, path: Path) -> tuple[Client, dict[str, Any]]:
        reader, writer = await asyncio.open_unix_connection(str(path))
        client = cls(reader, writer)
        return client, await client.read()

    async def read(self) -> dict[str, Any]:
        line = await asyncio.wait_for(self.reader.readline(), 5)
        assert line.endswith(b"\n"), line
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def send(self, raw: bytes) -> dict[str, Any]:
        self.writer.write(raw)
        await self.writer.drain()
        return await self.read()

    async def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        self.next_id += 1
        request = {"id": self.next_id, "cmd": cmd, "args": args}
        answer = await self.send(json.dumps(request).encode() + b"\n")
        assert answer["id"] == self.next_id
        return answer

    async def result(self, cmd: str, **args: Any) -> dict[str, Any]:
        answer = await self.call(cmd, **args)
        assert answer["ok"], answer
        result: dict[str, Any] = answer["result"]
        return result

    async def at_eof(self) -> bool:
        return await asyncio.wait_for(self.reader.read(), 5) == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


@dataclass
class FakeReload:
    """Stands in for the daemon's reloader: gives the queued outcomes, or a clean reload."""

    outcomes: list[ReloadOutcome] = field(default_factory=list)
    calls: int = 0

    async def __call__(self) -> ReloadOutcome:
        self.calls += 1
        return self.outcomes.pop(0) if self.outcomes else ReloadOutcome()


@dataclass
class Served:
    path: Path
    server: ControlServer
    parts: Parts
    reload: FakeReload


@pytest.fixture
async def parts(sqlite_engine: AsyncEngine, tmp_path: Path) -> AsyncIterator[Parts]:
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    account = AccountSettings(name="work", source="maildir", path=maildir)
    built = build(Settings(accounts=(account,)), sqlite_engine, Redactor(), once=False)
    yield built
    await built.backend.aclose()


@contextlib.asynccontextmanager
async def serving(
    parts: Parts, path: Path, limits: Limits, policy: AccessPolicy | None = None
) -> AsyncIterator[Served]:
    reload = FakeReload()
    listener = open_listener(path, NO_SUCH_GROUP, env={})
    listener.policy = policy or listener.policy
    server = ControlServer(listener, Commands(parts, reload).respond, "9.9.9", limits)
    async with server:
        yield Served(path, server, parts, reload)


@pytest.fixture
async def served(parts: Parts, tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(parts, tmp_path / "run" / "c.sock", Limits(8, 5.0)) as s:
        yield s


@pytest.fixture
async def client(served: Served) -> AsyncIterator[Client]:
    c, _ = await Client.connect(served.path)
    yield c
    await c.close()


# -- the socket -------------------------------------------------------------------------------


async def test_socket_is_0660_in_a_new_directory_with_the_fallback_group(
    parts: Parts, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    path = tmp_path / "run" / "c.sock"
    async with serving(parts, path, Limits()):
        info = os.stat(path)
        assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o660
        assert info.st_gid == os.getgid()
        assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o755
    assert f"group {NO_SUCH_GROUP} does not exist" in caplog.text
    assert not path.exists()


def test_socket_gets_the_configured_group(tmp_path: Path) -> None:
    listener = open_listener(tmp_path / "c.sock", "nogroup", env={})
    try:
        assert os.stat(tmp_path / "c.sock").st_gid == grp.getgrnam("nogroup").gr_gid
        assert listener.policy.group_name == "nogroup"
    finally:
        listener.close()


def test_a_directory_writable_by_others_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(ConfigError, match="writable by others") as caught:
        open_listener(shared / "c.sock", NO_SUCH_GROUP, env={})
    assert caught.value.key == "daemon.control_socket"
    assert not (shared / "c.sock").exists()


def test_a_path_too_long_for_a_socket_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="longer than the 107 bytes"):
        open_listener(tmp_path / ("x" * 120) / "c.sock", NO_SUCH_GROUP, env={})


def test_a_stale_socket_is_replaced_and_a_live_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "c.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # bound, never listening: what a killed daemon leaves
    listener = open_listener(path, NO_SUCH_GROUP, env={})
    try:
        with pytest.raises(ConfigError, match="already listening"):
            open_listener(path, NO_SUCH_GROUP, env={})
    finally:
        listener.close()
    path.write_text("not a socket")
    with pytest.raises(ConfigError, match="not a socket"):
        open_listener(path, NO_SUCH_GROUP, env={})


def test_socket_activation_takes_the_passed_socket(tmp_path: Path) -> None:
    path = tmp_path / "activated.sock"
    with socket.socket(socket.AF_UNIX) as original:
        original.bind(str(path))
        original.listen()
        fd = os.dup(original.fileno())
    env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "control"}
    listener = open_listener(tmp_path / "unused.sock", NO_SUCH_GROUP, env=env, first_fd=fd)
    try:
        assert listener.sock.getsockname() == str(path)
        assert listener.path is None and env == {}
        assert not listener.sock.get_inheritable()
    finally:
        listener.close()
    assert path.exists()  # systemd's socket: not ours to remove
    assert not (tmp_path / "unused.sock").exists()


def test_socket_activation_for_another_process_is_ignored() -> None:
    env = {"LISTEN_PID": "1", "LISTEN_FDS": "1"}
    assert activated_socket(env) is None
    assert env == {"LISTEN_PID": "1", "LISTEN_FDS": "1"}


def test_socket_activation_refuses_a_datagram_socket() -> None:
    dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    fd = dgram.detach()
    env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "1"}
    with pytest.raises(ConfigError, match="not a Unix stream socket"):
        activated_socket(env, first_fd=fd)


# -- who may connect ----------------------------------------------------------------------------

POLICY = AccessPolicy(
    daemon_uid=990, group_gid=980, group_name="muninmail", member_uids=frozenset({1001})
)


@pytest.mark.parametrize(
    ("peer", "allowed"),
    [
        (PeerCred(1, 0, 0), True),  # root
        (PeerCred(1, 990, 990), True),  # the daemon's own user
        (PeerCred(1, 1000, 980), True),  # primary group is the socket's
        (PeerCred(1, 1000, 1000, frozenset({27, 980})), True),  # a supplementary group
        (PeerCred(1, 1001, 1001), True),  # listed as a member in the group database
        (PeerCred(1, 65534, 65534), False),  # nobody
        (PeerCred(1, 1000, 1000, frozenset({27})), False),
    ],
)
def test_access_policy(peer: PeerCred, allowed: bool) -> None:
    assert POLICY.allows(peer) is allowed


class RefuseAll(AccessPolicy):
    def allows(self, peer: PeerCred) -> bool:
        return False


async def test_a_refused_peer_gets_forbidden_instead_of_the_greeting(
    parts: Parts, tmp_path: Path
) -> None:
    refuse = RefuseAll(990, 980, "muninmail")
    async with serving(parts, tmp_path / "c.sock", Limits(), refuse) as s:
        c, first = await Client.connect(s.path)
        try:
            assert first["ok"] is False and first["error"]["code"] == "forbidden"
            assert "uid 0 may not steer muninmaild" in first["error"]["message"]
            assert "group muninmail" in first["error"]["message"]
            assert await c.at_eof()
            assert s.server.connections == 0
        finally:
            await c.close()


async def test_a_peer_refused_again_and_again_is_logged_once_a_minute(
    parts: Parts, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    refuse = RefuseAll(990, 980, "muninmail")
    async with serving(parts, tmp_path / "c.sock", Limits(), refuse) as s:
        for _ in range(30):
            c, first = await Client.connect(s.path)
            assert first["error"]["code"] == "forbidden"  # every one is still answered
            await c.close()
    lines = [r for r in caplog.records if "refused control connection" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING


def test_the_next_refusal_logged_says_how_many_were_not(caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    throttled = _Throttled(every_s=60, clock=lambda: now[0])
    for _ in range(5):
        throttled.warn("busy", "refused control connection: %d busy connections", 64)
    now[0] += 59.5  # still within the minute
    throttled.warn("busy", "refused control connection: %d busy connections", 64)
    now[0] += 0.5
    throttled.warn("busy", "refused control connection: %d busy connections", 64)
    said = [r.getMessage() for r in caplog.records]
    assert said == [
        "refused control connection: 64 busy connections",
        "refused control connection: 64 busy connections (5 more like it in the last 60 s "
        "not logged)",
    ]


# -- the connection -----------------------------------------------------------------------------


async def test_greeting_then_answers_and_bad_lines_keep_the_connection(served: Served) -> None:
    c, greeting = await Client.connect(served.path)
    try:
        assert greeting == {"server": "muninmaild", "version": "9.9.9", "protocol": 1}
        assert await c.result("ping") == {"pong": True}
        bad = await c.send(b"this is not json\n")
        assert (bad["id"], bad["error"]["code"]) == (None, "bad_request")
        unknown = await c.send(b'{"id": "x", "cmd": "explode"}\n')
        assert (unknown["id"], unknown["error"]["code"]) == ("x", "unknown_command")
        typed = await c.call("list", limit="ten")
        assert typed["error"]["code"] == "bad_request"
        c.writer.write(b"\n\n")  # blank lines are skipped, not answered
        assert await c.result("ping") == {"pong": True}
    finally:
        await c.close()


async def test_a_line_over_the_limit_gets_too_large_and_closes(served: Served) -> None:
    c, _ = await Client.connect(served.path)
    other, _ = await Client.connect(served.path)
    try:
        c.writer.write(b"x" * (70 * 1024))
        answer = await c.read()
        assert answer["error"]["code"] == "too_large" and "65536" in answer["error"]["message"]
        assert await c.at_eof()
        assert await other.result("ping") == {"pong": True}
    finally:
        await c.close()
        await other.close()


async def test_an_idle_connection_is_closed(parts: Parts, tmp_path: Path) -> None:
    async with serving(parts, tmp_path / "c.sock", Limits(idle_timeout=0.2)) as s:
        c, _ = await Client.connect(s.path)
        try:
            assert await c.result("ping") == {"pong": True}
            timeout = await c.read()
            assert timeout["error"]["code"] == "timeout"
            assert await c.at_eof()
        finally:
            await c.close()


async def test_at_the_limit_the_idlest_connection_makes_room(parts: Parts, tmp_path: Path) -> None:
    async with serving(parts, tmp_path / "c.sock", Limits(max_connections=2)) as s:
        first, _ = await Client.connect(s.path)
        second, _ = await Client.connect(s.path)
        third, _ = await Client.connect(s.path)
        try:
            evicted = await first.read()
            assert evicted["error"]["code"] == "unavailable" and await first.at_eof()
            assert await second.result("ping") == {"pong": True}
            assert await third.result("ping") == {"pong": True}
            assert s.server.connections == 2
        finally:
            for c in (first, second, third):
                await c.close()


async def test_when_every_connection_is_busy_a_newcomer_gets_unavailable(
    parts: Parts, tmp_path: Path
) -> None:
    await parts.repo.add_messages([new_message(1)])  # nothing processes it: never idle
    async with serving(parts, tmp_path / "c.sock", Limits(max_connections=1)) as s:
        busy, _ = await Client.connect(s.path)
        try:
            busy.writer.write(b'{"id": 1, "cmd": "wait-idle", "args": {"timeout": 30}}\n')
            await busy.writer.drain()
            await until(lambda: s.server.busy == 1)
            late, first = await Client.connect(s.path)
            await late.close()
            assert first["error"]["code"] == "unavailable"
            assert "busy" in first["error"]["message"]
        finally:
            await busy.close()


async def test_closing_the_server_ends_a_running_wait(parts: Parts, tmp_path: Path) -> None:
    await parts.repo.add_messages([new_message(1)])
    async with serving(parts, tmp_path / "c.sock", Limits()) as s:
        c, _ = await Client.connect(s.path)
        c.writer.write(b'{"id": 1, "cmd": "wait-idle", "args": {"timeout": 60}}\n')
        await c.writer.drain()
        await until(lambda: s.server.busy == 1)
    try:
        assert await c.at_eof()
    finally:
        await c.close()


# -- the commands -------------------------------------------------------------------------------


async def test_status_has_the_fields_of_the_design(client: Client, served: Served) -> None:
    await served.parts.repo.add_messages([new_message(1)])
    status = await client.result("status")
    assert {"version", "pid", "uptime_s", "paused", "queue", "accounts", "model"} <= set(status)
    assert status["pid"] == os.getpid()
    assert status["paused"] == {"fetcher": False, "processor": False}
    assert status["queue"] == {"pending": 1, "processing": 0, "completed": 0, "failed": 0}
    (account,) = status["accounts"]
    assert account["name"] == "work" and account["state"] == "starting"
    assert {"last_fetch_at", "last_error", "caught_up"} <= set(account)
    assert status["model"] == {
        "backend": "rules",
        "model": "rules-v1",
        "tokens_in": 0,
        "tokens_out": 0,
        "hold": None,  # free to call the model
        "today": {
            "requests": 0,
            "tokens": 0,
            "requests_limit": None,
            "tokens_limit": None,
            "skipped": 0,
            "cached": 0,
        },
        "skip": [],  # the rules backend answers offline: nothing to skip, nothing to cache
        "cache": None,
    }
    assert status["last_error"] is None


async def test_status_shows_a_hold_and_resume_lifts_it(client: Client, served: Served) -> None:
    served.parts.processor.hold.account("the model service does not know it (HTTP 404)")
    hold = (await client.result("status"))["model"]["hold"]
    assert hold["reason"] == "account" and "HTTP 404" in hold["message"]
    assert hold["until"].endswith("Z")
    await client.result("resume", what="processor")
    assert (await client.result("status"))["model"]["hold"] is None


async def test_pause_and_resume_are_stored(client: Client, served: Served) -> None:
    assert (await client.result("pause", what="processor"))["paused"] == {
        "fetcher": False,
        "processor": True,
    }
    assert await served.parts.repo.paused() == {"fetcher": False, "processor": True}
    assert (await client.result("pause"))["paused"] == {"fetcher": True, "processor": True}
    assert (await client.result("resume", what="fetcher"))["paused"]["fetcher"] is False
    assert await served.parts.repo.paused() == {"fetcher": False, "processor": True}


async def test_requeue_list_show_and_todos(client: Client, served: Served) -> None:
    repo = served.parts.repo
    await repo.add_messages([new_message(1), new_message(2)])
    claimed = await claim_one(repo, "t#1", 60)
    assert claimed is not None
    await repo.fail(claimed.id, "t#1", "the model refused")

    failed = (await client.result("list", status="failed"))["messages"]
    assert [m["id"] for m in failed] == [claimed.id]
    assert failed[0]["last_error"] == "the model refused" and failed[0]["attempts"] == 1
    shown = (await client.result("show", id=claimed.id))["message"]
    assert shown["status"] == "failed" and shown["subject"] == "Message 2"  # newest first
    assert shown["tokens"] == {"in": 0, "out": 0} and shown["summary"] is None
    status = await client.result("status")
    assert status["last_error"]["message"] == "the model refused"

    assert await client.result("requeue", failed=True) == {"requeued": 1, "matched": 1}
    assert (await client.result("show", id=claimed.id))["message"]["attempts"] == 0
    assert await client.result("requeue", ids=[claimed.id, 999]) == {"requeued": 1, "matched": 1}
    assert await client.result("todos") == {"todos": []}
    missing = await client.call("show", id=999)
    assert missing["error"] == {"code": "not_found", "message": "there is no message 999"}


async def test_list_details_carry_results(client: Client, served: Served) -> None:
    from muninmaild.records import Analysis, Todo, TokenUsage

    repo = served.parts.repo
    await repo.add_messages([new_message(1)])
    msg = await claim_one(repo, "t#1", 60)
    assert msg is not None
    analysis = Analysis("Ann asks.", ("urgent",), (Todo("Reply", "high", None),))
    await complete_one(repo, msg.id, "t#1", analysis, TokenUsage(7, 3), "m")
    (row,) = (await client.result("list", details=True))["messages"]
    assert row["summary"] == "Ann asks." and row["flags"] == ["urgent"]
    (todo,) = row["todos"]
    assert todo == {"task": "Reply", "priority": "high", "due": None} | {
        "todo_id": todo["todo_id"],
        "done": False,
    }
    (plain,) = (await client.result("list"))["messages"]
    assert "summary" not in plain
    (line,) = (await client.result("todos"))["todos"]
    # The fields it always had, and those added with to-dos that can be closed.
    assert line == {
        "id": msg.id,
        "subject": "Message 1",
        "from": "Ann <ann@example.com>",
        "task": "Reply",
        "priority": "high",
        "due": None,
    } | {
        "todo_id": todo["todo_id"],
        "account": "work",
        "done": False,
        "done_at": None,
        "overdue": False,
    }
    assert (await client.result("status"))["model"]["tokens_in"] == 7


async def test_reload_answers_with_what_it_did(client: Client, served: Served) -> None:
    served.reload.outcomes += [
        ReloadOutcome(restart_needed=("accounts", "ai")),
        ReloadOutcome(refused="daemon.log_level: must be one of debug, info, warning, error"),
    ]
    answer = await client.result("reload")
    assert answer["reloaded"] is True and answer["restart_needed"] == ["accounts", "ai"]
    refused = await client.call("reload")
    assert refused["ok"] is False and refused["error"]["code"] == "invalid_config"
    message = refused["error"]["message"]
    assert message.startswith("reload refused, the running configuration stays: daemon.log_level")
    assert (await client.result("ping")) == {"pong": True}  # the connection stays open


async def test_fetch_now_reload_and_version(client: Client, served: Served) -> None:
    assert await client.result("fetch-now") == {"accounts": ["work"], "fetcher_paused": False}
    assert (await client.result("fetch-now", account="work"))["accounts"] == ["work"]
    unknown = await client.call("fetch-now", account="home")
    assert (
        unknown["error"]["code"] == "not_found" and "accounts: work" in unknown["error"]["message"]
    )
    assert served.reload.calls == 0
    clean = {"reloading": True, "reloaded": True, "restart_needed": []}
    assert await client.result("reload") == clean
    assert served.reload.calls == 1
    assert await client.result("version") == {
        "name": "muninmaild",
        "version": "0.1.0",
        "protocol": 1,
    }


async def test_wait_idle_waits_for_fetchers_and_the_queue(client: Client, served: Served) -> None:
    waiting = await client.call("wait-idle", timeout=0.3)
    assert waiting["error"]["code"] == "timeout"
    assert "account work is starting" in waiting["error"]["message"]
    fetcher = served.parts.fetchers[0]
    fetcher.status.state, fetcher.status.caught_up = "idle", True
    assert (await client.result("wait-idle", timeout=1))["idle"] is True

    repo = served.parts.repo
    await repo.add_messages([new_message(1)])
    msg = await claim_one(repo, "t#1", 60)
    assert msg is not None
    await repo.retry(msg.id, "t#1", "model down", 600)
    later = await client.call("wait-idle", timeout=0.2)
    assert "1 message(s) pending or processing" in later["error"]["message"]
    assert (await client.result("wait-idle", timeout=1, ignore_retries=True))["idle"] is True


async def test_an_internal_failure_is_an_answer_and_the_connection_lives_on(
    client: Client, served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken() -> None:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(served.parts.repo, "counts", broken)
    answer = await client.call("status")
    assert answer["error"]["code"] == "unavailable"
    assert "journal" in answer["error"]["message"]
    assert "locked" not in answer["error"]["message"]
    assert await client.result("ping") == {"pong": True}
