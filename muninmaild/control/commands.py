"""One handler per control command, and the one place where exceptions become error answers.

Handlers get arguments the protocol module has already checked, and return the `result` object
of the answer. Pause and resume are stored in the database, so they survive restarts and reach
every instance sharing it; this instance also acts on them at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from muninmaild import __version__, protocol
from muninmaild.ai.base import Backend
from muninmaild.ai.factory import budget_of
from muninmaild.control import backlog, results, views
from muninmaild.fetch.loop import FetchLoop
from muninmaild.processing.processor import Processor
from muninmaild.processing.retention import Retention
from muninmaild.protocol import (
    DigestArgs,
    FetchNowArgs,
    ListArgs,
    NoArgs,
    PauseArgs,
    ProtocolError,
    RequeueArgs,
    ShowArgs,
    TodoIdsArgs,
    TodosArgs,
    WaitIdleArgs,
)
from muninmaild.records import ReloadOutcome
from muninmaild.store.repository import Repository

if TYPE_CHECKING:  # they load aioimaplib, which a daemon without IMAP accounts never needs
    from muninmaild.writeback.digest import DigestDelivery
    from muninmaild.writeback.keywords import KeywordWriter

log = logging.getLogger(__name__)
WAIT_POLL_S = 0.1
Json = dict[str, Any]


class Parts(Protocol):
    """What the commands steer: the parts the service's composition root built."""

    @property
    def repo(self) -> Repository: ...
    @property
    def backend(self) -> Backend: ...
    @property
    def processor(self) -> Processor: ...
    @property
    def fetchers(self) -> Sequence[FetchLoop]: ...
    @property
    def instance_id(self) -> str: ...
    @property
    def retention(self) -> Retention: ...
    @property
    def keywords(self) -> KeywordWriter | None: ...
    @property
    def digest(self) -> DigestDelivery | None: ...


def lift_hold(parts: Parts, why: str) -> None:
    """End a hold on the model (account, quota, rate) so that the next claim tries again."""
    budget = budget_of(parts.backend)
    if budget is not None:
        budget.lift()
    if parts.processor.hold.clear(why):
        parts.processor.wake()


