"""A real Dovecot for the tests, on loopback, in its own folder (recipe: TESTING.md).

Each instance listens on two free ports: plain IMAP (which offers STARTTLS) and IMAPS, both with
a self-signed certificate made here. It is stopped by its own master pid. The helpers that talk
to it use the standard library's imaplib, so they check the fetcher with a second client.
"""

from __future__ import annotations

import contextlib
import imaplib
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from muninmaild.config.settings import AccountSettings, Secret, Security
from tests.kinds import needs_integration

USER, PASSWORD = "alice", "secret"
MAIL_UID = "mail"
_FLAGS = re.compile(rb"UID (\d+) FLAGS \(([^)]*)\)")
# Numbers the files deliver() writes, across every call of this process.
_DELIVERED = itertools.count()


def available() -> bool:
    """Dovecot is installed and we can run it the way the recipe needs (as root)."""
    return shutil.which("dovecot") is not None and os.geteuid() == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def message(
    n: int, *, message_id: bool = True, subject: str | None = None, body: str = ""
) -> bytes:
    """A small message; the same `n` gives the same bytes."""
    head = [
        f"From: Sender {n % 7} <sender{n % 7}@example.com>",
        "To: alice@example.com",
        f"Subject: {subject or f'Message {n}'}",
        f"Date: Fri, 27 Nov 2026 {n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d} +0000",
    ]
    if message_id:
        head.append(f"Message-ID: <msg{n}@example.com>")
    text = body or f"Hello, this is message number {n}.\nPlease reply by Friday.\n"
    return ("\r\n".join(head) + "\r\n\r\n" + text.replace("\n", "\r\n")).encode()


