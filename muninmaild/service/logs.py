"""Logging: stderr, or journald's native protocol under journald; secrets scrubbed everywhere."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from muninmaild.redact import Redactor
from muninmaild.service.journal import JOURNAL_SOCKET, JournalHandler, journal_available

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
LEVELS["error"] = logging.ERROR
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3}


def journal_stream(env: Mapping[str, str] | None = None) -> bool:
    """True when stderr is the journal's stream (JOURNAL_STREAM is "dev:inode" of it)."""
    env = os.environ if env is None else env
    value = env.get("JOURNAL_STREAM", "")
    try:
        dev, inode = (int(x) for x in value.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (dev, inode)


_PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Formatter(logging.Formatter):
    def __init__(self, redact: Redactor, journal: bool, plain: str = _PLAIN) -> None:
        super().__init__("%(name)s: %(message)s" if journal else plain)
        self._redact = redact
        self._journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = self._redact(super().format(record))
        if not self._journal:
            return text
        # journald stores one entry per line: every line of a traceback needs the prefix.
        prefix = f"<{priority(record.levelno)}>"
        return "\n".join(prefix + line for line in text.splitlines())


def priority(level: int) -> int:
    """The syslog priority of a logging level."""
    if level >= logging.CRITICAL:
        return 2
    return next((p for lvl, p in sorted(_PRIORITY.items(), reverse=True) if level >= lvl), 7)


def setup(
    level: str,
    redact: Redactor,
    journal: bool | None = None,
    journal_socket: Path = JOURNAL_SOCKET,
) -> None:
    """stderr, or under journald its native protocol (structured fields), stderr as fallback."""
    journal = journal_stream() if journal is None else journal
    handler: logging.Handler
    if journal and journal_available(journal_socket):
        handler = JournalHandler(priority, path=journal_socket)
        handler.setFormatter(_Formatter(redact, journal=False, plain="%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Formatter(redact, journal))
    root = logging.getLogger()
    for old in root.handlers:
        old.close()
    root.handlers[:] = [handler]
    set_level(level)


def set_level(level: str) -> None:
    logging.getLogger().setLevel(LEVELS.get(level, logging.INFO))
    # Client libraries log request details at INFO; keep them out unless debugging.
    quiet = logging.DEBUG if level == "debug" else logging.WARNING
    for name in ("httpx", "httpcore", "aioimaplib"):
        logging.getLogger(name).setLevel(quiet)
    for name in ("alembic", "sqlalchemy", "aiosqlite", "asyncio"):
        logging.getLogger(name).setLevel(logging.WARNING)
