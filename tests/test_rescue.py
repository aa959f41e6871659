"""Crashed instances of this host and boot are rescued at once; others keep the lease rule."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from muninmaild.records import InstanceInfo, QueueCounts
from muninmaild.service.membership import boot_id, rescue_dead
from muninmaild.store.repository import Repository
from tests.factories import new_message

HOST = "mail1"


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(proc.stdout)


async def test_rows_and_mailboxes_of_a_dead_instance_of_this_boot_come_back(
    any_engine: AsyncEngine,
) -> None:
    repo = Repository(any_engine)
    pid = dead_pid()
    boot = boot_id()
    assert boot is not None  # Linux
    for name, its_boot in (("same", boot), ("other-boot", "0" * 32), ("unknown", None)):
        await repo.register_instance(InstanceInfo(name, HOST, pid, "1", its_boot))
    await repo.add_messages([new_message(i) for i in range(1, 7)])
    for n, name in enumerate(("same", "other-boot", "unknown")):
        assert len(await repo.claim_batch(f"{name}#{n}", 2, 3600)) == 2
    # A token of another instance whose id starts with this one's is not its.
    await repo.register_instance(InstanceInfo("same2", "elsewhere", pid, "1", boot))

    assert await rescue_dead(repo, HOST, boot) == 2
    # The claim takes the newest first: "same" holds 6 and 5, "other-boot" 4 and 3, and so on.
    assert await repo.counts() == QueueCounts(pending=2, processing=4)
    async with any_engine.connect() as conn:
        found = (
            await conn.execute(
                text("SELECT claimed_by, attempts, last_error FROM emails ORDER BY id DESC")
            )
        ).all()
        stopped = (
            (
                await conn.execute(
                    text("SELECT id FROM instances WHERE stopped_at IS NOT NULL ORDER BY id")
                )
            )
            .scalars()
            .all()
        )
    assert [r[0] for r in found[:2]] == [None, None]
    assert all(r[1] == 1 and "crashed" in r[2] for r in found[:2])
    assert [r[0] for r in found[2:]] == ["other-boot#1", "other-boot#1", "unknown#2", "unknown#2"]
    # Another boot keeps the lease rule; an instance that recorded no boot gives up its
    # mailboxes (as before) but not its rows.
    assert list(stopped) == ["same", "unknown"]
