"""Pick the backend. The SDK loads only when the `cerebras` backend has a message to analyse."""

from __future__ import annotations

import asyncio
import importlib

from muninmaild.ai.base import Backend, ModelAnswer, ModelInput
from muninmaild.ai.budget import RateBudget
from muninmaild.config.settings import AISettings


def make_backend(settings: AISettings) -> Backend:
    if settings.backend == "rules":
        from muninmaild.ai.rules.backend import RulesBackend

        return RulesBackend(settings.flags)
    if settings.backend == "noop":
        from muninmaild.ai.noop import NoopBackend

        return NoopBackend()
    return LazyCerebras(settings)


class LazyCerebras:
    """The `cerebras` backend, built on its first message.

    The SDK brings httpx and pydantic, tens of megabytes and a noticeable import time
    (bench/README.md); an idle daemon, or one that only fetches, never pays for them.
    """

    name = "cerebras"
    local = False
    reads_input = True

    def __init__(self, settings: AISettings) -> None:
        self.model = settings.model
        self._settings = settings
        self._backend: Backend | None = None
        self._building = asyncio.Lock()

    async def analyse(self, item: ModelInput) -> ModelAnswer:
        backend = self._backend or await self._build()
        return await backend.analyse(item)

    async def _build(self) -> Backend:
        async with self._building:  # the first batch of workers arrives all at once
            if self._backend is None:
                # In a thread: the import takes long enough to stall the watchdog ping and
                # the control socket if the event loop did it.
                module = await asyncio.to_thread(importlib.import_module, "muninmaild.ai.cerebras")
                s = self._settings
                budget = RateBudget(s.requests_per_minute, s.tokens_per_minute)
                self._backend = module.CerebrasBackend(s, budget)
            return self._backend

    async def aclose(self) -> None:
        if self._backend is not None:
            await self._backend.aclose()