class Dovecot:
    def __init__(
        self, *, idle: bool = True, users: Iterable[str] = (USER,), acl: bool = False
    ) -> None:
        # Not pytest's tmp_path: its folders are 0700, which Dovecot's own processes cannot enter.
        self.root = Path(tempfile.mkdtemp(prefix="munin-dovecot-"))
        self.users = tuple(users)
        self.acl = acl  # the ACL plugin: `refuse_keywords()` can take the right to set them
        self.imap_port = free_port()
        self.imaps_port = free_port()
        self.cert = self.root / "cert.pem"
        self.config = self.root / "dovecot.conf"
        self.log = self.root / "dovecot.log"
        try:
            self._write_files(idle)
            self.start()
        except BaseException:
            self.remove()
            raise

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        needs_integration("Dovecot")
        # A login process the last stop() did not see (forked as it began) can hold the
        # listening sockets a moment longer: a refused listen is tried again for a while.
        deadline = time.monotonic() + 10
        while True:
            log = self.root / "start.log"
            log.unlink(missing_ok=True)
            # Not through pipes: the daemon would inherit them, and run() wait for it to end.
            with log.open("ab") as out:
                started = subprocess.run(
                    ["dovecot", "-c", str(self.config)], stdout=out, stderr=out
                )
            if started.returncode == 0:
                break
            if "Address already in use" not in self._start_log() or time.monotonic() > deadline:
                raise RuntimeError(f"Dovecot did not start: {self._start_log()}")
            time.sleep(0.1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.imap_port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"Dovecot did not start listening; log:\n{self.log_text()}")

    def _start_log(self) -> str:
        return (self.root / "start.log").read_text(errors="replace")

    def stop(self) -> None:
        """Stop every process of this Dovecot, connections included, as `systemctl stop` does.

        The master alone would leave each connection's process running until its client
        hangs up; so they get SIGTERM too, and SIGKILL if they linger.
        """
        pid_file = self.root / "run" / "master.pid"
        if not pid_file.exists():
            return
        master = int(pid_file.read_text())
        # Frozen, the master cannot fork a login process after its children are listed: one
        # that escaped the list would keep the listening socket, accept connections nobody
        # serves, and make the next start() fail with "Address already in use". It gets
        # SIGKILL for the same reason; the connections' own processes get SIGTERM and say BYE.
        with contextlib.suppress(ProcessLookupError):
            os.kill(master, signal.SIGSTOP)
        children = _children(master)
        with contextlib.suppress(ProcessLookupError):
            os.kill(master, signal.SIGKILL)
        pids = [master, *children]
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 5
            while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
                time.sleep(0.02)
            if not any(_alive(pid) for pid in pids):
                # The master may still be a zombie nobody has reaped: Dovecot would take the
                # pid file's pid for a running master and refuse to start again.
                pid_file.unlink(missing_ok=True)
                return
        raise RuntimeError(f"Dovecot (master pid {master}) did not stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def kick(self, user: str = USER) -> None:
        """Cut the user's connections from the server's side."""
        self.doveadm("kick", user)

    def session_pids(self) -> list[int]:
        """The processes serving logged-in IMAP connections, one each."""
        return list(self._sessions())

    def idling(self) -> int:
        """How many sessions are in IDLE now (the process title says so while they are)."""
        return sum(title.endswith(" IDLE]") for title in self._sessions().values())

    def _sessions(self) -> dict[int, str]:
        master = int((self.root / "run" / "master.pid").read_text())
        titles = {}
        for pid in _children(master):
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
                if title.split(" ", 1)[0] == "dovecot/imap":
                    titles[pid] = title
        return titles

    def accepts(self, user: str, password: str) -> bool:
        """Whether the server's authentication takes this password now."""
        done = subprocess.run(
            ["doveadm", "-c", str(self.config), "auth", "test", user, password],
            capture_output=True,
        )
        return done.returncode == 0

    def doveadm(self, *args: str) -> str:
        done = subprocess.run(
            ["doveadm", "-c", str(self.config), *args], check=True, capture_output=True, text=True
        )
        return done.stdout

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for_log(self, pattern: str, within_s: float = 5.0) -> re.Match[str]:
        """Dovecot's log is written by a process of its own, a moment after the event."""
        deadline = time.monotonic() + within_s
        while not (found := re.search(pattern, self.log_text())):
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not in Dovecot's log:\n{self.log_text()}")
            time.sleep(0.02)
        return found

    # -- what the fetcher is given ----------------------------------------------------------------

    def account(self, security: Security = "none", **changes: object) -> AccountSettings:
        ports = {"tls": self.imaps_port, "starttls": self.imap_port, "none": self.imap_port}
        account = AccountSettings(
            name="test",
            source="imap",
            server="127.0.0.1",
            port=ports[security],
            security=security,
            ca_file=self.cert if security != "none" else None,
            username=USER,
            password=Secret(PASSWORD),
            poll_interval=0.5,
        )
        return replace(account, **changes)  # type: ignore[arg-type]

    # -- mail, through a second client ------------------------------------------------------------

    @contextmanager
    def client(self, user: str = USER) -> Iterator[imaplib.IMAP4]:
        imap = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10)
        try:
            imap.login(user, PASSWORD)
            yield imap
        finally:
            try:
                imap.logout()
            except (imaplib.IMAP4.error, OSError):
                imap.shutdown()

    def append(
        self,
        messages: Iterable[bytes],
        mailbox: str = "INBOX",
        *,
        seen: bool = False,
        user: str = USER,
        arrived: datetime | None = None,
    ) -> None:
        """APPEND, with `arrived` as the messages' INTERNALDATE (the server's now if None)."""
        when = imaplib.Time2Internaldate(arrived) if arrived is not None else None
        with self.client(user) as imap:
            for raw in messages:
                status, _ = imap.append(mailbox, r"(\Seen)" if seen else None, when, raw)
                assert status == "OK"

    def deliver(self, messages: Iterable[tuple[bytes, bool]], user: str = USER) -> None:
        """Write messages straight into the user's Maildir INBOX, (raw, seen) each: fast."""
        box = self.root / "mail" / user
        for sub in ("new", "cur", "tmp"):
            (box / sub).mkdir(parents=True, exist_ok=True)
            shutil.chown(box / sub, MAIL_UID, MAIL_UID)
        shutil.chown(box, MAIL_UID, MAIL_UID)
        stamp = int(time.time())
        for raw, seen in messages:
            # Unique across calls, as Maildir names must be: two deliveries within one second
            # would otherwise write over the first one's files, whose names Dovecot has already
            # given UIDs, and their mail would never show as new.
            name = f"{stamp}.M{next(_DELIVERED)}P{os.getpid()}.test"
            path = box / "cur" / f"{name}:2,S" if seen else box / "new" / name
            path.write_bytes(raw)
            shutil.chown(path, MAIL_UID, MAIL_UID)

    def create(self, mailbox: str) -> None:
        with self.client() as imap:
            assert imap.create(mailbox)[0] == "OK"

    def recreate(self, mailbox: str, messages: Iterable[bytes]) -> None:
        """Delete the mailbox and make it again (a new UIDVALIDITY) holding `messages`."""
        with self.client() as imap:
            assert imap.delete(mailbox)[0] == "OK"
            assert imap.create(mailbox)[0] == "OK"
        self.append(messages, mailbox)

    def refuse_keywords(self, mailbox: str, user: str = USER) -> None:
        """Take the user's right to set keywords in a mailbox (ACL right `w`; needs `acl=True`).

        SELECT then answers `PERMANENTFLAGS (\\Seen)`, without `\\*`, and a STORE of a keyword
        is answered OK but not kept: a server refusing new keywords, as RFC 3501 lets it.
        """
        assert self.acl, "start this Dovecot with acl=True"
        folder = self.root / "mail" / user / ("" if mailbox == "INBOX" else f".{mailbox}")
        acl = folder / "dovecot-acl"
        acl.write_text("owner lrsip\n")  # look up, read, set \Seen, insert, post: no `w`
        shutil.chown(acl, MAIL_UID, MAIL_UID)

    def uidvalidity(self, mailbox: str = "INBOX") -> int:
        with self.client() as imap:
            _, data = imap.status(mailbox, "(UIDVALIDITY)")
        found = re.search(rb"UIDVALIDITY (\d+)", data[0] or b"")
        assert found
        return int(found.group(1))

    def flags(self, mailbox: str = "INBOX") -> dict[int, frozenset[str]]:
        r"""Every message's flags by UID, read without changing them (EXAMINE).

        `\Recent` is left out: it belongs to a session, not to the message, and is not stored.
        """
        with self.client() as imap:
            imap.select(mailbox, readonly=True)
            _, data = imap.uid("FETCH", "1:*", "(UID FLAGS)")
        found = {}
        for line in data:
            match = _FLAGS.search(line if isinstance(line, bytes) else b"")
            if match:
                names = match.group(2).decode().split()
                found[int(match.group(1))] = frozenset(f for f in names if f != "\\Recent")
        return found

    # -- the configuration ------------------------------------------------------------------------

    def _write_files(self, idle: bool) -> None:
        root = self.root
        for sub in ("run", "state", "mail"):
            (root / sub).mkdir()
        for folder in (root, root / "run"):
            folder.chmod(0o755)
        shutil.chown(root / "mail", MAIL_UID, MAIL_UID)
        (root / "users").write_text("".join(f"{u}:{{PLAIN}}{PASSWORD}\n" for u in self.users))
        make_certificate(self.cert, root / "key.pem")
        self.config.write_text(self._config_text(idle))

    def _config_text(self, idle: bool) -> str:
        root = self.root
        lines = [
            f"base_dir = {root}/run",
            f"state_dir = {root}/state",
            f"log_path = {root}/dovecot.log",
            "protocols = imap",
            "listen = 127.0.0.1",
            "ssl = yes",
            f"ssl_cert = <{self.cert}",
            f"ssl_key = <{root}/key.pem",
            "disable_plaintext_auth = no",
            "auth_mechanisms = plain login",
            "auth_failure_delay = 0",
            f"mail_location = maildir:{root}/mail/%u",
            "default_internal_user = dovecot",
            "default_internal_group = dovecot",
            "default_login_user = dovenull",
            "first_valid_uid = 8",
            "mail_max_userip_connections = 50",
            # A session's process title shows its user and command ("IDLE"): see idling().
            "verbose_proctitle = yes",
            "passdb {",
            "  driver = passwd-file",
            f"  args = scheme=PLAIN username_format=%u {root}/users",
            "}",
            "userdb {",
            "  driver = static",
            f"  args = uid={MAIL_UID} gid={MAIL_UID} home={root}/mail/%u",
            "}",
            "service imap-login {",
            f"  inet_listener imap {{\n    port = {self.imap_port}\n  }}",
            f"  inet_listener imaps {{\n    port = {self.imaps_port}\n  }}",
            "}",
        ]
        if not idle:
            # Dovecot's own list without IDLE (and without extensions that imply it).
            lines.append("imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+")
        if self.acl:
            lines += [
                "mail_plugins = $mail_plugins acl",
                "protocol imap {\n  mail_plugins = $mail_plugins imap_acl\n}",
                "plugin {\n  acl = vfile\n}",
            ]
        return "\n".join(lines) + "\n"


def make_certificate(cert: Path, key: Path, name: str | None = None) -> None:
    """A self-signed certificate for 127.0.0.1 and localhost (or for the DNS `name` alone), its
    key readable by Dovecot."""
    names = ["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
    if name is not None:
        names = ["-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}"]
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", *names]
    subprocess.run(
        [*command, "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True
    )
    key.chmod(0o644)


def _stat(pid: int | str) -> list[str]:
    """State, parent pid, ... of a process; [] once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return []


def _alive(pid: int) -> bool:
    """True while the process runs; a zombie waiting to be reaped counts as gone."""
    fields = _stat(pid)
    return bool(fields) and fields[0] != "Z"


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(entry.name)) and fields[1] == str(parent):
            found.append(int(entry.name))
    return found
