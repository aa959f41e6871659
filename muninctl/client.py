"""A blocking connection to the control socket: greeting, requests, answers.

Every way of not getting an answer ends in an `exits.Failure` with the exit code that says why.
"""

from __future__ import annotations

import itertools
import socket
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from muninctl import exits
from muninctl.exits import Failure
from muninmaild import protocol

DEFAULT_SOCKET = "/run/muninmail/control.sock"
MAX_ANSWER_BYTES = 64 * 1024 * 1024
HINT = "is muninmaild running? Try: systemctl status muninmaild"


class Connection:
    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self.server: dict[str, Any] = {}
        self._sock: socket.socket | None = None
        self._ids = itertools.count(1)
        self._waiting = timeout
        self._buffer = bytearray()

    def __enter__(self) -> Connection:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock = sock
        sock.settimeout(self.timeout)
        try:
            self._connect(sock)
        except OSError as exc:
            self.close()
            raise self._connect_failure(exc) from None
        line = self._read_line()
        try:
            self.server = protocol.check_greeting(line)
        except protocol.ProtocolError as exc:
            raise exits.refused(exc) from None
        except ValueError as exc:
            raise Failure(f"{self.path}: {exc}", exits.PROTOCOL) from None

    def _connect(self, sock: socket.socket) -> None:
        """Connect, waiting while the daemon's backlog is full (EAGAIN on a Unix socket)."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                sock.connect(self.path)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError from None
                time.sleep(0.01)

    def _connect_failure(self, exc: OSError) -> Failure:
        path = self.path
        if isinstance(exc, PermissionError):
            return Failure(
                f"permission denied on the socket {path}: run muninctl as root, as the "
                "daemon's user, or as a member of its group (muninmail)",
                exits.NOT_ALLOWED,
            )
        if isinstance(exc, TimeoutError):
            return Failure(f"no answer from {path} within {self.timeout:g} s", exits.TIMED_OUT)
        if isinstance(exc, FileNotFoundError):
            return Failure(
                f"cannot reach muninmaild: there is no socket {path}; {HINT}", exits.UNREACHABLE
            )
        if isinstance(exc, ConnectionRefusedError):
            return Failure(
                f"cannot reach muninmaild: nothing listens on {path}; {HINT}", exits.UNREACHABLE
            )
        reason = exc.strerror or str(exc)
        return Failure(f"cannot reach muninmaild at {path}: {reason}; {HINT}", exits.UNREACHABLE)

    def call(
        self, cmd: str, args: Mapping[str, Any] | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        """Send one request and return its result; an error answer raises its Failure."""
        assert self._sock is not None, "open() first"
        request_id = next(self._ids)
        self._sock.settimeout(timeout or self.timeout)
        self._waiting = timeout or self.timeout
        try:
            self._sock.sendall(protocol.request(request_id, cmd, args))
        except TimeoutError:
            raise self._timed_out() from None
        except OSError as exc:
            raise self._closed(exc) from None
        line = self._read_line()
        try:
            answer = protocol.parse_answer(line)
        except protocol.ProtocolError as exc:
            raise exits.refused(exc) from None
        except ValueError as exc:
            raise Failure(f"{self.path}: {exc}", exits.PROTOCOL) from None
        if answer.id != request_id:
            raise Failure(f"{self.path}: answer to request {answer.id!r}", exits.PROTOCOL)
        return answer.result

    def _read_line(self) -> bytes:
        assert self._sock is not None
        try:
            while b"\n" not in self._buffer:
                chunk = self._sock.recv(65536)
                if not chunk:
                    raise self._closed(None)
                self._buffer += chunk
                if len(self._buffer) > MAX_ANSWER_BYTES:
                    raise Failure(f"{self.path}: answer too large", exits.PROTOCOL)
        except TimeoutError:
            raise self._timed_out() from None
        except OSError as exc:
            raise self._closed(exc) from None
        end = self._buffer.index(b"\n") + 1
        line = bytes(self._buffer[:end])
        del self._buffer[:end]
        return line

    def _timed_out(self) -> Failure:
        return Failure(f"muninmaild did not answer within {self._waiting:g} s", exits.TIMED_OUT)

    def _closed(self, exc: OSError | None) -> Failure:
        reason = f" ({exc.strerror or exc})" if exc else ""
        return Failure(
            f"muninmaild closed the connection on {self.path} without an answer{reason}",
            exits.UNREACHABLE,
        )

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
