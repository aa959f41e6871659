"""Typed access to one TOML table, with errors that name the key and unknown keys refused."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from muninmaild.errors import ConfigError


def path_value(value: str) -> Path:
    return Path(value).expanduser()


class TableReader:
    """Reads keys from one table; `finish()` refuses any key nobody asked for (typos)."""

    def __init__(self, table: dict[str, Any], prefix: str) -> None:
        self._table = table
        self._prefix = prefix
        self._seen: set[str] = set()

    def where(self, key: str) -> str:
        return f"{self._prefix}.{key}"

    def _get(self, key: str) -> Any:
        self._seen.add(key)
        return self._table.get(key)

    def _fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(self.where(key), message)

    def string(
        self,
        key: str,
        default: str,
        *,
        pattern: str | None = None,
        required: bool = False,
        wanted: str | None = None,
    ) -> str:
        """`wanted` says in words what `pattern` takes, for the error."""
        value = self._get(key)
        if value is None:
            if required:
                raise self._fail(key, "is required")
            return default
        if not isinstance(value, str):
            raise self._fail(key, f"must be a string, not {_kind(value)}")
        if pattern and not re.fullmatch(pattern, value):
            if wanted:
                raise self._fail(key, f"must be {wanted}, not {value!r}")
            raise self._fail(key, f"{value!r} does not match {pattern}")
        return value

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.string(key, default)
        if value not in choices:
            raise self._fail(key, f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    def integer(
        self, key: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, f"must be an integer, not {_kind(value)}")
        self._check_range(key, value, minimum, maximum)
        return value

    def number(self, key: str, default: float, *, minimum: float | None = None) -> float:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(key, f"must be a number, not {_kind(value)}")
        self._check_range(key, value, minimum, None)
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._fail(key, f"must be true or false, not {_kind(value)}")
        return value

    def string_list(self, key: str, default: list[str], *, empty_ok: bool = False) -> list[str]:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self._fail(key, "must be a list of non-empty strings")
        if not value and not empty_ok:
            raise self._fail(key, "must not be empty")
        return value

    def path(self, key: str, default: Path) -> Path:
        return self.optional_path(key) or default

    def optional_path(self, key: str) -> Path | None:
        value = self.string(key, "")
        return path_value(value) if value else None

    def table(self, key: str) -> dict[str, Any]:
        value = self._get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self._fail(key, f"must be a table, not {_kind(value)}")
        return value

    def finish(self) -> None:
        unknown = sorted(set(self._table) - self._seen)
        if unknown:
            raise self._fail(unknown[0], "unknown key (check the spelling)")

    def _check_range(
        self, key: str, value: float, minimum: float | None, maximum: float | None
    ) -> None:
        if minimum is not None and value < minimum:
            raise self._fail(key, f"must be at least {minimum:g}, not {value:g}")
        if maximum is not None and value > maximum:
            raise self._fail(key, f"must be at most {maximum:g}, not {value:g}")


def _kind(value: object) -> str:
    names = {str: "a string", bool: "a boolean", int: "an integer", float: "a number"}
    names |= {list: "a list", dict: "a table"}
    return names.get(type(value), type(value).__name__)
