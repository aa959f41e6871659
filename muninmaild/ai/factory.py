"""Pick the backend. A client library loads only when its backend has a message to analyse."""

from __future__ import annotations

import asyncio
import importlib

from muninmaild.ai.base import Backend, ModelAnswer, ModelInput
from muninmaild.ai.budget import RateBudget, budget_for
from muninmaild.ai.schema import check_flags
from muninmaild.config.settings import AISettings

# The module and class of each backend that speaks to a service over HTTP.
REMOTE = {
    "cerebras": ("muninmaild.ai.cerebras", "CerebrasBackend"),
    "openai": ("muninmaild.ai.openai_backend", "OpenAIBackend"),
}


def make_backend(settings: AISettings) -> Backend:
    if settings.backend == "rules":
        from muninmaild.ai.rules.backend import RulesBackend

        return RulesBackend(settings.flags)
    if settings.backend == "noop":
        from muninmaild.ai.noop import NoopBackend

        return NoopBackend()
    return LazyBackend(settings)


def check_settings(settings: AISettings) -> None:
    """What only the model's side can check of a loaded configuration (a `ConfigError`)."""
    if settings.backend in REMOTE:
        check_flags(settings.flags)


def budget_of(backend: Backend) -> RateBudget | None:
    """The rate budget a backend keeps, if it keeps one."""
    budget = getattr(backend, "budget", None)
    return budget if isinstance(budget, RateBudget) else None


class LazyBackend:
    """The `cerebras` or `openai` backend, built on its first message.

    Their client libraries bring httpx and pydantic, tens of megabytes and a noticeable import
    time each (bench/README.md); an idle daemon, or one that only fetches, never pays for them.
    The rate budget is built at once: `status` shows it, and a spent quota holds the processor
    before any client exists.
    """

    local = False
    reads_input = True

    def __init__(self, settings: AISettings) -> None:
        self.name: str = settings.backend
        self.model = settings.model
        self.budget = budget_for(settings)
        self._settings = settings
        self._backend: Backend | None = None
        self._building = asyncio.Lock()

    async def analyse(self, item: ModelInput) -> ModelAnswer:
        backend = self._backend or await self._build()
        return await backend.analyse(item)

    async def _build(self) -> Backend:
        async with self._building:  # the first batch of workers arrives all at once
            if self._backend is None:
                module_name, class_name = REMOTE[self._settings.backend]
                # In a thread: the import takes long enough to stall the watchdog ping and
                # the control socket if the event loop did it.
                module = await asyncio.to_thread(importlib.import_module, module_name)
                self._backend = getattr(module, class_name)(self._settings, self.budget)
            return self._backend

    async def aclose(self) -> None:
        if self._backend is not None:
            await self._backend.aclose()


# The name it had while it built the `cerebras` backend only.
LazyCerebras = LazyBackend
