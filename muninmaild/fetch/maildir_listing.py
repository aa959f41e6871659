"""Listing a Maildir folder at a cost in proportion to what changed (run in a thread).

Every delivery, every move from new/ to cur/ and every flag change (a rename) changes the
mtime of new/ or cur/. So a folder whose two directories kept their mtimes since the last
listing holds nothing new, and is not listed at all. A listing reads names only (no `stat` of
each file); only the files that turn out to be unknown are looked at further.

A directory changed within the last `FRESH_S` seconds is listed again next time: a file
written in the same tick of the clock as the listing leaves the mtime as it was read.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SUBDIRS = ("new", "cur")
FRESH_S = 2.0


@dataclass(frozen=True)
class MaildirFile:
    key: str  # the unique name, before ':'
    path: Path


def key_of(name: str) -> str:
    return name.split(":", 1)[0]


class FolderWatch:
    """The mtimes of each folder's new/ and cur/ as the last complete sync saw them."""

    def __init__(self) -> None:
        self._seen: dict[Path, tuple[int, ...]] = {}

    def stamp(self, folder: Path) -> tuple[int, ...] | None:
        """The folder's mtimes now; None when one of them is too fresh to be trusted."""
        stamps = []
        now = time.time_ns()
        for sub in SUBDIRS:
            try:
                mtime = (folder / sub).stat().st_mtime_ns
            except FileNotFoundError:
                mtime = 0
            if now - mtime < FRESH_S * 1e9:
                return None
            stamps.append(mtime)
        return tuple(stamps)

    def unchanged(self, folder: Path, stamp: tuple[int, ...] | None) -> bool:
        return stamp is not None and self._seen.get(folder) == stamp

    def synced(self, folder: Path, stamp: tuple[int, ...] | None) -> None:
        """Record what a sync that ran to its end saw (a None stamp: list again next time)."""
        if stamp is None:
            self._seen.pop(folder, None)
        else:
            self._seen[folder] = stamp


def names(folder: Path) -> Iterator[MaildirFile]:
    """The message files of new/ and cur/, by name only."""
    for sub in SUBDIRS:
        try:
            entries = os.scandir(folder / sub)
        except FileNotFoundError:
            continue
        with entries:
            for entry in entries:
                if not entry.name.startswith(".") and entry.is_file():
                    yield MaildirFile(key_of(entry.name), Path(entry.path))


def delivery_order(files: list[MaildirFile]) -> list[MaildirFile]:
    """Oldest delivery first (names start with the delivery time), each key once."""
    unique = {f.key: f for f in files}
    return sorted(unique.values(), key=lambda f: (_time_prefix(f.key), f.key))


def _time_prefix(key: str) -> int:
    head = key.split(".", 1)[0]
    return int(head) if head.isdigit() else 0
