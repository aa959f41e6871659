"""A bench Dovecot holding generated mail, and the two ways of pulling it that are not ours.

The mail goes straight into the user's Maildir (loading time is not measured), then one full
pass over IMAP makes Dovecot build its index and cache and brings the files into the page
cache, so every contender reads a warm mailbox.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

from bench import mailgen
from tests.peers.dovecot import PASSWORD, USER, Dovecot

RAW_BATCH = 500
_UIDS = re.compile(rb"\d+")
_LITERAL = re.compile(rb"\{(\d+)\}\r\n$")
_EXISTS = re.compile(rb"\* (\d+) EXISTS\r\n")


class BenchMailbox:
    def __init__(self, count: int, seed: int = 1, *, idle: bool = True) -> None:
        self.count = count
        self.dovecot = Dovecot(idle=idle)
        try:
            if count:
                self.dovecot.deliver((raw, False) for raw in mailgen.messages(count, seed))
                self.warm()
        except BaseException:
            self.dovecot.remove()
            raise

    @property
    def port(self) -> int:
        return self.dovecot.imap_port

    def account_toml(self, *, name: str = "bench", poll_interval: float = 300) -> str:
        return f"""
[[accounts]]
name = "{name}"
source = "imap"
server = "127.0.0.1"
port = {self.port}
security = "none"
username = "{USER}"
password = "{PASSWORD}"
mailboxes = ["INBOX"]
idle = true
poll_interval = {poll_interval}
"""

    def warm(self) -> None:
        with self.dovecot.client() as imap:
            imap.select("INBOX")
            imap.uid("FETCH", "1:*", "(UID RFC822.SIZE BODY.PEEK[])")
        found = self.uids()
        if len(found) != self.count:
            raise RuntimeError(f"Dovecot holds {len(found)} messages, not {self.count}")

    def uids(self) -> list[int]:
        with self.dovecot.client() as imap:
            imap.select("INBOX", readonly=True)
            _, data = imap.uid("SEARCH", "ALL")
        return [int(u) for u in _UIDS.findall(data[0] or b"")]

    def remove(self) -> None:
        self.dovecot.remove()


def raw_floor(box: BenchMailbox) -> float:
    """Seconds for one client to stream every message, `UID FETCH` 500 at a time.

    A socket and a literal scanner rather than imaplib, whose line-by-line reading costs
    more than the transfer: the floor is what the server and the loopback can do.
    """
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", box.port), timeout=60) as sock:
        reader = _Reader(sock)
        reader.line()  # the greeting
        reader.command(f"LOGIN {USER} {PASSWORD}")
        reader.command("EXAMINE INBOX")
        found = reader.command("UID SEARCH ALL")
        uids = [int(u) for u in _UIDS.findall(found.split(b"SEARCH", 1)[1].split(b"\r\n")[0])]
        fetched = 0
        for i in range(0, len(uids), RAW_BATCH):
            chunk = uids[i : i + RAW_BATCH]
            fetched += reader.fetch(f"UID FETCH {chunk[0]}:{chunk[-1]} (BODY.PEEK[])")
        reader.command("LOGOUT")
    seconds = time.monotonic() - start
    if fetched != box.count:
        raise RuntimeError(f"the raw client fetched {fetched} of {box.count} messages")
    return seconds


class _Reader:
    """Just enough IMAP for the floor: tagged commands, literals skipped by their length."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = bytearray()
        self._tag = 0

    def _fill(self) -> None:
        data = self._sock.recv(1 << 20)
        if not data:
            raise ConnectionError("the server closed the connection")
        self._buf += data

    def line(self) -> bytes:
        while (end := self._buf.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self._buf[: end + 2])
        del self._buf[: end + 2]
        return line

    def _skip(self, size: int) -> None:
        while len(self._buf) < size:
            self._fill()
        del self._buf[:size]

    def _send(self, command: str) -> bytes:
        self._tag += 1
        tag = f"b{self._tag}".encode()
        self._sock.sendall(tag + b" " + command.encode() + b"\r\n")
        return tag + b" "

    def command(self, command: str) -> bytes:
        tag = self._send(command)
        answer = b""
        while not (line := self.line()).startswith(tag):
            answer += line
        if not line.startswith(tag + b"OK"):
            raise RuntimeError(f"{command.split()[0]} refused: {line!r}")
        return answer

    def fetch(self, command: str) -> int:
        """Run a FETCH; how many literals (message bodies) came back."""
        tag = self._send(command)
        bodies = 0
        while not (line := self.line()).startswith(tag):
            literal = _LITERAL.search(line)
            if literal:
                self._skip(int(literal.group(1)))
                bodies += 1
        if not line.startswith(tag + b"OK"):
            raise RuntimeError(f"FETCH refused: {line!r}")
        return bodies


MBSYNCRC = """\
IMAPAccount bench
Host 127.0.0.1
Port {port}
User {user}
Pass {password}
SSLType None
AuthMechs LOGIN

IMAPStore bench-far
Account bench

MaildirStore bench-near
Path {maildir}/
Inbox {maildir}/INBOX

Channel bench
Far :bench-far:
Near :bench-near:
Patterns INBOX
Create Near
SyncState *
"""


def mbsync_available() -> bool:
    return shutil.which("mbsync") is not None


def mbsync(box: BenchMailbox, folder: Path) -> float:
    """Seconds for mbsync, its defaults (fsync on) kept, to pull the mailbox into an empty
    Maildir. Plain IMAP on loopback needs `SSLType None` and an explicit `AuthMechs LOGIN`;
    `Create Near` lets it make the empty Maildir; everything else is its default."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rc = folder / "mbsyncrc"
    maildir = folder / "mail"
    maildir.mkdir()
    rc.write_text(MBSYNCRC.format(port=box.port, user=USER, password=PASSWORD, maildir=maildir))
    start = time.monotonic()
    done = subprocess.run(
        ["mbsync", "-c", str(rc), "-a"], capture_output=True, text=True, timeout=600
    )
    seconds = time.monotonic() - start
    if done.returncode != 0:
        raise RuntimeError(f"mbsync failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    pulled = sum(1 for sub in ("cur", "new") for _ in (maildir / "INBOX" / sub).iterdir())
    shutil.rmtree(folder, ignore_errors=True)
    if pulled != box.count:
        raise RuntimeError(f"mbsync pulled {pulled} of {box.count} messages")
    return seconds


class IdleWatcher:
    """A raw IDLE client in a thread: when Dovecot itself announced each new message.

    The floor under any push-driven latency: the server's own delay between an APPEND and
    the `* N EXISTS` it sends to clients in IDLE.
    """

    def __init__(self, box: BenchMailbox) -> None:
        self.pushes: dict[int, float] = {}  # message count -> wall time of its EXISTS
        self._sock = socket.create_connection(("127.0.0.1", box.port), timeout=5)
        self._reader = _Reader(self._sock)
        self._reader.line()
        self._reader.command(f"LOGIN {USER} {PASSWORD}")
        self._reader.command("EXAMINE INBOX")
        self._reader._send("IDLE")
        if not self._reader.line().startswith(b"+"):
            raise RuntimeError("Dovecot refused IDLE")
        self._sock.settimeout(None)
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        try:
            while True:
                line = self._reader.line()
                found = _EXISTS.match(line)
                if found:
                    self.pushes.setdefault(int(found.group(1)), time.time())
        except (OSError, ConnectionError):
            return

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(5)
