"""One IMAP connection through aioimaplib, made safe for a daemon.

Every call runs under a timeout and races the loss of the connection, so a server that goes
away is noticed at once rather than after the timeout. Any failure marks the connection
broken: aioimaplib keeps a timed-out command queued and blocks the next one behind it, so a
broken connection is only ever discarded, and the caller connects afresh.

aioimaplib has no STARTTLS: after the server's tagged OK the transport is upgraded with
`loop.start_tls`, and the capabilities are asked for again. It also counts only SELECT as
selecting a mailbox, so the state is set by hand after EXAMINE (read-only selection).

The password is never put into a message: aioimaplib's own exceptions may quote the LOGIN
command, so errors of the login say what failed in our words only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import aioimaplib

from muninmaild.config.settings import AccountSettings
from muninmaild.errors import FetchAuthError, FetchError
from muninmaild.fetch.imap.client import Client
from muninmaild.fetch.imap.responses import (
    FetchedItem,
    MailboxInfo,
    parse_examine,
    parse_fetch,
    parse_search,
    quote_mailbox,
    quote_string,
    says_bye,
    status_text,
    uid_set,
)
from muninmaild.fetch.imap.tls_hints import certificate_hint

log = logging.getLogger(__name__)
T = TypeVar("T")
IDLE_LIMIT_S = 29 * 60.0  # aioimaplib's own stop for an IDLE; we end ours well before
FETCH_TIMEOUT_FACTOR = 4  # a FETCH of a batch may take longer than one answer


class _NoLoginCommands(logging.Filter):
    """aioimaplib logs every command it sends at DEBUG and masks the password only as given,
    not in the escaped form LOGIN carries when it holds a quote or a backslash."""

    def filter(self, record: logging.LogRecord) -> bool:
        return " LOGIN " not in record.getMessage()


logging.getLogger("aioimaplib.aioimaplib").addFilter(_NoLoginCommands())


class MailboxRefused(FetchError):
    """EXAMINE was refused (no such mailbox, no right to read it); the connection is fine."""


def tls_context(settings: AccountSettings) -> ssl.SSLContext:
    """Certificates verified against the system's trust store, or against `ca_file` alone."""
    cafile = str(settings.ca_file) if settings.ca_file else None
    try:
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise FetchError(f"account {settings.name}: ca_file {cafile}: {reason}") from None


