"""The results: `results.json` for scripts, `results.md` (the same table that is printed)."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from bench.core import NOT_RUN, Row, ScenarioResult, SizeName


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return NOT_RUN
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:,.1f} s"
    if unit == "ms":
        return f"{value:,.0f} ms"
    if unit == "MB":
        return f"{value:,.1f} MB"
    if abs(value) >= 100:
        return f"{value:,.0f} {unit}".strip()
    return f"{value:,.2f} {unit}".strip()


HEADER = (
    "",
    "scenario",
    "measure",
    "ours (median)",
    "anchor",
    "anchor (median)",
    "judged",
    "goal",
    "met",
)


def table(results: list[ScenarioResult], size: SizeName) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for result in results:
        if result.error:
            error = result.error if len(result.error) <= 160 else "..." + result.error[-157:]
            cells = [result.key, result.title, "**failed**", error, "", "", "", "", ""]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
            continue
        for i, row in enumerate(result.rows):
            lines.append(_line(result, row, first=i == 0, size=size))
    return "\n".join(lines)


def _line(result: ScenarioResult, row: Row, *, first: bool, size: SizeName) -> str:
    anchor = fmt(row.anchor, row.unit) if row.anchor_label != "-" else "-"
    shows_ratio = row.judged_unit == "x" and row.anchor_label != "-"
    judged = fmt(row.judged, row.judged_unit) if row.goal or shows_ratio else "-"
    cells = [
        result.key if first else "",
        result.title if first else "",
        row.label,
        row.shown or fmt(row.ours, row.unit),
        row.anchor_label,
        anchor,
        row.shown or judged,
        row.goal.text if row.goal else "-",
        row.met(size),
    ]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def notes(results: list[ScenarioResult]) -> list[str]:
    out = []
    for result in results:
        for row in result.rows:
            if row.note:
                out.append(f"- {result.key} {row.label}: {row.note}")
    return out


def markdown(results: list[ScenarioResult], meta: dict[str, Any]) -> str:
    m = meta["machine"]
    size: SizeName = meta["size"]
    head = [
        f"# muninmail benchmarks ({size}, {meta['runs']} run(s) each, medians)",
        "",
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, Python {m['python']}, "
        f"{m['platform']}; load average at the end {m['load_average_at_end']}. "
        f"Run at {meta['started']}, {meta['seconds']:.0f} s in all.",
        "",
        "`judged` is what the goal looks at: the median of the per-run ratios of our figure to "
        "the anchor measured beside it, or our own figure where the goal is absolute.",
        "",
        table(results, size),
    ]
    extra = notes(results)
    if meta.get("slow_daemon_stops"):
        stops = ", ".join(meta["slow_daemon_stops"])
        extra.append(f"- daemons that took over 8 s to stop on SIGTERM: {stops}")
    if extra:
        head += ["", "Notes:", "", *extra]
    return "\n".join(head) + "\n"


def write(results: list[ScenarioResult], meta: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    size: SizeName = meta["size"]
    stem = "results" if size == "full" else f"results-{size}"
    if not meta.get("complete", True):  # a subset never overwrites the results of a whole run
        stem = f"results-{size}-{'-'.join(r.key for r in results)}"
    data = {
        **meta,
        "scenarios": {
            r.key: {
                "title": r.title,
                "seconds": round(r.seconds, 1),
                "error": r.error,
                "rows": [row.as_json(size) for row in r.rows],
                "details": r.details,
            }
            for r in results
        },
    }
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    md_path.write_text(markdown(results, meta))
    return json_path, md_path


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S %z")


def echo(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
