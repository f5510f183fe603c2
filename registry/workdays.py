"""Working days for transfer deadlines: weekends and public holidays skipped. Pure: no Django.

The holidays are those of the ``holidays`` package for the federation's country (metropolitan
France by default: New Year, Easter Monday, 1 and 8 May, Ascension, Whit Monday, 14 July,
15 August, 1 and 11 November, Christmas). Days are counted in the federation's time zone, so a
request made on a Friday evening in Paris counts from the Monday.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays


@lru_cache(maxsize=8)
def _calendar(country: str) -> holidays.HolidayBase:
    # Years are filled in lazily on membership tests.
    return holidays.country_holidays(country)


def is_working_day(day: date, country: str = "FR") -> bool:
    """Monday to Friday and not a public holiday of ``country``."""
    return day.weekday() < 5 and day not in _calendar(country)


def add_working_days(
    start: datetime, days: int, *, country: str = "FR", tz: str = "Europe/Paris"
) -> datetime:
    """``start`` moved forward by ``days`` working days, at the same local time of day.

    Requested on Friday 15:00 with 3 days: due Wednesday 15:00 (Monday, Tuesday, Wednesday);
    requested on Saturday: due Wednesday too. The answer is in UTC.
    """
    if days < 0:
        raise ValueError("days must not be negative")
    zone = ZoneInfo(tz)
    local = start.astimezone(zone)
    day, counted = local.date(), 0
    while counted < days:
        day += timedelta(days=1)
        if is_working_day(day, country):
            counted += 1
    # Rebuild the wall-clock time on the due day so a DST change in between keeps the hour.
    due = datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=zone)
    return due.astimezone(UTC)
