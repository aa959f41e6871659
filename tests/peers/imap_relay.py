"""A TCP relay between the daemon and a real Dovecot, for faults no server makes on its own.

It passes everything through and keeps the command lines each connection sent, so a test can
count what the daemon asked of the server. On request it acts on the next command line that
matches a pattern: `hold` passes the command to the server but keeps the server's answers from
the client from then on (the command is done, the client never hears so: a daemon killed now
is killed mid-write), `cut` closes the connection before the command reaches the server, and
`pause` keeps the command until the test lets it go. `without_uidnext=True` plays a server
that sends no `[UIDNEXT n]` in its SELECT and EXAMINE answers (as Courier does): those lines
are dropped. Plain IMAP only (it reads the commands); one thread per direction of each
connection.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from dataclasses import dataclass, field

from tests.peers.dovecot import free_port

_UIDNEXT_LINE = re.compile(rb"^\* OK \[UIDNEXT \d+\]", re.IGNORECASE)


@dataclass
class _Rule:
    pattern: re.Pattern[bytes]
    action: str  # "hold", "cut" or "pause"
    fired: threading.Event = field(default_factory=threading.Event)
    go: threading.Event = field(default_factory=threading.Event)  # a paused command's release
    skip: int = 0  # matching commands to let pass first


class ImapRelay:
    def __init__(self, target_port: int, *, without_uidnext: bool = False) -> None:
        self.port = free_port()
        self._without_uidnext = without_uidnext
        self._target = ("127.0.0.1", target_port)
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._sockets: list[socket.socket] = []
        self._held: set[int] = set()  # connections whose answers are kept from the client
        self._commands: list[tuple[int, bytes]] = []
        self._connections = 0
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    # -- what the tests use ---------------------------------------------------------------------

    def hold_answers_after(self, pattern: bytes) -> threading.Event:
        """Pass the next command matching `pattern`, then keep that connection's answers back.
        The event is set once the command has been passed to the server."""
        return self._add(_Rule(re.compile(pattern), "hold"))

    def cut_at(self, pattern: bytes) -> threading.Event:
        """Close the connection of the next command matching `pattern`, before it is passed."""
        return self._add(_Rule(re.compile(pattern), "cut"))

    def pause_at(self, pattern: bytes, nth: int = 1) -> tuple[threading.Event, threading.Event]:
        """Keep the `nth` command matching `pattern` from the server until the second event is
        set; the first is set once it is kept."""
        rule = _Rule(re.compile(pattern), "pause", skip=nth - 1)
        self._add(rule)
        return rule.fired, rule.go

    def commands(self, pattern: bytes = b"") -> list[bytes]:
        """Every command line passed so far (without its tag), or those matching `pattern`."""
        with self._lock:
            lines = [line for _, line in self._commands]
        return [line for line in lines if re.search(pattern, line)]

    def release(self) -> None:
        """Drop every connection (held ones included) and forget the rules."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
            self._rules.clear()
            self._held.clear()
        for sock in sockets:
            _close(sock)

    def close(self) -> None:
        self._closed = True
        _close(self._server)
        self.release()

    # -- the relay ------------------------------------------------------------------------------

    def _add(self, rule: _Rule) -> threading.Event:
        with self._lock:
            self._rules.append(rule)
        return rule.fired

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target, timeout=10)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._connections += 1
                number = self._connections
                self._sockets += [client, upstream]
            threading.Thread(target=self._up, args=(number, client, upstream), daemon=True).start()
            threading.Thread(
                target=self._down, args=(number, upstream, client), daemon=True
            ).start()

    def _up(self, number: int, client: socket.socket, upstream: socket.socket) -> None:
        """Client to server, a line at a time, so that each command can be seen first."""
        reader = client.makefile("rb")
        try:
            for line in reader:
                rule = self._match(number, line)
                if rule is not None and rule.action == "cut":
                    rule.fired.set()
                    break
                if rule is not None and rule.action == "pause":
                    rule.fired.set()
                    rule.go.wait(30)
                upstream.sendall(line)
                if rule is not None:
                    rule.fired.set()
        except OSError:
            pass
        finally:
            reader.close()
            _close(client)
            _close(upstream)

    def _match(self, number: int, line: bytes) -> _Rule | None:
        command = line.split(b" ", 1)[1].strip() if b" " in line else line.strip()
        with self._lock:
            self._commands.append((number, command))
            for rule in self._rules:
                if rule.pattern.search(command):
                    if rule.skip:
                        rule.skip -= 1
                        return None
                    self._rules.remove(rule)
                    if rule.action == "hold":
                        self._held.add(number)
                    return rule
        return None

    def _down(self, number: int, upstream: socket.socket, client: socket.socket) -> None:
        if self._without_uidnext:
            self._down_lines(number, upstream, client)
            return
        try:
            while data := upstream.recv(65536):
                with self._lock:
                    held = number in self._held
                if not held:
                    client.sendall(data)
        except OSError:
            pass
        finally:
            _close(client)
            _close(upstream)

    def _down_lines(self, number: int, upstream: socket.socket, client: socket.socket) -> None:
        """Server to client a line at a time, without the lines that announce UIDNEXT."""
        reader = upstream.makefile("rb")
        try:
            for line in reader:
                with self._lock:
                    held = number in self._held
                if not held and not _UIDNEXT_LINE.match(line):
                    client.sendall(line)
        except OSError:
            pass
        finally:
            reader.close()
            _close(client)
            _close(upstream)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
