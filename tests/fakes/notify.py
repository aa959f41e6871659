"""A NOTIFY_SOCKET receiver: what systemd would hear from the daemon."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path


class NotifyReceiver:
    """A datagram socket collecting sd_notify messages in a background thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.1)
        self._running = True
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while self._running:
            try:
                data = self._sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                for line in data.decode("utf-8", "replace").splitlines():
                    self.messages.append((time.monotonic(), line))

    def lines(self) -> list[str]:
        with self._lock:
            return [line for _, line in self.messages]

    def times_of(self, line: str) -> list[float]:
        with self._lock:
            return [t for t, m in self.messages if m == line]

    def wait_for(self, line: str, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if line in self.lines():
                return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        self._running = False
        self._thread.join(timeout=2)
        self._sock.close()
