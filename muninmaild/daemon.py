"""The daemon's lifecycle, in order: database, parts, loops, READY=1, stop, drain, close.

Error policy (docs/errors.md): anything that fails before READY=1 is fatal (configuration: exit
78; database: exit 1, so systemd retries); after it, each loop keeps its own error barrier, and a
loop that still dies takes the daemon down with exit 1 for systemd to restart. Signal handlers
only set events; a second SIGTERM forces the exit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from muninmaild import __version__, logs, report
from muninmaild.cluster import ClusterMember
from muninmaild.control.commands import Commands
from muninmaild.control.listener import open_listener
from muninmaild.control.server import ControlServer, Limits
from muninmaild.notify import Notifier
from muninmaild.parts import Parts, build
from muninmaild.redact import Redactor
from muninmaild.settings import ProcessorSettings, Settings, mask_url
from muninmaild.store.engine import create_engine
from muninmaild.store.migrate import migrate

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
        if await migrate(engine):
            log.info("database schema brought up to date")
        parts = build(settings, engine, redact, once=once)
        try:
            if once:
                return await _run_once(parts)
            return await _serve(parts, settings, redact, reload_settings)
        finally:
            await parts.backend.aclose()
    finally:
        await engine.dispose()


async def _run_once(parts: Parts) -> int:
    for fetcher in parts.fetchers:
        await fetcher.run()
    await parts.processor.run()
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
    member = _member(parts, settings)
    await member.register()
    async with _control(parts, settings, signals), asyncio.TaskGroup() as tg:
        loops = [tg.create_task(parts.processor.run(), name="processor")]
        loops += [tg.create_task(f.run(), name=f"fetch-{f.source.account}") for f in parts.fetchers]
        beats = [
            tg.create_task(_watchdog(notifier, loops), name="watchdog"),
            tg.create_task(_status_updates(parts, notifier), name="status"),
            tg.create_task(member.run(), name="cluster"),
        ]
        notifier.ready(await _status(parts))
        log.info("ready: %d account(s), backend %s", len(parts.fetchers), parts.backend.name)
        while await _next_event(signals) == "reload":
            notifier.reloading()
            settings = _reload(parts, settings, redact, reload_settings)
            notifier.reloaded(await _status(parts))
        notifier.stopping()
        drain = settings.daemon.drain_timeout
        log.info("stopping: draining in-flight work for up to %.0f s", drain)
        for fetcher in parts.fetchers:
            fetcher.stop()
        parts.processor.stop(drain)
        await asyncio.wait(loops)
        member.stop()
        for task in beats[:2]:
            task.cancel()
    await member.leave()
    log.info("stopped")
    return 0


def _member(parts: Parts, settings: Settings) -> ClusterMember:
    def on_event(event: str) -> None:
        # Mail queued, a pause changed, on another instance: look at the queue now.
        parts.processor.wake()

    return ClusterMember(
        parts.repo,
        parts.instance_id,
        parts.engine.url,
        heartbeat_s=settings.daemon.heartbeat_seconds,
        on_event=on_event,
    )


def _control(parts: Parts, settings: Settings, signals: Signals) -> ControlServer:
    """The control socket, bound before READY=1 and closed after the loops have stopped."""
    d = settings.daemon
    listener = open_listener(d.control_socket, d.socket_group)
    limits = Limits(d.control_max_connections, d.control_idle_timeout)
    commands = Commands(parts, signals.reload, alive_within_s=3 * d.heartbeat_seconds)
    return ControlServer(listener, commands.respond, __version__, limits)


async def _next_event(signals: Signals) -> str:
    stop = asyncio.create_task(signals.stop.wait())
    reload = asyncio.create_task(signals.reload.wait())
    await asyncio.wait({stop, reload}, return_when=asyncio.FIRST_COMPLETED)
    stop.cancel()
    reload.cancel()
    if signals.stop.is_set():
        return "stop"
    signals.reload.clear()
    return "reload"


def _reload(
    parts: Parts,
    current: Settings,
    redact: Redactor,
    reload_settings: Callable[[], Settings] | None,
) -> Settings:
    """Apply what can change live; a broken file is reported and the old settings kept."""
    if reload_settings is None:
        return current
    try:
        new = reload_settings()
    except Exception as exc:
        log.error("reload refused, keeping the running configuration: %s", redact(str(exc)))
        return current
    redact.update(new.secrets())
    logs.set_level(new.daemon.log_level)
    parts.processor.settings = _live_processor(current, new)
    restart = [
        name
        for name in ("database", "accounts", "ai")
        if getattr(new, name) != getattr(current, name)
    ]
    if restart:
        log.warning("reloaded; changes to %s take effect after a restart", ", ".join(restart))
    else:
        log.info("reloaded")
    return new


def _live_processor(current: Settings, new: Settings) -> ProcessorSettings:
    # The number of slots is fixed while running; everything else applies at once.
    return replace(new.processor, concurrency=current.processor.concurrency)


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
    return f"{counts.status_line()}{paused}"
