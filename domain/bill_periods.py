"""Bill periods: an account's usage is billed, and its allowances renewed, per
period from its bill-cycle day (1-28) of one month, 00:00 UTC, to that day of
the next month, exclusive. A period is named by its start date
(``2026-11-01``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, day.day)


def _utc(moment: date | datetime) -> datetime:
    if not isinstance(moment, datetime):
        return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    return moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(UTC)


def _midnight(day: date) -> str:
    """Midnight UTC of ``day`` as the views store times (fixed-width text)."""
    return f"{day.isoformat()}T00:00:00.000000+00:00"


@dataclass(frozen=True, order=True)
class Period:
    """One bill period: [start, end) from midnight UTC to midnight UTC."""

    start: date
    end: date

    @property
    def name(self) -> str:
        return self.start.isoformat()

    @property
    def bounds(self) -> tuple[str, str]:
        """Start and end as the views store times, for range queries."""
        return _midnight(self.start), _midnight(self.end)

    def as_dict(self) -> dict[str, str]:
        start, end = self.bounds
        return {"start": start, "end": end, "name": self.name}


def period_of(bill_cycle_day: int, moment: date | datetime) -> Period:
    """The bill period holding ``moment`` (a date, or a time read in UTC)."""
    if not 1 <= bill_cycle_day <= 28:
        raise ValueError(f"a bill-cycle day is 1-28, not {bill_cycle_day}")
    day = _utc(moment).date()
    start = date(day.year, day.month, bill_cycle_day)
    start = add_months(start, -1) if day.day < bill_cycle_day else start
    return Period(start, add_months(start, 1))


def periods_for(
    bill_cycle_day: int, start: date | datetime, end: date | datetime
) -> list[Period]:
    """The bill periods that overlap [start, end), oldest first; a date is its
    midnight UTC. None when ``end`` is not after ``start``."""
    first, last = _utc(start), _utc(end)
    found: list[Period] = []
    period = period_of(bill_cycle_day, first)
    while first < last and _utc(period.start) < last:
        found.append(period)
        period = Period(period.end, add_months(period.end, 1))
    return found
