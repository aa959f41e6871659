"""The daemon's lifecycle, in order: database, parts, loops, READY=1, stop, drain, close.

Error policy (docs/errors.md): anything that fails before READY=1 is fatal (configuration: exit
78; database: exit 1, so systemd retries); after it, each loop keeps its own error barrier, and a
loop that still dies takes the daemon down with exit 1 for systemd to restart. Signal handlers
only set events; a second SIGTERM forces the exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from muninmaild import __version__
from muninmaild.config.settings import Settings, mask_url
from muninmaild.control.commands import Commands
from muninmaild.control.listener import open_listener
from muninmaild.control.server import ControlServer, Limits
from muninmaild.protocol import NoArgs
from muninmaild.redact import Redactor
from muninmaild.service import report
from muninmaild.service.compose import Parts, build
from muninmaild.service.membership import Membership
from muninmaild.service.metrics import Exporter
from muninmaild.service.metrics_http import MetricsServer, open_metrics_socket
from muninmaild.service.notify import Notifier
from muninmaild.service.reload import Reloader
from muninmaild.store.engine import create_engine
from muninmaild.store.migrate import migrate_apart
from muninmaild.waiting import first_of

log = logging.getLogger(__name__)
STATUS_EVERY_S = 5.0


@dataclass
class Signals:
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    reload: asyncio.Event = field(default_factory=asyncio.Event)

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._on_stop)
        loop.add_signal_handler(signal.SIGINT, self._on_stop)
        loop.add_signal_handler(signal.SIGHUP, self.reload.set)

    def _on_stop(self) -> None:
        if self.stop.is_set():
            log.warning("second stop signal: exiting without waiting for in-flight work")
            os._exit(1)
        self.stop.set()


async def run(
    settings: Settings,
    redact: Redactor,
    *,
    once: bool = False,
    reload_settings: Callable[[], Settings] | None = None,
) -> int:
    log.info("muninmaild %s starting; database %s", __version__, mask_url(settings.database.url))
    engine = create_engine(settings.database.url)
    try:
        if await migrate_apart(engine, settings.database.url):
            log.info("database schema brought up to date")
        parts = build(settings, engine, redact, once=once)
        try:
            if once:
                return await _run_once(parts, settings)
            return await _serve(parts, settings, redact, reload_settings)
        finally:
            await parts.backend.aclose()
    finally:
        await engine.dispose()


async def _run_once(parts: Parts, settings: Settings) -> int:
    # Registered like a serving daemon: what crashed instances of this boot held is taken
    # over first, and a run-once that is killed is rescued the same way.
    member = _member(parts, settings)
    await member.register()
    try:
        for fetcher in parts.fetchers:
            await fetcher.run()
        await parts.processor.run()
        if parts.keywords is not None:
            await parts.keywords.run()
        await parts.retention.run_once()
    finally:
        await member.leave()
    rows = await parts.repo.results_for(parts.processor.stats.handled_ids)
    counts = await parts.repo.counts()
    statuses = [f.status for f in parts.fetchers]
    sys.stdout.write(report.render(rows, parts.processor.stats, counts, statuses))
    return 1 if any(s.last_error for s in statuses) else 0


async def _serve(
    parts: Parts,
    settings: Settings,
    redact: Redactor,
    reload_settings: Callable[[], Settings] | None,
) -> int:
    notifier = Notifier()
    signals = Signals()
    signals.install()
    reload = Reloader(parts, settings, redact, reload_settings, notifier, lambda: _status(parts))
    commands = _commands(parts, settings, reload)
    # Before the control socket: taking that one clears systemd's activation variables.
    metrics = _metrics(settings, commands)
    member = _member(parts, settings)
    await member.register()
    async with metrics, _control(commands, settings), asyncio.TaskGroup() as tg:
        loops = [tg.create_task(parts.processor.run(), name="processor")]
        loops += [tg.create_task(f.run(), name=f"fetch-{f.source.account}") for f in parts.fetchers]
        if parts.keywords is not None:
            loops.append(tg.create_task(parts.keywords.run(), name="keywords"))
        beats = [
            tg.create_task(_watchdog(notifier, loops), name="watchdog"),
            tg.create_task(_status_updates(parts, notifier), name="status"),
            tg.create_task(member.run(), name="cluster"),
            tg.create_task(parts.retention.run(), name="retention"),
        ]
        notifier.ready(await _status(parts))
        log.info("ready: %d account(s), backend %s", len(parts.fetchers), parts.backend.name)
        while await _next_event(signals) == "reload":
            await reload()
        notifier.stopping()
        drain = reload.settings.daemon.drain_timeout
        log.info("stopping: draining in-flight work for up to %.0f s", drain)
        for fetcher in parts.fetchers:
            fetcher.stop()
        if parts.keywords is not None:
            parts.keywords.stop()
        parts.processor.stop(drain)
        await asyncio.wait(loops)
        member.stop()
        parts.retention.stop()
        for task in beats[:2]:
            task.cancel()
    await member.leave()
    log.info("stopped")
    return 0


def _member(parts: Parts, settings: Settings) -> Membership:
    def on_event(event: str) -> None:
        # Mail queued, a pause changed, on another instance: look at the queue now.
        parts.processor.wake()

    return Membership(
        parts.repo,
        parts.instance_id,
        heartbeat_s=settings.daemon.heartbeat_seconds,
        on_event=on_event,
    )


def _commands(parts: Parts, settings: Settings, reload: Reloader) -> Commands:
    exporter = Exporter(parts, settings.accounts)
    alive_within_s = 3 * settings.daemon.heartbeat_seconds
    return Commands(parts, reload, alive_within_s=alive_within_s, metrics=exporter.render)


def _control(commands: Commands, settings: Settings) -> ControlServer:
    """The control socket, bound before READY=1 and closed after the loops have stopped."""
    d = settings.daemon
    listener = open_listener(d.control_socket, d.socket_group)
    limits = Limits(d.control_max_connections, d.control_idle_timeout)
    return ControlServer(listener, commands.respond, __version__, limits)


def _metrics(
    settings: Settings, commands: Commands
) -> contextlib.AbstractAsyncContextManager[object]:
    """The metrics listener when one is configured or passed by systemd; else nothing."""
    sock = open_metrics_socket(settings.metrics)
    if sock is None:
        return contextlib.nullcontext()
    return MetricsServer(sock, lambda: commands.metrics(NoArgs()))


async def _next_event(signals: Signals) -> str:
    await first_of(signals.stop.wait(), signals.reload.wait())
    if signals.stop.is_set():
        return "stop"
    signals.reload.clear()
    return "reload"


async def _watchdog(notifier: Notifier, loops: list[asyncio.Task[None]]) -> None:
    """Pings from the event loop itself, and only while every loop is alive: a stalled event
    loop or a dead loop stops the pings, and systemd restarts us."""
    interval = notifier.watchdog_interval
    if not interval:
        return
    while all(not t.done() for t in loops):
        notifier.watchdog()
        await asyncio.sleep(interval)


async def _status_updates(parts: Parts, notifier: Notifier) -> None:
    while True:
        await asyncio.sleep(STATUS_EVERY_S)
        try:
            notifier.status(await _status(parts))
        except Exception:
            log.warning("cannot read queue counts for the status line", exc_info=True)


async def _status(parts: Parts) -> str:
    counts = await parts.repo.counts()
    paused = " (processor paused)" if parts.processor.paused else ""
    held = parts.processor.hold.active()
    model = f"; {held.line()}" if held is not None else ""
    return f"{counts.status_line()}{paused}{model}"
