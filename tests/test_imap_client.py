"""The aioimaplib subclasses: the same verdicts as aioimaplib's own code, without its costs."""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Iterator

import aioimaplib
import pytest

from muninmaild.config.settings import AccountSettings
from muninmaild.fetch.imap.client import Client, ClientProtocol, FetchCommand
from muninmaild.fetch.imap.connection import ImapConnection
from tests.peers.dovecot import free_port


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    made = asyncio.new_event_loop()
    yield made
    made.close()


def answer_lines(rng: random.Random) -> Iterator[bytes | bytearray]:
    """Lines of a FETCH answer as aioimaplib hands them over, well-formed or not."""
    for n in range(rng.randint(1, 30)):
        kind = rng.random()
        if kind < 0.4:
            yield f"{n + 1} FETCH (UID {n + 10} RFC822.SIZE {rng.randint(1, 99999)}".encode()
        elif kind < 0.6:
            yield f"{n + 1} FETCH (UID {n + 10} BODY[] {{{rng.randint(1, 999)}}}".encode()
        elif kind < 0.8:  # a literal: never counted, whatever it holds
            yield bytearray(rng.choice([b"(((", b")", b"plain text", b"1 FETCH ("]))
        else:
            yield rng.choice([b")", b" FLAGS (\\Seen))", b"(", b"", b"x) (y"])


def test_wait_data_agrees_with_aioimaplib_after_every_line(
    loop: asyncio.AbstractEventLoop,
) -> None:
    rng = random.Random(7)
    for _ in range(500):
        theirs = aioimaplib.FetchCommand("A1", "1:*", "(UID)", loop=loop)
        ours = FetchCommand("A1", "1:*", "(UID)", loop=loop)
        for line in answer_lines(rng):
            theirs.append_to_resp(line)
            ours.append_to_resp(line)
            assert ours.wait_data() == theirs.wait_data(), theirs.response.lines
        assert ours.response.lines == theirs.response.lines


class CountingBytes(bytes):
    formatted = 0

    def __str__(self) -> str:
        CountingBytes.formatted += 1
        return super().__str__()


