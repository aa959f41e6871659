"""Lists of ids bound a chunk at a time: SQLite allows 32,766 bound parameters a statement,
PostgreSQL (asyncpg) 32,767, and a list that grows with the queue must never reach either."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

CHUNK = 1000
T = TypeVar("T")


def chunks(items: Sequence[T] | set[T], size: int = CHUNK) -> Iterator[list[T]]:
    """`items` in lists of at most `size`, in order."""
    listed = list(items)
    for start in range(0, len(listed), size):
        yield listed[start : start + size]
