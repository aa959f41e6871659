"""Re-reading the configuration file while running, for SIGHUP and `reload` on the socket alike.

What can change live applies at once (log level, `[processor]` but for its number of slots);
changes to the database, the accounts or the model are kept for the next start and named. A file
that does not load is refused as a whole and the running configuration stays. The outcome goes
to the journal and, for `muninctl reload`, back to whoever asked.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from muninmaild.config.settings import ProcessorSettings, Settings
from muninmaild.control.commands import lift_hold
from muninmaild.records import ReloadOutcome
from muninmaild.redact import Redactor
from muninmaild.service import logs
from muninmaild.service.compose import Parts
from muninmaild.service.notify import Notifier

log = logging.getLogger(__name__)
RESTART_SECTIONS = ("database", "accounts", "ai", "metrics", "digest")


class Reloader:
    def __init__(
        self,
        parts: Parts,
        settings: Settings,
        redact: Redactor,
        read: Callable[[], Settings] | None,
        notifier: Notifier,
        status: Callable[[], Awaitable[str]],
    ) -> None:
        self.settings = settings  # the running configuration
        self._parts = parts
        self._redact = redact
        self._read = read
        self._notifier = notifier
        self._status = status

    async def __call__(self) -> ReloadOutcome:
        self._notifier.reloading()
        outcome = self._apply()
        # Whatever the file said, a person acted: a model held for the account tries again.
        lift_hold(self._parts, "reload")
        try:
            status = await self._status()
        except Exception:  # systemd must hear READY=1 again whatever the queue does
            log.warning("cannot read queue counts for the status line", exc_info=True)
            status = "reloaded"
        self._notifier.reloaded(status)
        return outcome

    def _apply(self) -> ReloadOutcome:
        if self._read is None:
            reason = "this instance was started without a file to re-read"
            log.error("reload refused: %s", reason)
            return ReloadOutcome(refused=reason)
        try:
            new = self._read()
        except Exception as exc:
            reason = self._redact(str(exc))
            log.error("reload refused, keeping the running configuration: %s", reason)
            return ReloadOutcome(refused=reason)
        current, self.settings = self.settings, new
        self._redact.update(new.secrets())
        logs.set_level(new.daemon.log_level)
        self._parts.processor.settings = live_processor(current, new)
        restart = tuple(
            name for name in RESTART_SECTIONS if getattr(new, name) != getattr(current, name)
        )
        if restart:
            log.warning("reloaded; changes to %s take effect after a restart", ", ".join(restart))
        else:
            log.info("reloaded")
        return ReloadOutcome(restart_needed=restart)


def live_processor(current: Settings, new: Settings) -> ProcessorSettings:
    # The number of slots is fixed while running; everything else applies at once.
    return replace(new.processor, concurrency=current.processor.concurrency)
