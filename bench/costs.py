"""Single operations, timed for P7: a ping over the control socket, idle and beside busy
clients, and the in-process steps whose worst cases the tests check for behaviour only (the
parser on a 10 MB attachment, the trimmer on pathological bodies, the `rules` backend on a
typical and on a huge body).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from muninmaild import protocol
from muninmaild.ai.base import ModelInput
from muninmaild.ai.rules.backend import analyse_message
from muninmaild.mail.parse import parse_message
from muninmaild.mail.trim import trim_for_model

IDLE_CLIENTS = 200
FLOOD_BYTES = 10_000_000

TYPICAL = (
    "Hi Robin,\n\nThe Q3 report is nearly done but the EMEA numbers are missing.\n"
    "Could you send me the EMEA figures by Friday? Also, please review the draft.\n\n"
    "Action items:\n- update the forecast\n- check the travel costs\n\n"
    "Can we meet on Thursday at 3pm to go through it?\n\nThanks,\nAlex"
)
# The bodies tests/test_mail_trim.py feeds the trimmer.
PATHOLOGICAL = (
    "On a wrote:\n" * 50_000,
    ("On a wrote:\n" + "> q\n" * 3) * 20_000,
    "From: a\nSent: b\nTo: c\n" * 20_000,
    "x" * 1_000_000,
    ">" * 1_000_000,
    "On " + "x" * 500_000 + " wrote:",
)


def ping_ms(path: Path) -> float:
    """Connect, greeting, ping, answer: the whole round trip."""
    started = time.perf_counter()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        reader = sock.makefile("rb")
        json.loads(reader.readline())
        sock.sendall(protocol.request(1, "ping"))
        answer = json.loads(reader.readline())
        reader.close()
    if answer.get("result") != {"pong": True}:
        raise RuntimeError(f"ping answered {answer}")
    return (time.perf_counter() - started) * 1000


@contextlib.contextmanager
def busy_clients(path: Path) -> Iterator[None]:
    """200 idle connections, and a client sending one endless 10 MB line."""
    idle = []
    stop = threading.Event()

    def flood() -> None:
        with socket.socket(socket.AF_UNIX) as s, contextlib.suppress(OSError):
            s.settimeout(10)
            s.connect(str(path))
            chunk = b"x" * 65536
            for _ in range(FLOOD_BYTES // len(chunk)):
                if stop.is_set():
                    return
                s.sendall(chunk)  # the daemon hangs up once the line is too long

    thread = threading.Thread(target=flood)
    try:
        for _ in range(IDLE_CLIENTS):
            s = socket.socket(socket.AF_UNIX)
            idle.append(s)
            s.settimeout(10)
            s.connect(str(path))
        thread.start()
        yield
    finally:
        stop.set()
        if thread.is_alive():
            thread.join(30)
        for s in idle:
            s.close()


def best_ms(step: Callable[[], object], runs: int = 3) -> float:
    """The fastest of a few runs: the step's own cost, with the least of the machine's noise."""
    found = []
    for _ in range(runs):
        started = time.perf_counter()
        step()
        found.append((time.perf_counter() - started) * 1000)
    return min(found)


def step_costs() -> dict[str, float]:
    """Milliseconds of each in-process step (the trimmer: its slowest body)."""
    data = base64.encodebytes(b"\x01" * 10_000_000)
    raw = (
        b"Subject: big\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n"
        b"Content-Type: text/plain\r\n\r\nbig file attached\r\n--B\r\n"
        b"Content-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; filename=big.zip\r\n\r\n" + data + b"\r\n--B--\r\n"
    )

    def item(body: str) -> ModelInput:
        return ModelInput(
            7, "Quarterly numbers", "Alex <alex@example.com>", "r@example.com", "", body
        )

    huge = "Please send it by Friday. Can we meet at 3pm? " * 50_000
    return {
        "parse_10mb_attachment": best_ms(lambda: parse_message(raw)),
        "trim_pathological": max(
            best_ms(functools.partial(trim_for_model, t, 4_000)) for t in PATHOLOGICAL
        ),
        "rules_typical": best_ms(lambda: [analyse_message(item(TYPICAL)) for _ in range(100)])
        / 100,
        "rules_huge_body": best_ms(lambda: analyse_message(item(huge))),
    }
