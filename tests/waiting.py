"""Waiting for something to happen: a condition polled until a deadline, never a fixed sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def until(check: Callable[[], bool], within_s: float = 10.0, what: str = "") -> None:
    """Until `check()` holds (another task makes it so); fails after `within_s`."""
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what or check}"
        await asyncio.sleep(0.005)


def wait_until(check: Callable[[], bool], within_s: float = 20.0, what: str = "") -> None:
    """Until `check()` holds (another process makes it so); fails after `within_s`."""
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what or check}"
        time.sleep(0.05)
