"""Our model server for the benchmarks, logging when requests arrive.

    python -m bench.model_proc --latency 0.2 --log requests.json [--bodies bodies.json]

Runs `tests.fakes.model_server.FakeModelServer` with token and request quotas far above any
benchmark (so its rate-limit headers never slow a client down), a listen backlog as deep as a
real service's, and reads its request count
every few milliseconds; on SIGTERM it writes the (wall time, count) readings where the count
changed, which is what the requests-per-minute check needs; with `--bodies`, also the user
message of every request, in the order they arrived (what P10 reads of what the model saw).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from tests.fakes.model_server import FakeModelServer

SAMPLE_S = 0.005
UNLIMITED = 10**12
# A real service accepts bursts of many more connections than the workers make.
BACKLOG = 256


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--bodies", type=Path, help="write every request's user message here")
    args = parser.parse_args(argv)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = FakeModelServer(
        latency=args.latency,
        tokens_per_minute=UNLIMITED,
        requests_per_day=UNLIMITED,
        backlog=BACKLOG,
        keep_requests=UNLIMITED if args.bodies else 100,
    )
    readings: list[tuple[float, int]] = []
    with server:
        print(f"listening on {server.base_url}", flush=True)
        last = 0
        while not done.wait(SAMPLE_S):
            count = server.requests
            if count != last:
                readings.append((time.time(), count))
                last = count
    args.log.write_text(json.dumps(readings))
    if args.bodies:
        args.bodies.write_text(json.dumps([user_message(r.json()) for r in server.recorded()]))
    return 0


def user_message(payload: object) -> str:
    """The request's (first) user message: the email as the model was shown it."""
    messages = payload.get("messages", []) if isinstance(payload, dict) else []
    found = [m.get("content", "") for m in messages if isinstance(m, dict)]
    users = [c for m, c in zip(messages, found, strict=True) if m.get("role") == "user"]
    return str(users[0]) if users else ""


if __name__ == "__main__":
    sys.exit(main())
