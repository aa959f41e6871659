"""What every scenario shares: sizes, results with their goals, medians and percentiles."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

SizeName = Literal["smoke", "full"]
NOT_RUN = "not run"


@dataclass(frozen=True)
class Size:
    """How large each scenario is; `smoke` keeps every script working in seconds."""

    name: SizeName
    p1_messages: int
    p2_messages: int
    p3_messages: int
    p3_daemons: tuple[int, ...]
    p4_messages: int
    p4_budget_window_s: float
    p5_messages: int
    p5_gap_s: float
    p6_pending: int
    p6_sample_s: float
    p7_starts: int
    p7_status_calls: int
    p10_messages: int = 1_000
    p9_backlog: int = 2_000
    p9_probes: int = 3
    p6_first_sync: tuple[int, ...] = (10_000, 100_000)
    p8_rows: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    p8_idle_s: float = 30.0
    p11_rows: int = 1_000_000


SIZES = {
    "smoke": Size(
        "smoke",
        200,
        300,
        300,
        (1, 2, 4),
        64,
        3.0,
        5,
        0.6,
        300,
        1.0,
        2,
        3,
        p10_messages=100,
        p9_backlog=40,
        p9_probes=1,
        p6_first_sync=(300,),
        p8_rows=(1_000, 5_000),
        p8_idle_s=2.0,
        p11_rows=5_000,
    ),
    "full": Size(
        "full", 10_000, 10_000, 10_000, (1, 2, 4), 2_000, 30.0, 200, 0.6, 10_000, 5.0, 7, 15
    ),
}


@dataclass(frozen=True)
class Goal:
    """`value op target`, e.g. a ratio of at least 1.5 or a latency of at most 0.5 s."""

    op: Literal[">=", "<="]
    target: float
    text: str

    def met(self, value: float | None) -> bool | None:
        if value is None or math.isnan(value):
            return None
        return value >= self.target if self.op == ">=" else value <= self.target


@dataclass
class Row:
    """One line of the table: our figure, its anchor, the ratio that the goal judges."""

    scenario: str
    label: str
    ours: float | None
    unit: str
    anchor_label: str = "-"
    anchor: float | None = None
    judged: float | None = None  # what the goal looks at: a ratio, or our figure itself
    judged_unit: str = "x"
    goal: Goal | None = None
    runs: list[float] = field(default_factory=list)
    anchor_runs: list[float] = field(default_factory=list)
    note: str = ""
    shown: str = ""  # words instead of a number in the ours and judged columns

    def met(self, size: SizeName) -> str:
        if self.goal is None:
            return "-"
        if size == "smoke":
            return "(smoke)"
        verdict = self.goal.met(self.judged)
        return {True: "yes", False: "**NO**", None: NOT_RUN}[verdict]

    def as_json(self, size: SizeName) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "label": self.label,
            "ours": self.ours,
            "unit": self.unit,
            "ours_runs": self.runs,
            "anchor_label": self.anchor_label,
            "anchor": self.anchor,
            "anchor_runs": self.anchor_runs,
            "judged": self.judged,
            "judged_unit": self.judged_unit,
            "goal": self.goal.text if self.goal else None,
            "met": self.met(size),
            "shown": self.shown,
            "note": self.note,
        }


@dataclass
class ScenarioResult:
    key: str
    title: str
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


def median(values: Sequence[float]) -> float | None:
    clean = [v for v in values if not math.isnan(v)]
    return statistics.median(clean) if clean else None


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ratio(ours: float | None, anchor: float | None) -> float | None:
    if ours is None or anchor is None or anchor == 0:
        return None
    return ours / anchor


def paired_ratio(ours: Sequence[float], anchors: Sequence[float]) -> float | None:
    """The median of per-run ratios: each run's figure against the anchor measured beside it."""
    pairs = [o / a for o, a in zip(ours, anchors, strict=False) if a and not math.isnan(o)]
    return median(pairs)


def compare(
    scenario: str,
    label: str,
    unit: str,
    ours: Sequence[float],
    anchor_label: str,
    anchors: Sequence[float] | None,
    goal: Goal | None,
    note: str = "",
) -> Row:
    """A row judged by the ratio of our figure to an anchor measured in the same runs."""
    anchor_values = list(anchors or [])
    return Row(
        scenario,
        label,
        median(ours),
        unit,
        anchor_label,
        median(anchor_values) if anchors is not None else None,
        paired_ratio(ours, anchor_values) if anchors is not None else None,
        "x",
        goal,
        list(ours),
        anchor_values,
        note,
    )


def absolute(
    scenario: str,
    label: str,
    unit: str,
    ours: Sequence[float],
    goal: Goal | None,
    anchor_label: str = "-",
    anchor: float | None = None,
    note: str = "",
) -> Row:
    """A row judged by our own figure (a latency, a memory size, a rate)."""
    value = median(ours)
    return Row(
        scenario,
        label,
        value,
        unit,
        anchor_label,
        anchor,
        value,
        unit,
        goal,
        list(ours),
        [],
        note,
    )


def timed_runs(runs: int, once: Callable[[int], float]) -> list[float]:
    return [once(i) for i in range(runs)]
