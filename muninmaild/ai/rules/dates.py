"""Date phrases for the offline rules backend: "by Friday", "3 December", "end of the month".

Phrases are resolved against a reference date, the message's own date, so the same message always
gives the same dates.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import date, timedelta

from muninmaild.ai.rules.text import MONTH_PATTERN, MONTHS, alternation, squash

_WEEKDAY_NAMES = (
    ("monday", "montag", "lundi"),
    ("tuesday", "dienstag", "mardi"),
    ("wednesday", "mittwoch", "mercredi"),
    ("thursday", "donnerstag", "jeudi"),
    ("friday", "freitag", "vendredi"),
    ("saturday", "samstag", "sonnabend", "samedi"),
    ("sunday", "sonntag", "dimanche"),
)
WEEKDAYS: dict[str, int] = {n: i for i, names in enumerate(_WEEKDAY_NAMES) for n in names}


def _end_of_week(ref: date) -> date:
    return ref + timedelta(days=(4 - ref.weekday()) % 7)


def _end_of_month(ref: date) -> date:
    return ref.replace(day=calendar.monthrange(ref.year, ref.month)[1])


def _same_day(ref: date) -> date:
    return ref


def _next_day(ref: date) -> date:
    return ref + timedelta(days=1)


def _in_two_days(ref: date) -> date:
    return ref + timedelta(days=2)


_RELATIVE_NAMES: tuple[tuple[Callable[[date], date], tuple[str, ...]], ...] = (
    (_same_day, ("today", "tonight", "this evening", "end of day", "end of the day", "eod")),
    (_same_day, ("cob", "close of business", "heute", "aujourd'hui", "ce soir")),
    (_next_day, ("tomorrow", "demain")),
    (_in_two_days, ("day after tomorrow", "übermorgen", "après-demain")),
    (_end_of_week, ("end of the week", "end of week", "end of this week", "ende der woche")),
    (_end_of_week, ("fin de la semaine", "fin de semaine")),
    (_end_of_month, ("end of the month", "end of month", "end of this month", "fin du mois")),
    (_end_of_month, ("ende des monats", "monatsende")),
)
_RELATIVE: dict[str, Callable[[date], date]] = {
    name: resolve for resolve, names in _RELATIVE_NAMES for name in names
}
_DATE_RE = re.compile(
    r"(?<![\w/])(?:"
    r"(?<![.-])(?P<iso_y>\d{4})-(?P<iso_m>\d{1,2})-(?P<iso_d>\d{1,2})(?![\w/-])"
    rf"|(?<!\.)(?P<dm_d>\d{{1,2}})(?:st|nd|rd|th|\.)?\s+(?:of\s+)?(?P<dm_m>{MONTH_PATTERN})\.?(?!\w)"
    r"(?:,?\s+(?P<dm_y>\d{4})(?!\w))?"
    rf"|(?P<md_m>{MONTH_PATTERN})\.?\s+(?P<md_d>\d{{1,2}})(?:st|nd|rd|th)?(?![\w/])"
    r"(?:,?\s+(?P<md_y>\d{4})(?!\w))?"
    rf"|(?:(?:next|this|coming)\s+)?(?P<wd>{alternation(WEEKDAYS)})(?!\w)"
    rf"|(?P<rel>{alternation(_RELATIVE)})(?!\w)"
    ")"
)


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except (ValueError, OverflowError):
        return None


def _nearest(month: int, day: int, year: str | None, ref: date) -> date | None:
    """The date itself when the year is given, else the occurrence closest to `ref`."""
    if year:
        return _safe_date(int(year), month, day)
    options = [_safe_date(y, month, day) for y in (ref.year - 1, ref.year, ref.year + 1)]
    found = [d for d in options if d is not None]
    return min(found, key=lambda d: (abs((d - ref).days), d)) if found else None


def _resolve(m: re.Match[str], ref: date) -> date | None:
    found = m.groupdict()
    if found["iso_y"]:
        return _safe_date(int(found["iso_y"]), int(found["iso_m"]), int(found["iso_d"]))
    if found["dm_m"]:
        return _nearest(MONTHS[found["dm_m"]], int(found["dm_d"]), found["dm_y"], ref)
    if found["md_m"]:
        return _nearest(MONTHS[found["md_m"]], int(found["md_d"]), found["md_y"], ref)
    if found["wd"]:
        return ref + timedelta(days=(WEEKDAYS[found["wd"]] - ref.weekday()) % 7 or 7)
    return _RELATIVE[squash(found["rel"])](ref)


def find_dates(text: str, ref: date) -> list[tuple[int, date]]:
    """Every date phrase in `text` resolved against `ref`, as (position, date) in text order.

    Positions index `text.lower()`. Slash dates such as 12/03 are left out on purpose: day and
    month order is unknowable.
    """
    found: list[tuple[int, date]] = []
    for m in _DATE_RE.finditer(text.lower()):
        try:
            day = _resolve(m, ref)
        except (ValueError, OverflowError, KeyError):
            continue
        if day is not None:
            found.append((m.start(), day))
    return _prefer_explicit(found)


_WEEKDAY_GAP = 12  # "Friday, 4 December": a weekday and its explicit date are this close


def _prefer_explicit(found: list[tuple[int, date]]) -> list[tuple[int, date]]:
    """Drop a weekday resolved on its own when an explicit date follows it at once.

    "by Friday 4 December" names one day; the explicit date wins over the next Friday.
    """
    out: list[tuple[int, date]] = []
    for i, (pos, day) in enumerate(found):
        nxt = found[i + 1] if i + 1 < len(found) else None
        if nxt and nxt[0] - pos <= _WEEKDAY_GAP and nxt[1] != day:
            continue
        out.append((pos, day))
    return out


def first_date(text: str, ref: date) -> date | None:
    found = find_dates(text, ref)
    return found[0][1] if found else None


_TIME_RE = re.compile(
    r"(?<!\w)(?:\d{1,2}(?::\d{2})?\s?(?:am|pm|a\.m\.|p\.m\.)|\d{1,2}:\d{2}|\d{1,2}h\d{0,2}"
    r"|noon|midday|morning|afternoon|evening|tonight|next\s+week|this\s+week|later\s+today"
    r"|uhr|vormittag|nachmittag|matin|après-midi|semaine\s+prochaine|nächste\s+woche)(?!\w)"
)


def has_day_or_time(text: str) -> bool:
    """Whether `text` names a day or a time of day, resolvable or not."""
    low = text.lower()
    return _TIME_RE.search(low) is not None or _DATE_RE.search(low) is not None
