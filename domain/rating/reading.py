"""Reading the parts of a tariff entry; every problem is kept, none raised.

Each ``read_*`` function reads one part of an untrusted, already parsed
document (YAML or JSON) and returns it, or ``None`` when it has a problem; the
problems are appended with their path (``tariffs[0].rates[2].slabs[1].per``).

Amounts (prices, fees, caps, discounts) are decimal strings such as ``"0.10"``
or whole numbers; a YAML or JSON float (``0.10`` unquoted) is refused, because
it is not the number that was written. Prefixes, MCCs and MNCs are strings for
the same reason: their leading zeros matter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any, Final

from domain.catalogue.fields import Problem, Reader, join, type_name
from domain.rating.tariff import (
    Destination,
    Network,
    TimeBand,
    Zone,
)

CODE: Final = re.compile(r"[A-Z0-9_]{1,32}")
CODE_RULE: Final = "1 to 32 upper-case letters, digits or underscores"
CODE_OR_ANY: Final = re.compile(r"\*|[A-Z0-9_]{1,32}")
ANY_RULE: Final = f"{CODE_RULE}, or * for any"
AMOUNT: Final = re.compile(r"\d{1,18}(\.\d{1,18})?")
TIME_OF_DAY: Final = re.compile(r"([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?")
BAND_DATE: Final = re.compile(r"(?:(\d{4})-)?(\d\d)-(\d\d)")
PREFIX: Final = re.compile(r"\+?\d{1,32}")
MCC: Final = re.compile(r"\d{3}")
MNC: Final = re.compile(r"\d{2,3}")
LARGEST: Final = 2**63 - 1


def read_amount(r: Reader, key: str, default: Decimal | None = None) -> Decimal:
    """A non-negative decimal amount written as a string (or a whole number)."""
    path = join(r.path, key)
    value = r.raw.get(key)
    if value is None:
        if default is None:
            r.fail(path, "is required")
            return Decimal(0)
        return default
    if isinstance(value, Decimal) and value.is_finite() and value >= 0:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return Decimal(value)
    if isinstance(value, str) and AMOUNT.fullmatch(value):
        return Decimal(value)
    if isinstance(value, float):
        r.fail(path, f'must be a decimal written as a string ("{value}"), not a float')
    else:
        r.fail(path, f'must be a non-negative decimal such as "0.10", not {value!r}')
    return Decimal(0)


def read_time_of_day(r: Reader, key: str) -> int:
    """Seconds after midnight of an ``HH:MM`` (or ``HH:MM:SS``) string."""
    path = join(r.path, key)
    value = r.raw.get(key)
    if value is None:
        r.fail(path, 'is required ("HH:MM")')
        return 0
    match = TIME_OF_DAY.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        r.fail(path, f'must be a time of day "HH:MM" (quoted in YAML), not {value!r}')
        return 0
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + int(seconds or 0)


def read_band_date(value: object, path: str, problems: list[Problem]) -> str:
    """``MM-DD`` (every year) or ``YYYY-MM-DD`` (one day), normalised."""
    if isinstance(value, date):
        return value.isoformat()[:10]
    match = BAND_DATE.fullmatch(value) if isinstance(value, str) else None
    if match is not None:
        year, month, day = match.groups()
        try:  # 2000 is a leap year: "02-29" is a date (of leap years)
            date(int(year or 2000), int(month), int(day))
        except ValueError:
            match = None
    if match is None or not isinstance(value, str):
        problems.append(
            Problem(path, f'must be a date "MM-DD" or "YYYY-MM-DD", not {value!r}')
        )
        return ""
    return value


def read_time_band(raw: object, path: str, problems: list[Problem]) -> TimeBand | None:
    before = len(problems)
    r = Reader(raw, path, problems)
    r.reject_unknown(["code", "weekdays", "dates", "start"])
    code = r.text("code", pattern=CODE, rule=CODE_RULE)
    weekdays: list[int] = []
    for item_path, day in r.items("weekdays"):
        if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 7:
            r.fail(
                item_path, f"must be a weekday 1 (Monday) to 7 (Sunday), not {day!r}"
            )
        elif day in weekdays:
            r.fail(item_path, f"weekday {day} is listed twice")
        else:
            weekdays.append(day)
    dates: list[str] = []
    for item_path, raw_date in r.items("dates"):
        text = read_band_date(raw_date, item_path, problems)
        if text and text in dates:
            r.fail(item_path, f"date {text} is listed twice")
        dates.append(text)
    start = read_time_of_day(r, "start")
    if len(problems) > before:
        return None
    return TimeBand(code, start, tuple(weekdays), tuple(dates))


def read_destinations(
    raw: Mapping[str, Any], path: str, problems: list[Problem]
) -> list[Destination]:
    destinations = []
    for code, prefixes in raw.items():
        here = join(path, str(code))
        if not isinstance(code, str) or not CODE.fullmatch(code):
            problems.append(Problem(here, f"{code!r} is not valid: {CODE_RULE}"))
            continue
        if not isinstance(prefixes, list) or not prefixes:
            problems.append(Problem(here, 'must be a list of prefixes such as "441"'))
            continue
        seen: list[str] = []
        for index, prefix in enumerate(prefixes):
            at = join(here, index)
            if not isinstance(prefix, str) or not PREFIX.fullmatch(prefix):
                problems.append(
                    Problem(
                        at,
                        f'must be digits written as a string ("441"), not {prefix!r}',
                    )
                )
            elif prefix in seen:
                problems.append(Problem(at, f"prefix {prefix} is listed twice"))
            else:
                seen.append(prefix)
        if len(seen) == len(prefixes):
            destinations.append(Destination(code, tuple(seen)))
    return destinations


def read_zones(
    raw: Mapping[str, Any], path: str, problems: list[Problem]
) -> list[Zone]:
    zones = []
    for code, networks in raw.items():
        here = join(path, str(code))
        if not isinstance(code, str) or not CODE.fullmatch(code):
            problems.append(Problem(here, f"{code!r} is not valid: {CODE_RULE}"))
            continue
        if not isinstance(networks, list) or not networks:
            problems.append(Problem(here, 'must be a list of networks ({mcc: "208"})'))
            continue
        before = len(problems)
        read = []
        for index, network in enumerate(networks):
            r = Reader(network, join(here, index), problems)
            r.reject_unknown(["mcc", "mnc"])
            mcc = r.text("mcc", pattern=MCC, rule='three digits as a string ("208")')
            mnc = r.text("mnc", default="", pattern=MNC, rule="two or three digits")
            read.append(Network(mcc, mnc or None))
        if len(problems) == before:
            zones.append(Zone(code, tuple(read)))
    return zones


def section(
    raw: Mapping[str, Any], key: str, path: str, problems: list[Problem]
) -> list[tuple[str, Any]]:
    """The elements of an optional list section, each with its path."""
    value = raw.get(key)
    here = join(path, key)
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(Problem(here, f"must be a list, not {type_name(value)}"))
        return []
    return [(join(here, index), element) for index, element in enumerate(value)]
