"""sd_notify: readiness, status, watchdog and stop notices to systemd.

sdnotify does nothing without NOTIFY_SOCKET and swallows its own errors; it encodes Latin-1,
so a STATUS= with other characters would vanish silently: status text is forced to ASCII here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self._notifier = None
        if env.get("NOTIFY_SOCKET"):
            from sdnotify import SystemdNotifier

            self._notifier = SystemdNotifier()
        self.watchdog_interval = watchdog_interval(env)

    def _send(self, line: str) -> None:
        if self._notifier is not None:
            self._notifier.notify(line)

    def ready(self, status: str) -> None:
        self._send(f"READY=1\nSTATUS={_ascii(status)}")

    def status(self, text: str) -> None:
        self._send(f"STATUS={_ascii(text)}")

    def reloading(self) -> None:
        self._send("RELOADING=1")

    def reloaded(self, status: str) -> None:
        self._send(f"READY=1\nSTATUS={_ascii(status)}")

    def stopping(self) -> None:
        self._send("STOPPING=1\nSTATUS=stopping")

    def watchdog(self) -> None:
        self._send("WATCHDOG=1")


def watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Half the watchdog period, if the watchdog is on and meant for this process."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 2_000_000


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii").replace("\n", " ")
