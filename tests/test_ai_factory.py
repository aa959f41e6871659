"""Picking the backend, and loading the SDK only when the `cerebras` backend is first asked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from muninmaild.ai.factory import make_backend
from muninmaild.config.settings import AISettings

REPO = Path(__file__).resolve().parents[1]

# Run in a fresh interpreter: in the test process the SDK is long loaded by other tests.
FIRST_CALLS = """
import asyncio, json, sys, threading
from muninmaild.ai import factory
from muninmaild.ai.base import ModelInput
from muninmaild.config.settings import AISettings, Secret
from tests.fakes.model_server import FakeModelServer

builds = 0
real_budget = factory.RateBudget

def counted(*args, **kwargs):
    global builds
    builds += 1
    return real_budget(*args, **kwargs)

factory.RateBudget = counted

# Every module loaded from now on: its name, whether the event loop's thread loaded it, and
# how many times the loop had ticked by then.
LOOP_THREAD = threading.get_ident()
ticks = 0
loads = []

def on_audit(event, args):
    if event == "import":
        loads.append((args[0], threading.get_ident() == LOOP_THREAD, ticks))

sys.addaudithook(on_audit)

def item(n):
    return ModelInput(n, "Report", "a@example.com", "b@example.com", "", "Please send it.")

async def main(server):
    global ticks
    settings = AISettings(backend="cerebras", base_url=server.base_url, api_key=Secret("k"))
    backend = factory.make_backend(settings)
    loaded_before = "cerebras.cloud.sdk" in sys.modules
    running = True

    async def tick():
        global ticks
        while running:
            await asyncio.sleep(0.002)  # the loop's other work: the watchdog, the socket
            ticks += 1

    ticker = asyncio.create_task(tick())
    answers = await asyncio.gather(*(backend.analyse(item(n)) for n in range(8)))
    running = False
    await ticker
    await backend.aclose()
    sdk = [load for load in loads if load[0].startswith(("cerebras", "muninmaild.ai.cerebras"))]
    print(json.dumps({
        "loaded_before": loaded_before,
        "loaded_after": "cerebras.cloud.sdk" in sys.modules,
        "builds": builds,
        "answers": len(answers),
        "sdk_modules": len(sdk),
        "sdk_modules_on_loop": [name for name, on_loop, _ in sdk if on_loop],
        "ticks_while_loading": sdk[-1][2] - sdk[0][2] if sdk else 0,
    }))

with FakeModelServer() as server:
    asyncio.run(main(server))
"""


def first_calls() -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", FIRST_CALLS], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_local_backends_are_built_at_once() -> None:
    assert make_backend(AISettings(backend="rules")).name == "rules"
    assert make_backend(AISettings(backend="noop")).name == "noop"


def test_the_sdk_loads_on_the_first_message_once_for_all_workers_and_off_the_loop() -> None:
    result = first_calls()
    assert result["loaded_before"] is False
    assert result["loaded_after"] is True
    assert result["answers"] == 8
    assert result["builds"] == 1, "eight workers arriving at once built one client"
    # Imported on the event loop, the SDK would stop it for the whole import (the watchdog
    # ping and the control socket with it). In a thread the loop goes on ticking meanwhile.
    # (bench P4 has the longest gap between watchdog pings while the SDK loads.)
    assert isinstance(result["sdk_modules"], int) and result["sdk_modules"] > 10, result
    assert result["sdk_modules_on_loop"] == [], result
    assert isinstance(result["ticks_while_loading"], int) and result["ticks_while_loading"] > 0
