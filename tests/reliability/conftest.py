"""Fixtures of the reliability scenarios: daemons that never outlive their test."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from tests.reliability.harness import Daemon

StartDaemon = Callable[..., Daemon]


@pytest.fixture
def daemons() -> Iterator[StartDaemon]:
    """Makes `Daemon`s (not started); every one still running at the end is killed."""
    made: list[Daemon] = []

    def make(state: Path, config: Path, env: Mapping[str, str] | None = None) -> Daemon:
        made.append(Daemon(state, config, env))
        return made[-1]

    yield make
    for daemon in made:
        daemon.kill()