class Commands:
    def __init__(
        self,
        parts: Parts,
        reload: Callable[[], Awaitable[ReloadOutcome]],
        alive_within_s: float = 30.0,
        metrics: Callable[[Json], Awaitable[Json]] | None = None,
    ) -> None:
        self._parts = parts
        self._reload = reload
        self._metrics = metrics  # the status, rendered as Prometheus text (service/metrics.py)
        self._alive_within_s = alive_within_s  # an instance silent longer is shown as gone
        self._started = time.monotonic()
        self._handlers: dict[str, Callable[[Any], Awaitable[Json]]] = {
            "ping": self.ping,
            "version": self.version,
            "status": self.status,
            "pause": self.pause,
            "resume": self.resume,
            "requeue": self.requeue,
            "list": self.list_messages,
            "show": self.show,
            "todos": self.todos,
            "fetch-now": self.fetch_now,
            "reload": self.reload,
            "wait-idle": self.wait_idle,
            "metrics": self.metrics,
            "done": self.done,
            "undone": self.undone,
            "digest": self.digest,
        }

    async def respond(self, line: bytes) -> Json:
        """One request line to one answer. Never raises: this is the connection's barrier."""
        try:
            request = protocol.parse_request(line)
        except ProtocolError as exc:
            return protocol.error_answer(exc.request_id, exc.code, exc.message)
        try:
            result = await self._handlers[request.cmd](request.args)
        except ProtocolError as exc:
            return protocol.error_answer(request.id, exc.code, exc.message)
        except Exception:
            log.exception("control command %s failed", request.cmd)
            message = f"{request.cmd} failed inside the daemon; the journal has the reason"
            return protocol.error_answer(request.id, protocol.UNAVAILABLE, message)
        return protocol.ok_answer(request.id, result)

    async def ping(self, args: NoArgs) -> Json:
        return {"pong": True}

    async def version(self, args: NoArgs) -> Json:
        return {"name": protocol.NAME, "version": __version__, "protocol": protocol.PROTOCOL}

    async def status(self, args: NoArgs) -> Json:
        parts = self._parts
        tokens = await parts.repo.token_totals()
        today = views.start_of_day()
        left_out = await parts.repo.backfill_left_out()
        paused = await parts.repo.paused()
        queue = (await parts.repo.counts()).as_dict()
        usage = await parts.repo.usage_since(today)
        return {
            "version": __version__,
            "pid": os.getpid(),
            "instance": parts.instance_id,
            "uptime_s": round(time.monotonic() - self._started, 1),
            "paused": paused,
            "queue": queue,
            "accounts": [self._account(f, left_out) for f in parts.fetchers],
            "model": {
                "backend": parts.backend.name,
                "model": parts.backend.model,
                "tokens_in": tokens.tokens_in,
                "tokens_out": tokens.tokens_out,
                "hold": views.hold(parts.processor.hold.active()),
                "today": views.today(usage, budget_of(parts.backend))
                | views.answers_today(await parts.repo.answers_since(today)),
            }
            | await self._shortcuts(),
            "session": views.session(parts.processor.stats),
            "last_error": views.last_error(await parts.repo.last_error()),
            "database": views.database(parts.repo.health),
            "cluster": views.cluster(await parts.repo.cluster(self._alive_within_s)),
            "waiting": views.waiting(await parts.repo.waiting(), datetime.now(UTC)),
            "retention": views.retention(parts.retention.status),
            "backlog": await self._backlog(queue, paused, usage),
        }

    async def _backlog(self, queue: Json, paused: dict[str, bool], usage: tuple[int, int]) -> Json:
        """What is left, the pace and the budget, and when it will be done (control/backlog.py)."""
        now = datetime.now(UTC)
        since = now - timedelta(seconds=backlog.PACE_WINDOW_S)
        pace = backlog.Pace(*await self._parts.repo.answer_pace(since))
        budget = budget_of(self._parts.backend)
        hold = self._parts.processor.hold.active()
        return backlog.estimate(
            queue["pending"] + queue["processing"],
            backlog.per_minute(pace, now),
            backlog.budget_per_minute(budget.limits if budget else None, usage),
            paused=paused["processor"],
            held_until=hold.until if hold is not None else None,
            now=now,
        )

    async def _shortcuts(self) -> Json:
        """`ai.skip` and the answer cache, with the cache's size when it is on."""
        found = self._parts.processor.shortcuts
        caching = found is not None and found.caching
        entries = await self._parts.repo.answer_cache_size() if caching else None
        return views.shortcuts(found, entries)

    def _account(self, fetcher: FetchLoop, left_out: dict[str, int]) -> Json:
        writer = self._parts.keywords
        name = fetcher.status.account
        status = writer.status.get(name) if writer else None
        backfill = views.backfill(fetcher.status, left_out.get(name, 0))
        return views.account(fetcher.status) | {"keywords": views.keywords(status)} | backfill

    async def pause(self, args: PauseArgs) -> Json:
        return await self._set_paused(args.components, True)

    async def resume(self, args: PauseArgs) -> Json:
        return await self._set_paused(args.components, False)

    async def _set_paused(self, components: tuple[str, ...], paused: bool) -> Json:
        for component in components:
            await self._parts.repo.set_paused(component, paused)
        if "processor" in components:
            if not paused:
                lift_hold(self._parts, "muninctl resume")  # a person acted: try the model now
            self._parts.processor.wake()  # re-reads the pause before its next claim
        if "fetcher" in components:
            for fetcher in self._parts.fetchers:
                fetcher.fetch_now()  # shows "paused" at once, or catches up after a resume
        return {"paused": await self._parts.repo.paused()}

    async def requeue(self, args: RequeueArgs) -> Json:
        # The arguments are a RequeueFilter, with two switches of the command's own.
        matched = await self._parts.repo.count_requeue(args)
        if args.count_only:
            return {"requeued": 0, "matched": matched}
        if matched > protocol.CONFIRM_ABOVE and not args.yes:
            raise ProtocolError(
                protocol.CONFIRM,
                f"{matched} messages match: nothing was requeued; "
                f"add --yes to requeue more than {protocol.CONFIRM_ABOVE} at once",
            )
        count = await self._parts.repo.requeue_matching(args)
        if count:
            self._parts.processor.wake()
        return {"requeued": count, "matched": matched}

    async def list_messages(self, args: ListArgs) -> Json:
        found = await self._parts.repo.list_messages(
            args.status, args.since, args.limit, details=args.details
        )
        return {"messages": found}

    async def show(self, args: ShowArgs) -> Json:
        found = await self._parts.repo.message_detail(args.id)
        if found is None:
            raise ProtocolError(protocol.NOT_FOUND, f"there is no message {args.id}")
        found["keywords"] = await self._parts.repo.keyword_write(args.id)
        return {"message": found}

    async def todos(self, args: TodosArgs) -> Json:
        return await results.todos(self._parts.repo, args)

    async def done(self, args: TodoIdsArgs) -> Json:
        return await results.set_done(self._parts.repo, args, True)

    async def undone(self, args: TodoIdsArgs) -> Json:
        return await results.set_done(self._parts.repo, args, False)

    async def digest(self, args: DigestArgs) -> Json:
        accounts = [f.status.account for f in self._parts.fetchers]
        return await results.digest(self._parts.repo, args, accounts, self._parts.digest)

    async def fetch_now(self, args: FetchNowArgs) -> Json:
        fetchers = self._parts.fetchers
        if args.account is not None:
            fetchers = [f for f in fetchers if f.status.account == args.account]
            if not fetchers:
                known = ", ".join(f.status.account for f in self._parts.fetchers) or "none"
                raise ProtocolError(
                    protocol.NOT_FOUND, f"there is no account {args.account!r}; accounts: {known}"
                )
        for fetcher in fetchers:
            fetcher.fetch_now()
        paused = (await self._parts.repo.paused())["fetcher"]
        return {"accounts": [f.status.account for f in fetchers], "fetcher_paused": paused}

    async def reload(self, args: NoArgs) -> Json:
        outcome = await self._reload()  # the same path as SIGHUP
        if outcome.refused is not None:
            message = f"reload refused, the running configuration stays: {outcome.refused}"
            raise ProtocolError(protocol.INVALID_CONFIG, message)
        return {"reloading": True, "reloaded": True, "restart_needed": list(outcome.restart_needed)}

    async def wait_idle(self, args: WaitIdleArgs) -> Json:
        start = time.monotonic()
        deadline = start + args.timeout
        while True:
            outstanding = await self._outstanding(args.ignore_retries)
            if not outstanding:
                return {"idle": True, "waited_s": round(time.monotonic() - start, 3)}
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                waiting = "; ".join(outstanding)
                raise ProtocolError(
                    protocol.TIMEOUT, f"not idle after {args.timeout:g} s: {waiting}"
                )
            await asyncio.sleep(min(WAIT_POLL_S, remaining))

    async def metrics(self, args: NoArgs) -> Json:
        if self._metrics is None:
            raise ProtocolError(protocol.UNAVAILABLE, "this daemon serves no metrics")
        return await self._metrics(await self.status(args))

    async def _outstanding(self, ignore_retries: bool) -> list[str]:
        """What keeps the daemon from being idle, in words; empty when it is idle."""
        # Fetchers first: mail they queued before settling is then in the counts below.
        busy = [
            f"account {s.account} is {s.state}"
            for s in (f.status for f in self._parts.fetchers)
            if not views.fetcher_settled(s)
        ]
        left = await self._parts.repo.unsettled(include_scheduled=not ignore_retries)
        if left:
            busy.append(f"{left} message(s) pending or processing")
        writer = self._parts.keywords
        if writer is not None:
            due = await self._parts.repo.keyword_writes_due([a.name for a in writer.accounts])
            if due:
                busy.append(f"keywords of {due} message(s) to write")
        return busy
