"""Render effective settings as TOML for `muninmaild --check-config`, secrets masked."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from muninmaild.config.settings import FlagSpec, Secret, Settings, mask_url

MASK = "********"


def render(settings: Settings) -> str:
    lines = [f"# effective configuration (from {settings.source_path or 'built-in defaults'})"]
    for section in ("daemon", "database", "processor"):
        lines += ["", f"[{section}]", *_pairs(getattr(settings, section))]
    for account in settings.accounts:
        lines += ["", "[[accounts]]", *_pairs(account)]
    lines += ["", "[ai]", *_pairs(settings.ai, skip=("flags",))]
    for flag in settings.ai.flags:
        lines += ["", f"[ai.flags.{flag.name}]", *_flag(flag)]
    lines += ["", "[metrics]", *_pairs(settings.metrics)]
    lines += ["", "[digest]", *_pairs(settings.digest)]
    return "\n".join(lines) + "\n"


def _pairs(obj: object, skip: tuple[str, ...] = ()) -> list[str]:
    out = []
    for field in dataclasses.fields(obj):  # type: ignore[arg-type]
        if field.name in skip:
            continue
        value = getattr(obj, field.name)
        if field.name == "url":
            value = mask_url(value)
        if value is not None:
            out.append(f"{field.name} = {_value(value)}")
    return out


def _flag(flag: FlagSpec) -> list[str]:
    lines = [f"description = {_value(flag.description)}"]
    if flag.keywords:
        lines.append(f"keywords = {_value(flag.keywords)}")
    lines.append(f"keyword = {_value(flag.imap_keyword)}")
    return lines


def _value(value: object) -> str:
    if isinstance(value, Secret):
        return json.dumps(MASK)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Path):
        value = str(value)
    return json.dumps(str(value), ensure_ascii=False)
