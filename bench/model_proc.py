"""Our model server for the benchmarks, logging when requests arrive.

    python -m bench.model_proc --latency 0.2 --log requests.json

Runs `tests.fakes.model_server.FakeModelServer` with token and request quotas far above any
benchmark (so its rate-limit headers never slow a client down), a listen backlog as deep as a
real service's, and reads its request count
every few milliseconds; on SIGTERM it writes the (wall time, count) readings where the count
changed, which is what the requests-per-minute check needs.
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
