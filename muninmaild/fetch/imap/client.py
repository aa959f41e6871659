"""aioimaplib's client, without two costs that grow with the size of a FETCH answer.

Profiled over a sync of 10,000 messages (`python -m bench.profile sync`), half of the event
loop's time went to two places in aioimaplib:

- `FetchCommand.wait_data`, asked after every line of an answer, rescans every line received so
  far for the start of the last message: quadratic in the number of messages in a FETCH;
- `data_received` formats each chunk read from the socket for a debug line, whether or not
  debug logging is on.

A third cost is memory: `_handle_responses` recurses once per line and literal of a chunk read
from the socket, and each level keeps a copy of the rest of the chunk. A FETCH of 200 headers
(170 KB) held 22 MB at once that way, and a chunk of a thousand short messages goes past
Python's recursion limit.

The subclasses here keep aioimaplib's behaviour and replace only those: the answer keeps a running
count of open parentheses since its last message began, which gives the same verdict as the rescan
(tests/test_imap_client.py checks both on the same lines), the debug line is formatted only when
someone listens, and a chunk is read in a loop, by position, with the same steps in the same
order. Everything else, commands, states and IDLE included, is aioimaplib's own.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any

import aioimaplib

log = logging.getLogger("aioimaplib.aioimaplib")


class FetchCommand(aioimaplib.FetchCommand):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unclosed = 0  # "(" minus ")" on the lines since the last message began

    def append_to_resp(self, line: bytes | bytearray, result: str = "Pending") -> None:
        super().append_to_resp(line, result)
        # Literals arrive as bytearray and are not counted, as in aioimaplib's own check.
        if isinstance(line, bytes):
            if self.FETCH_MESSAGE_DATA_RE.match(line):
                self._unclosed = 0
            self._unclosed += line.count(b"(") - line.count(b")")

    def wait_data(self) -> bool:
        return self._unclosed != 0


class ClientProtocol(aioimaplib.IMAP4ClientProtocol):  # type: ignore[misc]
    incomplete_line: bytes
    current_command: Any

    def data_received(self, d: bytes) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("Received : %s", d)
        try:
            self._handle_responses(
                self.incomplete_line + d, self._handle_line, self.current_command
            )
            self.incomplete_line = b""
            self.current_command = None
        except aioimaplib.IncompleteRead as incomplete:
            self.current_command = incomplete.cmd
            self.incomplete_line = incomplete.data

    def _handle_responses(
        self,
        data: bytes,
        line_handler: Callable[[bytes, Any], Any],
        current_cmd: Any = None,
    ) -> None:
        """aioimaplib's, as a loop: a line is copied out of `data`, a literal is handed over
        as a view, and nothing else of the chunk is copied."""
        pos = 0
        while True:
            if pos == len(data):
                if self.pending_sync_command is not None:
                    self.pending_sync_command.flush()
                if current_cmd is not None and current_cmd.wait_data():
                    raise aioimaplib.IncompleteRead(current_cmd)
                return
            if current_cmd is not None and current_cmd.wait_literal_data():
                rest = current_cmd.append_literal_data(memoryview(data)[pos:])
                pos = len(data) - len(rest)
                if current_cmd.wait_literal_data():
                    raise aioimaplib.IncompleteRead(current_cmd)
            end = data.find(aioimaplib.CRLF, pos)
            if end < 0:
                raise aioimaplib.IncompleteRead(current_cmd, data[pos:])
            line, pos = data[pos:end], end + len(aioimaplib.CRLF)
            cmd = line_handler(line, current_cmd)
            if literal := aioimaplib.literal_data_re.match(line):
                if cmd is None:
                    cmd = aioimaplib.Command("NIL", "unused")
                cmd.begin_literal_data(int(literal.group("size")))
                current_cmd = cmd
            elif cmd is not None and cmd.wait_data():
                current_cmd = cmd
            else:
                current_cmd = None

    async def fetch(
        self,
        message_set: str,
        message_parts: str,
        by_uid: bool = False,
        timeout: float | None = None,  # noqa: ASYNC109 (aioimaplib's own signature)
    ) -> Any:
        command = FetchCommand(
            self.new_tag(),
            message_set,
            message_parts,
            prefix="UID" if by_uid else "",
            loop=self.loop,
            timeout=timeout,
        )
        return await self.execute(command)


class Client(aioimaplib.IMAP4):  # type: ignore[misc]
    def create_client(
        self,
        host: str,
        port: int,
        loop: asyncio.AbstractEventLoop | None,
        conn_lost_cb: Callable[[Exception | None], None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        local_loop = loop if loop is not None else asyncio.get_running_loop()
        self.protocol = ClientProtocol(local_loop, conn_lost_cb)
        self._client_task = local_loop.create_task(
            local_loop.create_connection(lambda: self.protocol, host, port, ssl=ssl_context)
        )
