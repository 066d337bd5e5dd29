"""Which time bands are active when, in a tariff's time zone.

Bands that share the same weekdays and dates form a *day schedule*. On a local
date, a schedule applies when the date's ISO weekday is among its weekdays or
the date is among its dates (``MM-DD`` every year, ``YYYY-MM-DD`` once); a
schedule with neither applies every day. Within an applying schedule a band is
active from its start until the next band of the same schedule starts that
day, or until midnight; before the first band of a schedule starts, none of its
bands is active. Several schedules may apply on one date (a dated ``HOL`` band
and the weekday bands), so several bands may be active at once: the rates
decide between them by weight.

Local times become instants with the rule of the wall clock: a band starting at
``HH:MM`` starts at the first instant whose local time is ``HH:MM`` or later.
In a daylight-saving gap (``01:30`` on the spring-forward day in London) that
is the instant of the change; in an overlap it is the first of the two
``01:30`` (and the band runs on through the repeated hour). Local days are
23 or 25 hours long on the days of a change.

Instants are integer microseconds since the Unix epoch, so that the engine
never builds a datetime on its hot path; each local day's plan is built once
and cached (a few thousand days at most), and so are the pieces that each set
of rates cuts it into.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from domain.rating.tariff import TimeBand

SECOND: Final = 1_000_000
DAY: Final = 86_400 * SECOND
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND: Final = timedelta(microseconds=1)
CACHED_DAYS: Final = 4096  # local days kept before the caches start again


def epoch_us(moment: datetime) -> int:
    """An aware datetime as integer microseconds since the epoch."""
    return (moment - EPOCH) // MICROSECOND


@dataclass(frozen=True)
class Schedule:
    weekdays: frozenset[int]
    dates: frozenset[str]  # "MM-DD" and "YYYY-MM-DD"
    bands: tuple[tuple[int, str], ...]  # (start second of day, band code), sorted

    def applies(self, day: date) -> bool:
        if not self.weekdays and not self.dates:
            return True
        if day.isoweekday() in self.weekdays:
            return True
        text = day.isoformat()
        return text[5:] in self.dates or text in self.dates


@dataclass
class DayPlan:
    """One local date: its bounds and the bands active between band starts."""

    day: date
    begin: int
    end: int
    starts: list[int]  # instant of each segment's start; the first is `begin`
    active: list[frozenset[str]]  # the bands active in each segment
    # the cuts of this day for each set of rates (see compiled.py)
    pieces: dict[int, Any] = field(default_factory=dict)


def schedules_of(bands: Iterable[TimeBand]) -> list[Schedule]:
    grouped: dict[tuple[frozenset[int], frozenset[str]], list[tuple[int, str]]] = {}
    for band in bands:
        grouped.setdefault(band.schedule, []).append((band.start, band.code))
    return [
        Schedule(weekdays, dates, tuple(sorted(starts)))
        for (weekdays, dates), starts in grouped.items()
    ]


class BandCalendar:
    """The day plans of one tariff, built on demand and cached."""

    def __init__(self, timezone: str, bands: Iterable[TimeBand]):
        self.zone = ZoneInfo(timezone)
        self.schedules = schedules_of(bands)
        self._days: dict[int, DayPlan] = {}
        self._utc_days: dict[int, tuple[DayPlan, ...]] = {}

    def day_of(self, instant: int) -> DayPlan:
        """The plan of the local date that contains ``instant``."""
        plans = self._utc_days.get(instant // DAY)
        if plans is None:
            plans = self._plans_overlapping(instant // DAY)
        for plan in plans:
            if plan.begin <= instant < plan.end:
                return plan
        local = datetime.fromtimestamp(instant // SECOND, self.zone).date()
        return self.plan(local.toordinal())

    def after(self, plan: DayPlan) -> DayPlan:
        """The plan of the next local date."""
        return self.plan(plan.day.toordinal() + 1)

    def plan(self, ordinal: int) -> DayPlan:
        plan = self._days.get(ordinal)
        if plan is None:
            if len(self._days) >= CACHED_DAYS:
                self._days.clear()
                self._utc_days.clear()
            plan = self._days[ordinal] = self._build(date.fromordinal(ordinal))
        return plan

    def _plans_overlapping(self, utc_day: int) -> tuple[DayPlan, ...]:
        first = datetime.fromtimestamp(utc_day * 86_400, self.zone).date()
        last = datetime.fromtimestamp(utc_day * 86_400 + 86_399, self.zone).date()
        plans = tuple(
            self.plan(ordinal)
            for ordinal in range(first.toordinal(), last.toordinal() + 1)
        )
        self._utc_days[utc_day] = plans
        return plans

    def _build(self, day: date) -> DayPlan:
        begin = self.instant(day, 0)
        end = self.instant(day + timedelta(days=1), 0)
        applying = [schedule for schedule in self.schedules if schedule.applies(day)]
        seconds = sorted({0} | {s for sch in applying for s, _ in sch.bands})
        starts: list[int] = []
        active: list[frozenset[str]] = []
        for second in seconds:
            at = min(max(self.instant(day, second), begin), end)
            bands = frozenset(
                code
                for schedule in applying
                if (code := _band_at(schedule, second)) is not None
            )
            if starts and at == starts[-1]:  # a start lost in a gap
                active[-1] = bands
            elif at < end:
                starts.append(at)
                active.append(bands)
        return DayPlan(day, begin, end, starts, active)

    def instant(self, day: date, second: int) -> int:
        """The first instant whose local time on ``day`` is ``second`` or later."""
        wall = datetime.combine(day, time()) + timedelta(seconds=second)
        at = epoch_us(wall.replace(tzinfo=self.zone))
        if self._wall(at) == wall:
            return at
        # A gap: search between the two readings of the wall time.
        low = epoch_us(wall.replace(tzinfo=self.zone, fold=1)) // SECOND
        high = at // SECOND
        while low < high:
            middle = (low + high) // 2
            if self._wall(middle * SECOND) >= wall:
                high = middle
            else:
                low = middle + 1
        return high * SECOND

    def _wall(self, instant: int) -> datetime:
        moment = EPOCH + timedelta(microseconds=instant)
        return moment.astimezone(self.zone).replace(tzinfo=None)


def _band_at(schedule: Schedule, second: int) -> str | None:
    found = None
    for start, code in schedule.bands:
        if start > second:
            break
        found = code
    return found
