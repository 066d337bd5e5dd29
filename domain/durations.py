"""ISO 8601 durations (``P3D``, ``PT12H``, ``P1M``) as used by action schedules."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?"
    r"(?:(?P<days>\d+)D)?(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
    r"(?:(?P<seconds>\d+)S)?)?\Z"
)


@dataclass(frozen=True)
class Duration:
    """A calendar-aware offset: months and years follow the calendar."""

    years: int = 0
    months: int = 0
    days: int = 0
    seconds: int = 0

    def after(self, moment: datetime) -> datetime:
        """The moment this duration after ``moment`` (month ends are clamped)."""
        month_index = moment.month - 1 + self.months + 12 * self.years
        year = moment.year + month_index // 12
        month = month_index % 12 + 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        shifted = moment.replace(year=year, month=month, day=day)
        return shifted + timedelta(days=self.days, seconds=self.seconds)


def parse_duration(text: str) -> Duration:
    """Parse an ISO 8601 duration; raise ``ValueError`` with a readable reason."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise ValueError(
            f"{text!r} is not an ISO 8601 duration such as P3D, PT12H or P1M"
        )
    parts = {name: int(value or 0) for name, value in match.groupdict().items()}
    return Duration(
        years=parts["years"],
        months=parts["months"],
        days=parts["days"] + 7 * parts["weeks"],
        seconds=parts["hours"] * 3600 + parts["minutes"] * 60 + parts["seconds"],
    )
