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
import asyncio, importlib, json, sys, threading, types
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
    settings = AISettings(
        backend=BACKEND, base_url=server.base_url + BASE, api_key=Secret("k"), model="gpt-oss-20b"
    )
    backend = factory.make_backend(settings)
    global ticks
    loaded_before = LIBRARY in sys.modules
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
    ours = {"cerebras": "muninmaild.ai.cerebras", "openai": "muninmaild.ai.openai_backend"}
    prefixes = (LIBRARY.split(".")[0], ours[BACKEND])
    client = [load for load in loads if load[0].startswith(prefixes)]
    print(json.dumps({
        "loaded_before": loaded_before,
        "loaded_after": LIBRARY in sys.modules,
        "builds": builds,
        "answers": len(answers),
        "client_modules": len(client),
        "client_modules_on_loop": [name for name, on_loop, _ in client if on_loop],
        "ticks_while_loading": client[-1][2] - client[0][2] if client else 0,
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
    # Imported on the event loop, the client library would stop it for the whole import (the
    # watchdog ping and the control socket with it). In a thread the loop goes on ticking
    # meanwhile. (bench P4 has the longest gap between watchdog pings while the SDK loads.)
    assert isinstance(result["client_modules"], int) and result["client_modules"] > 10, result
    assert result["client_modules_on_loop"] == [], result
    assert isinstance(result["ticks_while_loading"], int) and result["ticks_while_loading"] > 0


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
