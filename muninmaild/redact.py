"""Scrub secrets out of any text that leaves the process (logs, stored errors, answers)."""

from __future__ import annotations

import json
from collections.abc import Iterable

MASK = "********"
_MIN_LEN = 4  # shorter "secrets" would mangle ordinary words


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        found = {form for s in secrets if len(s) >= _MIN_LEN for form in written_forms(s)}
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted(found, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


def written_forms(secret: str) -> set[str]:
    """The secret as it is, and as a repr, JSON or a quoted string (IMAP's too) escape it.

    A message that quotes a value with `!r` (a configuration error naming the bad value) writes
    a backslash or a quote in a secret escaped, and the plain form would not match.
    """
    return {
        secret,
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        secret.replace("\\", "\\\\").replace('"', '\\"'),
    }
