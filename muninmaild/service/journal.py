"""journald's native protocol: log records as datagrams of fields, for `journalctl FIELD=value`.

Each record becomes `MESSAGE=`, `PRIORITY=`, `SYSLOG_IDENTIFIER=`, `CODE_*` and, when the log
call passed them in `extra`, `MUNIN_EMAIL_ID=` and `MUNIN_ACCOUNT=`, so that
`journalctl MUNIN_EMAIL_ID=42` shows one message's history.
"""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Callable
from pathlib import Path

JOURNAL_SOCKET = Path("/run/systemd/journal/socket")
# Fields a log call may pass in `extra`, and the journal field each becomes.
EXTRA_FIELDS = {"email_id": "MUNIN_EMAIL_ID", "account": "MUNIN_ACCOUNT"}


def encode_field(name: str, value: str) -> bytes:
    """`NAME=value\\n`, or the length-prefixed form the protocol wants for multi-line values."""
    data = value.encode("utf-8", "replace")
    if b"\n" not in data:
        return name.encode() + b"=" + data + b"\n"
    return name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"


class JournalHandler(logging.Handler):
    """Sends each record to journald; the formatter gives MESSAGE (already scrubbed)."""

    def __init__(
        self,
        priority: Callable[[int], int],
        identifier: str = "muninmaild",
        path: Path = JOURNAL_SOCKET,
    ) -> None:
        super().__init__()
        self._priority = priority
        self._identifier = identifier
        self._path = str(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._sock.sendto(self.encode(record), self._path)
        except Exception:
            self.handleError(record)

    def encode(self, record: logging.LogRecord) -> bytes:
        fields = [
            ("MESSAGE", self.format(record)),
            ("PRIORITY", str(self._priority(record.levelno))),
            ("SYSLOG_IDENTIFIER", self._identifier),
            ("LOGGER", record.name),
            ("CODE_FILE", record.pathname),
            ("CODE_LINE", str(record.lineno)),
            ("CODE_FUNC", record.funcName),
        ]
        for attr, field in EXTRA_FIELDS.items():
            value = getattr(record, attr, None)
            if value is not None:
                fields.append((field, str(value)))
        return b"".join(encode_field(name, value) for name, value in fields)

    def close(self) -> None:
        self._sock.close()
        super().close()


def journal_available(path: Path = JOURNAL_SOCKET) -> bool:
    return path.is_socket()
