"""Logging under journald, secret scrubbing, and the sd_notify helpers."""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from muninmaild.redact import Redactor
from muninmaild.service import logs
from muninmaild.service.journal import encode_field
from muninmaild.service.notify import Notifier, watchdog_interval
from tests.fakes.notify import NotifyReceiver


@pytest.fixture
def restore_root_logger() -> object:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield None
    for handler in root.handlers:
        if handler not in saved[0]:
            handler.close()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_journal_lines_carry_priority_prefixes_on_every_line(
    capsys: pytest.CaptureFixture[str], restore_root_logger: object
) -> None:
    logs.setup("info", Redactor(), journal=True, journal_socket=Path("/nonexistent/journal"))
    log = logging.getLogger("muninmaild.test")
    log.warning("careful")
    try:
        raise ValueError("inner")
    except ValueError:
        log.exception("it broke")
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "<4>muninmaild.test: careful"
    assert err[1] == "<3>muninmaild.test: it broke"
    assert len(err) > 3 and all(line.startswith("<3>") for line in err[1:])


def test_secrets_are_scrubbed_from_log_lines_and_tracebacks(
    capsys: pytest.CaptureFixture[str], restore_root_logger: object
) -> None:
    logs.setup("debug", Redactor(["hunter22-secret"]), journal=False)
    log = logging.getLogger("muninmaild.test")
    log.info("login with %s", "hunter22-secret")
    try:
        raise RuntimeError("password hunter22-secret refused")
    except RuntimeError:
        log.exception("failed")
    err = capsys.readouterr().err
    assert "hunter22-secret" not in err
    assert err.count("********") == 3


def test_journal_stream_is_detected_by_device_and_inode() -> None:
    st = os.fstat(2)
    assert logs.journal_stream({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    assert not logs.journal_stream({"JOURNAL_STREAM": "1:2"})
    assert not logs.journal_stream({"JOURNAL_STREAM": "garbage"})
    assert not logs.journal_stream({})


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "10000000"}, 5.0),
        ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}, 5.0),
        ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
    ],
)
def test_watchdog_interval_is_half_the_period_for_us_only(
    env: dict[str, str], expected: float | None
) -> None:
    assert watchdog_interval(env) == expected


def test_notifier_without_socket_is_silent() -> None:
    notifier = Notifier({})
    notifier.ready("x")
    notifier.watchdog()
    assert notifier.watchdog_interval is None


def close_sdnotify(notifier: object) -> None:
    """sdnotify has no close(); a daemon keeps its socket for life, a test must not leak it."""
    getattr(notifier, "socket").close()  # noqa: B009 (an attribute sdnotify does not type)


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotifyReceiver]:
    """A receiver at NOTIFY_SOCKET: sdnotify reads the variable from the environment itself."""
    receiver = NotifyReceiver(tmp_path / "notify.sock")
    monkeypatch.setenv("NOTIFY_SOCKET", str(receiver.path))
    try:
        yield receiver
    finally:
        receiver.close()


def test_a_status_outside_latin_1_still_reaches_systemd(notify_socket: NotifyReceiver) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(notify_socket.path)})
    notifier.ready("2 accounts \u2014 \u201cok\u201d \u2713")
    close_sdnotify(notifier._notifier)
    assert notify_socket.wait_for("READY=1")
    assert notify_socket.lines() == ["READY=1", "STATUS=2 accounts ? ?ok? ?"]


def test_sdnotify_drops_a_message_it_cannot_encode(notify_socket: NotifyReceiver) -> None:
    # Why the Notifier makes every status ASCII: sdnotify encodes Latin-1 and swallows the
    # error, so the whole datagram (READY=1 with it) would vanish. When this fails, sdnotify
    # sends such text now, and the ASCII forcing in service/notify.py may go.
    from sdnotify import SystemdNotifier

    notifier = SystemdNotifier()
    notifier.notify("READY=1\nSTATUS=\u2713")
    notifier.notify("STATUS=after")  # datagrams arrive in order: the first one is lost
    close_sdnotify(notifier)
    assert notify_socket.wait_for("STATUS=after")
    assert notify_socket.lines() == ["STATUS=after"]


def test_redactor_masks_longest_secret_first() -> None:
    redact = Redactor(["abcd", "abcdefgh", "x"])
    assert redact("key abcdefgh and abcd and x") == "key ******** and ******** and x"


def test_redactor_masks_a_secret_also_as_escaped_in_a_repr_json_or_quoted_string() -> None:
    secret = 'pa"ss\\wörd'
    redact = Redactor([secret])
    for text in (secret, repr(secret), json.dumps(secret), json.dumps(secret, ensure_ascii=False)):
        assert redact(f"not {text} here") in (
            "not ******** here",
            "not '********' here",
            'not "********" here',
        )


def test_journal_native_protocol_carries_message_fields(
    tmp_path: Path, restore_root_logger: object
) -> None:
    path = tmp_path / "journal.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.settimeout(2)
    try:
        logs.setup("info", Redactor(["sekrit-pass"]), journal=True, journal_socket=path)
        logging.getLogger("muninmaild.processing.processor").warning(
            "message %d: login sekrit-pass\nsecond line", 42, extra={"email_id": 42, "account": "w"}
        )
        datagram = receiver.recv(65536)
    finally:
        receiver.close()
    assert b"PRIORITY=4\n" in datagram
    assert b"MUNIN_EMAIL_ID=42\n" in datagram
    assert b"MUNIN_ACCOUNT=w\n" in datagram
    assert b"SYSLOG_IDENTIFIER=muninmaild\n" in datagram
    assert b"sekrit-pass" not in datagram
    text = b"message 42: login ********\nsecond line"
    assert b"MESSAGE\n" + struct.pack("<Q", len(text)) + text + b"\n" in datagram


def test_journal_field_encoding() -> None:
    assert encode_field("A", "one line") == b"A=one line\n"
    assert encode_field("B", "x\ny") == b"B\n" + struct.pack("<Q", 3) + b"x\ny\n"
