"""The parsing child: `python -I -m muninmaild.mail.parse_child`, started by `ParseWorker`.

Frames in on stdin, frames out on stdout, until stdin ends: an 8-byte big-endian length, then a
pickle (a list of raw messages in, a list of `ParsedMail` out). It imports the parser, the records
it returns and the standard library's email, html and pickle modules only: no asyncio, nothing
else of the daemon.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Sequence

from muninmaild.mail.parse import parse_message
from muninmaild.records import ParsedMail

LENGTH = 8  # bytes of the big-endian length before every frame


def parse_all(raws: Sequence[bytes]) -> list[ParsedMail]:
    return [parse_message(raw) for raw in raws]


def serve() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = stdin.read(LENGTH)
        if len(head) < LENGTH:
            return
        raws = pickle.loads(stdin.read(int.from_bytes(head, "big")))
        answer = pickle.dumps(parse_all(raws), protocol=pickle.HIGHEST_PROTOCOL)
        stdout.write(len(answer).to_bytes(LENGTH, "big") + answer)
        stdout.flush()


if __name__ == "__main__":
    serve()