class ImapConnection:
    """Open with `ImapConnection.open()`; end with `logout()` or `discard()`."""

    def __init__(self, settings: AccountSettings, timeout: float) -> None:
        self.timeout = timeout
        self.broken = False
        self.last_used = time.monotonic()
        self._settings = settings
        self._where = f"{settings.server}:{settings.port}"
        self._lost = asyncio.Event()
        self._idle: asyncio.Future[Any] | None = None
        self._done_sent = False
        context = tls_context(settings) if settings.security == "tls" else None
        self._client = Client(
            host=settings.server,
            port=settings.port,
            timeout=timeout,
            conn_lost_cb=self._on_lost,
            ssl_context=context,
        )

    @classmethod
    async def open(cls, settings: AccountSettings, call_timeout_s: float) -> ImapConnection:
        """Connect, secure the connection as configured, and log in."""
        if settings.password is None:
            raise FetchAuthError(f"account {settings.name}: no password is configured")
        conn = cls(settings, call_timeout_s)
        try:
            await conn._call("connect", conn._client.wait_hello_from_server())
            if settings.security == "starttls":
                await conn._starttls()
            await conn._login()
            # Capabilities change after login and aioimaplib keeps them only if the server
            # volunteers them: ask.
            await conn._call("CAPABILITY", conn._client.protocol.capability())
        except BaseException:
            conn.discard()
            raise
        return conn

    @property
    def usable(self) -> bool:
        return not (self.broken or self._lost.is_set())

    def unused_for(self) -> float:
        return time.monotonic() - self.last_used

    @property
    def supports_idle(self) -> bool:
        return bool(self._client.has_capability("IDLE"))

    # -- commands -------------------------------------------------------------------------

    async def examine(self, mailbox: str) -> MailboxInfo:
        """Open a mailbox read-only, so no flag ever changes."""
        await self._settle()
        protocol = self._client.protocol
        response = await self._call(
            f"EXAMINE {mailbox}", self._client.examine(quote_mailbox(mailbox))
        )
        if response.result != "OK":
            protocol.state = aioimaplib.AUTH  # a failed EXAMINE leaves no mailbox selected
            raise MailboxRefused(
                f"{self._where}: cannot open mailbox {mailbox!r}: {status_text(response.lines)}"
            )
        protocol.state = aioimaplib.SELECTED
        try:
            return parse_examine(response.lines)
        except ValueError as exc:
            self.broken = True
            raise FetchError(f"{self._where}: mailbox {mailbox!r}: {exc}") from None

    async def uids_from(self, first: int) -> list[int]:
        """UIDs of the selected mailbox from `first` on."""
        await self._settle()
        search = self._client.uid_search("UID", f"{first}:*", charset=None)
        response = await self._call("UID SEARCH", search)
        self._expect_ok("UID SEARCH", response)
        return parse_search(response.lines, above=first - 1)

    async def highest_uid(self) -> int | None:
        """The highest UID in the selected mailbox; None when it is empty.

        For a server whose EXAMINE gives no UIDNEXT (Courier): `*` in a UID set names the
        last message, so this is one short answer, not a search that lists every UID.
        """
        await self._settle()
        response = await self._call("UID FETCH", self._client.uid("fetch", "*", "(UID)"))
        if response.result != "OK":  # an empty mailbox, on a server that says so with NO
            return None
        return max(parse_fetch(response.lines), default=None)

    async def uids_before(self, uids: Sequence[int], day: str) -> set[int]:
        """Which of `uids` arrived before `day` (an IMAP date) by their INTERNALDATE."""
        await self._settle()
        search = self._client.uid_search("UID", uid_set(uids), "BEFORE", day, charset=None)
        response = await self._call("UID SEARCH", search)
        self._expect_ok("UID SEARCH", response)
        return set(parse_search(response.lines)).intersection(uids)

    async def uids_in(self, first: int, last: int) -> list[int]:
        """UIDs of the selected mailbox from `first` to `last`."""
        await self._settle()
        search = self._client.uid_search("UID", f"{first}:{last}", charset=None)
        response = await self._call("UID SEARCH", search)
        self._expect_ok("UID SEARCH", response)
        return [uid for uid in parse_search(response.lines, above=first - 1) if uid <= last]

    async def fetch(self, uids: Sequence[int], section: str | None) -> dict[int, FetchedItem]:
        """UID and size, and `BODY.PEEK[section]` unless `section` is None, by UID."""
        await self._settle()
        items = (
            "(UID RFC822.SIZE)" if section is None else f"(UID RFC822.SIZE BODY.PEEK[{section}])"
        )
        command = self._client.uid("fetch", uid_set(uids), items)
        response = await self._call("UID FETCH", command, self.timeout * FETCH_TIMEOUT_FACTOR)
        self._expect_ok("UID FETCH", response)
        return parse_fetch(response.lines)

    async def start_idle(self) -> None:
        await self._settle()
        queue = self._client.protocol.idle_queue
        while not queue.empty():  # pushes left over from an earlier IDLE are stale
            queue.get_nowait()
        self._idle = await self._call("IDLE", self._client.idle_start(timeout=IDLE_LIMIT_S))
        self._done_sent = False

    async def wait_push(self, quiet_s: float) -> list[bytes] | None:
        """Lines the server pushed during IDLE, or None after `quiet_s` seconds of quiet."""
        if not self.usable:
            raise FetchError(f"{self._where}: the connection is closed")
        push = asyncio.ensure_future(self._client.wait_server_push(quiet_s))
        lost = asyncio.ensure_future(self._lost.wait())
        done: set[asyncio.Future[Any]] = set()
        try:
            done, _ = await asyncio.wait({push, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (push, lost):
                task.cancel()
        if push in done:
            try:
                lines = push.result()
            except TimeoutError:
                return None
            if lines == aioimaplib.STOP_WAIT_SERVER_PUSH:
                return None
            self.last_used = time.monotonic()  # the server spoke: the connection is alive
            if says_bye(lines):
                self.broken = True  # it is closing the connection: connect afresh at once
            return list(lines)
        self.broken = True
        raise FetchError(f"{self._where}: the server closed the connection during IDLE")

    def stop_idle(self) -> None:
        """End IDLE (sends DONE); the server's answer is awaited before the next command."""
        if self._idle is None or self._done_sent:
            return
        self._done_sent = True
        if self.usable and not self._idle.done():
            self._client.idle_done()

    async def logout(self) -> None:
        """LOGOUT if the connection still works, then close it; never raises FetchError."""
        if self.usable:
            try:
                await self._settle()
                await self._call("LOGOUT", self._client.logout())
            except FetchError as exc:
                log.debug("LOGOUT failed: %s", exc)
        self.discard(graceful=True)

    def discard(self, graceful: bool = False) -> None:
        """Drop the connection and everything aioimaplib still has running for it.

        aioimaplib has no way to close a client: its timers and tasks are cancelled here one by
        one (attributes of aioimaplib 2.0), so nothing of it outlives the connection.
        """
        self.broken = True
        client = self._client
        if client._idle_waiter is not None:
            client._idle_waiter.cancel()
        for task in (*client.tasks, *client.protocol.tasks, self._idle, client._client_task):
            if task is not None and not task.done():
                task.cancel()
        transport = client.protocol.transport
        if transport is None or transport.is_closing():
            return
        if graceful:
            transport.close()
        else:
            transport.abort()

    # -- the connection's set-up ------------------------------------------------------------

    async def _starttls(self) -> None:
        protocol = self._client.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise FetchError(f"{self._where}: the server does not offer STARTTLS")
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        self._expect_ok("STARTTLS", await self._call("STARTTLS", protocol.execute(command)))
        loop = asyncio.get_running_loop()
        upgrade = loop.start_tls(
            protocol.transport,
            protocol,
            tls_context(self._settings),
            server_hostname=self._settings.server,
        )
        protocol.transport = await self._call("the TLS handshake", upgrade)
        await self._call("CAPABILITY", protocol.capability())

    async def _login(self) -> None:
        settings = self._settings
        if "LOGINDISABLED" in self._client.protocol.capabilities:
            raise FetchError(
                f"{self._where}: the server refuses a plain-text login on this connection; "
                'use security = "tls" or "starttls"'
            )
        assert settings.password is not None  # checked in open()
        login = self._client.login(quote_string(settings.username), settings.password.reveal())
        response = await self._call("LOGIN", login, detail=False)
        if response.result == "OK":
            return
        words = self._scrub(status_text(response.lines))
        who = f"{self._where}: login of {settings.username!r}"
        if response.result == "NO" and "[UNAVAILABLE]" not in words.upper():
            raise FetchAuthError(f"{who} refused: {words}")
        raise FetchError(f"{who} failed: {words}")

    # -- running one call -----------------------------------------------------------------

    async def _settle(self) -> None:
        """Wait for the end of an IDLE before the next command."""
        if self._idle is None:
            return
        self.stop_idle()
        idle, self._idle = self._idle, None
        self._expect_ok("IDLE", await self._call("IDLE", idle))

    async def _call(
        self, what: str, step: Awaitable[T], limit_s: float | None = None, *, detail: bool = True
    ) -> T:
        """Run one aioimaplib call under a timeout, racing the loss of the connection."""
        task = asyncio.ensure_future(step)
        if not self.usable:
            task.cancel()
            raise FetchError(f"{self._where}: the connection is closed")
        limit = limit_s or self.timeout
        lost = asyncio.ensure_future(self._lost.wait())
        done: set[asyncio.Future[Any]] = set()
        try:
            done, _ = await asyncio.wait(
                {task, lost}, timeout=limit, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            lost.cancel()
            if task not in done:
                task.cancel()
                self.broken = True  # the command may still be queued inside aioimaplib
        self.last_used = time.monotonic()
        if task in done:
            try:
                return task.result()
            except Exception as exc:
                self.broken = True
                reason = f": {self._describe(exc, limit)}" if detail else ""
                raise FetchError(f"{self._where}: {what} failed{reason}") from None
        if lost in done:
            raise FetchError(f"{self._where}: the server closed the connection during {what}")
        raise FetchError(f"{self._where}: no answer to {what} within {limit:g} s")

    def _expect_ok(self, what: str, response: Any) -> None:
        if response.result != "OK":
            raise FetchError(f"{self._where}: {what} refused: {status_text(response.lines)}")

    def _describe(self, exc: Exception, limit: float) -> str:
        if isinstance(exc, TimeoutError | aioimaplib.CommandTimeout):
            return f"no answer within {limit:g} s"
        if isinstance(exc, ssl.SSLCertVerificationError):
            hint = certificate_hint(self._settings, exc.verify_code)
            return f"the server's TLS certificate is not trusted ({exc.verify_message}); {hint}"
        if isinstance(exc, ssl.SSLError):
            return f"TLS failed ({exc.reason or exc})"
        if isinstance(exc, OSError):
            return os.strerror(exc.errno) if exc.errno else str(exc) or "connection error"
        return self._scrub(str(exc))[:300] or type(exc).__name__

    def _scrub(self, text: str) -> str:
        secret = self._settings.password.reveal() if self._settings.password else ""
        if not secret:
            return text
        for form in (quote_string(secret), secret):
            text = text.replace(form, "********")
        return text

    def _on_lost(self, exc: Exception | None) -> None:
        self._lost.set()
