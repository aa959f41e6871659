"""Picking the backend, and loading the SDK only when the `cerebras` backend is first asked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from muninmaild.ai.factory import make_backend
from muninmaild.config.settings import AISettings

REPO = Path(__file__).resolve().parents[1]

# Run in a fresh interpreter: in the test process the SDK is long loaded by other tests.
FIRST_CALLS = """
import asyncio, importlib, json, sys, time, types
from muninmaild.ai import factory
from muninmaild.ai.base import ModelInput
from muninmaild.config.settings import AISettings, Secret
from tests.fakes.model_server import FakeModelServer

BACKEND, LIBRARY, BASE = sys.argv[1], sys.argv[2], sys.argv[3]
builds = 0

def counted(name):
    global builds
    builds += 1
    return importlib.import_module(name)

factory.importlib = types.SimpleNamespace(import_module=counted)

def item(n):
    return ModelInput(n, "Report", "a@example.com", "b@example.com", "", "Please send it.")

async def main(server):
    settings = AISettings(
        backend=BACKEND, base_url=server.base_url + BASE, api_key=Secret("k"), model="gpt-oss-20b"
    )
    backend = factory.make_backend(settings)
    loaded_before = LIBRARY in sys.modules
    gaps, last, running = [], time.monotonic(), True

    async def tick():
        nonlocal last
        while running:
            await asyncio.sleep(0.002)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.01)
    start = time.monotonic()
    answers = await asyncio.gather(*(backend.analyse(item(n)) for n in range(8)))
    took = time.monotonic() - start
    running = False
    await ticker
    await backend.aclose()
    print(json.dumps({
        "loaded_before": loaded_before,
        "loaded_after": LIBRARY in sys.modules,
        "builds": builds,
        "answers": len(answers),
        "first_calls_s": took,
        "longest_gap_s": max(gaps),
    }))

with FakeModelServer() as server:
    asyncio.run(main(server))
"""


def first_calls(backend: str, library: str, base: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", FIRST_CALLS, backend, library, base],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_local_backends_are_built_at_once() -> None:
    assert make_backend(AISettings(backend="rules")).name == "rules"
    assert make_backend(AISettings(backend="noop")).name == "noop"


@pytest.mark.parametrize(
    ("backend", "library", "base"),
    [("cerebras", "cerebras.cloud.sdk", ""), ("openai", "openai", "/v1")],
)
def test_the_client_loads_on_the_first_message_once_for_all_workers_and_off_the_loop(
    backend: str, library: str, base: str
) -> None:
    result = first_calls(backend, library, base)
    assert result["loaded_before"] is False
    assert result["loaded_after"] is True
    assert result["answers"] == 8
    assert result["builds"] == 1, "eight workers arriving at once built one client"
    # Imported on the event loop, the SDK would stop it for the whole import: one gap as long
    # as the first calls. In a thread the loop goes on ticking meanwhile.
    first_calls_s, longest_gap_s = result["first_calls_s"], result["longest_gap_s"]
    assert isinstance(first_calls_s, float) and isinstance(longest_gap_s, float)
    assert longest_gap_s < first_calls_s / 2, result


IDLE_DAEMON = """
import json, sys
import muninmaild.cli, muninmaild.service.daemon, muninmaild.control.commands
from muninmaild.ai.factory import budget_of, make_backend
from muninmaild.config.settings import AISettings
backend = make_backend(AISettings(backend="openai", base_url="http://127.0.0.1:9/v1", model="m"))
assert budget_of(backend) is not None
print(json.dumps(sorted(m for m in ("openai", "cerebras.cloud.sdk") if m in sys.modules)))
"""


def test_a_daemon_that_has_not_asked_the_model_has_loaded_no_client_library() -> None:
    done = subprocess.run(
        [sys.executable, "-c", IDLE_DAEMON], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