def test_received_data_is_formatted_only_for_a_debug_log(
    loop: asyncio.AbstractEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    protocol = ClientProtocol(loop)
    chunk = CountingBytes(b"* OK IMAP4rev1 ready\r\n")
    with caplog.at_level(logging.INFO, logger="aioimaplib.aioimaplib"):
        protocol.data_received(chunk)
    assert CountingBytes.formatted == 0
    with caplog.at_level(logging.DEBUG, logger="aioimaplib.aioimaplib"):
        protocol.data_received(chunk)
    assert CountingBytes.formatted >= 1
    assert "Received : " in caplog.text


def fetch_answer(tag: str) -> bytes:
    return (
        b"* 1 FETCH (UID 5 BODY[] {11}\r\nHello (\r\nx) FLAGS (\\Seen))\r\n"
        b"* 2 FETCH (UID 6 RFC822.SIZE 3 BODY[] {3}\r\nabc)\r\n"
        b"* 3 FETCH (UID 7 BODY[] {0}\r\n)\r\n" + tag.encode() + b" OK Fetch completed.\r\n"
    )


def random_answer(rng: random.Random, tag: str, messages: int) -> bytes:
    """A FETCH answer as a server may send it: literals holding CRLFs, parentheses and braces,
    size and flag items before or after them, unsolicited FETCH lines between."""
    parts: list[bytes] = []
    for n in range(1, messages + 1):
        body = bytes(rng.choice(b"ab (){}\r\n*") for _ in range(rng.randint(0, 300)))
        head = f"* {n} FETCH (UID {n + 100} RFC822.SIZE {len(body)} BODY[HEADER] {{{len(body)}}}"
        parts += [head.encode(), b"\r\n", body, rng.choice([b")", b" FLAGS (\\Seen))"]), b"\r\n"]
        if rng.random() < 0.1:
            parts.append(f"* {n} FETCH (FLAGS (\\Seen))\r\n".encode())
    return b"".join(parts) + tag.encode() + b" OK Fetch completed.\r\n"


def lines_read(
    protocol: aioimaplib.IMAP4ClientProtocol,
    command: aioimaplib.FetchCommand,
    chunk: int,
    answer: bytes | None = None,
) -> tuple[str, list[bytes]]:
    protocol.state = aioimaplib.SELECTED
    protocol.pending_sync_command = command
    answer = fetch_answer(command.tag) if answer is None else answer
    for start in range(0, len(answer), chunk):
        protocol.data_received(answer[start : start + chunk])
    return command.response.result, [bytes(line) for line in command.response.lines]


@pytest.mark.parametrize("chunk", [1, 2, 7, 16, 1000])
def test_a_fetch_answer_in_chunks_is_read_as_aioimaplib_reads_it(
    loop: asyncio.AbstractEventLoop, chunk: int
) -> None:
    theirs = lines_read(
        aioimaplib.IMAP4ClientProtocol(loop),
        aioimaplib.FetchCommand("A7", "1:3", "(UID BODY[])", prefix="UID", loop=loop),
        chunk,
    )
    ours = lines_read(
        ClientProtocol(loop),
        FetchCommand("A7", "1:3", "(UID BODY[])", prefix="UID", loop=loop),
        chunk,
    )
    assert ours == theirs
    assert ours[0] == "OK" and b"Hello (\r\nx)" in ours[1] and b"abc" in ours[1]


def test_random_answers_in_random_chunks_are_read_as_aioimaplib_reads_them(
    loop: asyncio.AbstractEventLoop,
) -> None:
    rng = random.Random(11)
    for _ in range(60):
        answer = random_answer(rng, "A9", rng.randint(1, 40))
        chunk = rng.choice([1, 3, 64, 500, 4096, len(answer)])
        read = [
            lines_read(
                protocol(loop),
                command("A9", "1:*", "(UID BODY.PEEK[HEADER])", prefix="UID", loop=loop),
                chunk,
                answer,
            )
            for protocol, command in (
                (aioimaplib.IMAP4ClientProtocol, aioimaplib.FetchCommand),
                (ClientProtocol, FetchCommand),
            )
        ]
        assert read[0] == read[1]
        assert read[1][0] == "OK"


def test_a_chunk_of_thousands_of_messages_is_read_without_recursing_per_line(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """aioimaplib's reader recurses once per line and literal of a chunk (each level holding
    a copy of the rest): a big chunk of short headers goes past Python's recursion limit."""
    answer = random_answer(random.Random(3), "A5", 2_000)

    def read(protocol: aioimaplib.IMAP4ClientProtocol, command: type) -> tuple[str, list[bytes]]:
        fetch = command("A5", "1:*", "(UID BODY.PEEK[HEADER])", prefix="UID", loop=loop)
        return lines_read(protocol, fetch, len(answer), answer)

    with pytest.raises(RecursionError):
        read(aioimaplib.IMAP4ClientProtocol(loop), aioimaplib.FetchCommand)
    result, lines = read(ClientProtocol(loop), FetchCommand)
    assert result == "OK"
    assert sum(b" BODY[HEADER] {" in line for line in lines) == 2_000


# -- what the subclasses and ImapConnection.discard() take from aioimaplib (docs/dependencies.md)


def parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_the_aioimaplib_internals_overridden_here_have_their_expected_shape(
    loop: asyncio.AbstractEventLoop,
) -> None:
    # ClientProtocol.data_received calls these as aioimaplib's own does.
    protocol = aioimaplib.IMAP4ClientProtocol
    assert parameters(protocol._handle_responses) == ["self", "data", "line_handler", "current_cmd"]
    assert parameters(protocol._handle_line) == ["self", "line", "current_cmd"]
    incomplete = aioimaplib.IncompleteRead(aioimaplib.Command("NOOP", "A1", loop=loop), b"x")
    assert (incomplete.cmd.tag, incomplete.data) == ("A1", b"x")
    # Client.create_client replaces aioimaplib's, called from IMAP4.__init__ with these.
    assert parameters(aioimaplib.IMAP4.create_client) == [
        "self",
        "host",
        "port",
        "loop",
        "conn_lost_cb",
        "ssl_context",
    ]
    # FetchCommand keeps aioimaplib's regular expression for the start of a message.
    assert aioimaplib.FetchCommand.FETCH_MESSAGE_DATA_RE.match(b"12 FETCH (UID 3")


async def test_discard_cancels_what_aioimaplib_started_for_a_connection() -> None:
    account = AccountSettings(
        name="test", source="imap", server="127.0.0.1", port=free_port(), security="none"
    )
    conn = ImapConnection(account, 5.0)  # its connection task is started, never awaited
    client = conn._client
    assert isinstance(client, Client) and isinstance(client.protocol, ClientProtocol)
    assert client._idle_waiter is None  # an asyncio.TimerHandle while in IDLE
    assert isinstance(client.tasks, set) and isinstance(client.protocol.tasks, set)
    connecting = client._client_task
    assert isinstance(connecting, asyncio.Task)
    conn.discard()
    with pytest.raises(asyncio.CancelledError):
        await connecting
    assert not conn.usable
