"""P4's floor: the fastest a Python client gets through the model server, with no queue at all.

    python -m bench.model_floor --url URL --count 2000 --concurrency 32

`concurrency` coroutines share one aiohttp client (the HTTP client the daemon's SDK uses) and
post the same small chat request until `count` answers are in; prints the seconds that took.
The request is the one the Celery anchor sends (bench/model_request.py).
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp

from bench.model_request import HEADERS, MODEL_REQUEST


async def answers(url: str, count: int, concurrency: int) -> float:
    """Seconds for `count` answers with `concurrency` requests in flight."""
    left = count
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as client:

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                async with client.post(url, data=MODEL_REQUEST, headers=HEADERS) as answer:
                    answer.raise_for_status()
                    await answer.read()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="the server's base URL, without /v1")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    args = parser.parse_args(argv)
    url = f"{args.url.rstrip('/')}/v1/chat/completions"
    print(f"{asyncio.run(answers(url, args.count, args.concurrency)):.6f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
