"""A worker process for the multi-process claim tests: claims until the queue is empty.

Prints each claimed id on its own line. Run as `python -m tests.claim_worker URL NAME`.
"""

from __future__ import annotations

import asyncio
import sys

from muninmaild.records import Analysis, Todo, TokenUsage
from muninmaild.store.engine import create_engine
from muninmaild.store.repository import Repository
from tests.factories import claim_one, complete_one

ANSWER = Analysis("done", ("urgent",), (Todo("one", "low", None),))


async def work(url: str, name: str) -> None:
    engine = create_engine(url)
    repo = Repository(engine)
    n = 0
    try:
        while True:
            n += 1
            token = f"{name}#{n}"
            msg = await claim_one(repo, token, 60)
            if msg is None:
                return
            print(msg.id, flush=True)
            if not await complete_one(repo, msg.id, token, ANSWER, TokenUsage(1, 1), "test"):
                print(f"fenced {msg.id}", flush=True)
    finally:
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(work(sys.argv[1], sys.argv[2]))
