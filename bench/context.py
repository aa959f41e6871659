"""What the scenarios of one `bench/run.py` share: the size, a work folder, prepared fixtures.

Fixtures are built on first use and kept for the rest of the invocation (the Dovecot mailbox
of P1 also serves P6; the prepared queues serve P2, P3, P4 and P6), and everything started is
stopped when the invocation ends, whatever happened.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bench.core import Size
from bench.mailbox import BenchMailbox
from bench.procs import Daemon
from bench.queue import PgTemplate, SqliteTemplate, new_messages
from muninmaild.records import NewMessage

T = TypeVar("T")


class Context:
    def __init__(self, size: Size, runs: int, verbose: bool = True) -> None:
        self.size = size
        self.runs = runs
        self.verbose = verbose
        # Not 0700 (mkdtemp's mode): Dovecot's unprivileged processes must enter it.
        self.root = Path(tempfile.mkdtemp(prefix="munin-bench-"))
        self.root.chmod(0o755)
        self._stack = contextlib.ExitStack()
        self._cache: dict[str, object] = {}
        self._daemons = 0

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._stack.close()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def log(self, text: str) -> None:
        if self.verbose:
            print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    def alternate(
        self,
        key: str,
        count: int,
        contenders: dict[str, Callable[[], float] | None],
        digits: int = 0,
    ) -> dict[str, list[float]]:
        """Messages a second of each contender (a call that takes seconds for `count`) in every
        run, the order rotated from run to run so none always goes first. A contender that is
        None (its anchor is missing) is not run and gets no figures."""
        rates: dict[str, list[float]] = {name: [] for name in contenders}
        names = [name for name, call in contenders.items() if call is not None]
        for i in range(self.runs):
            for name in names[i % len(names) :] + names[: i % len(names)]:
                call = contenders[name]
                assert call is not None
                rate = count / call()
                rates[name].append(rate)
                self.log(f"{key} run {i + 1}: {name} {rate:,.{digits}f} messages/s")
        return rates

    def folder(self, name: str) -> Path:
        path = self.root / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        path.chmod(0o755)
        return path

    def cached(self, key: str, make: Callable[[], T], cleanup: Callable[[T], None]) -> T:
        if key not in self._cache:
            value = make()
            self._stack.callback(cleanup, value)
            self._cache[key] = value
        return self._cache[key]  # type: ignore[return-value]

    # -- fixtures -------------------------------------------------------------------------------

    def mailbox(self, count: int) -> BenchMailbox:
        def make() -> BenchMailbox:
            self.log(f"loading {count} generated messages into a bench Dovecot")
            return BenchMailbox(count)

        return self.cached(f"mailbox-{count}", make, BenchMailbox.remove)

    def messages(self, count: int) -> list[NewMessage]:
        def make() -> list[NewMessage]:
            self.log(f"generating and parsing {count} messages for the prepared queues")
            return new_messages(count)

        return self.cached(f"messages-{count}", make, lambda _: None)

    def sqlite_template(self, count: int) -> SqliteTemplate:
        def make() -> SqliteTemplate:
            messages = self.messages(count)
            self.log(f"preparing a SQLite queue of {count} pending messages")
            return SqliteTemplate(
                self.folder(f"tpl-sqlite-{count}") / "queue.db", messages, ["processor"]
            )

        return self.cached(f"sqlite-{count}", make, lambda _: None)

    def pg_template(self, count: int) -> PgTemplate:
        def make() -> PgTemplate:
            messages = self.messages(count)
            self.log(f"preparing a PostgreSQL queue of {count} pending messages")
            return PgTemplate(messages, ["processor"])

        return self.cached(f"pg-{count}", make, PgTemplate.remove)

    def daemon(self, db_url: str | None, config: str, name: str = "daemon") -> Daemon:
        """A daemon (not started), stopped at the end of the invocation at the latest.

        Without `db_url` its queue is `queue.db` (SQLite) in its own folder.
        """
        self._daemons += 1
        daemon = Daemon(self.folder(f"{name}-{self._daemons}"), db_url, config)
        self._stack.callback(daemon.stop)
        return daemon
