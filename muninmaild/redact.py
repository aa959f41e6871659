"""Scrub secrets out of any text that leaves the process (logs, stored errors, answers)."""

from __future__ import annotations

from collections.abc import Iterable

MASK = "********"
_MIN_LEN = 4  # shorter "secrets" would mangle ordinary words


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        found = {s for s in secrets if len(s) >= _MIN_LEN}
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text
