"""The tariff document (YAML or JSON): reading it and writing it back.

The caller parses the text; these functions take and return plain Python
dicts and lists. ``read_tariffs`` never raises on bad input: it returns the
tariffs that read cleanly and every problem found, each named by its path
(``tariffs[0].rates[2].slabs[1].per``). A document with any problem should be
refused as a whole. ``write_tariffs`` writes a document that reads back to the
same tariffs. The format is described in ``TARIFFS.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from domain.catalogue.fields import Problem, Reader, join, type_name
from domain.rating.reading import (
    read_destinations,
    read_time_band,
    read_zones,
    section,
)
from domain.rating.reading_rates import read_allowance, read_discount, read_rate
from domain.rating.tariff import ANY, Rate, Tariff, TariffBook
from domain.rating.writing import write_tariff

TARIFF_CODE: Final = re.compile(r"[A-Za-z0-9_.-]{1,32}")
TARIFF_CODE_RULE: Final = "1 to 32 letters, digits, '_', '.' or '-'"
CURRENCY: Final = re.compile(r"[A-Z]{3}")
SECTIONS: Final = ("version", "tariffs", "rate_plans")
TARIFF_FIELDS: Final = (
    "code",
    "description",
    "currency",
    "timezone",
    "effective_from",
    "time_bands",
    "destinations",
    "zones",
    "rates",
    "discounts",
    "allowances",
)


def read_tariffs(document: object) -> tuple[list[Tariff], list[Problem]]:
    """Every tariff version of a document, and every problem found reading it."""
    book, problems = read_tariff_book(document)
    return list(book.tariffs), problems


def read_tariff_book(document: object) -> tuple[TariffBook, list[Problem]]:
    """The tariffs and the rate plans of a document, and every problem."""
    problems: list[Problem] = []
    if not isinstance(document, Mapping):
        message = f"the document must be a mapping, not {type_name(document)}"
        return TariffBook(), [Problem("", message)]
    r = Reader(document, "", problems)
    r.reject_unknown(SECTIONS)
    r.integer("version", 1, 1, 1)
    tariffs: list[Tariff] = []
    seen: dict[tuple[str, datetime | None], str] = {}
    for path, raw in r.items("tariffs", required=True):
        tariff = read_tariff(raw, path, problems)
        if tariff is None:
            continue
        key = (tariff.code, tariff.effective_from)
        if key in seen:
            problems.append(
                Problem(
                    join(path, "effective_from"),
                    f"{seen[key]} is already this version of tariff {tariff.code}",
                )
            )
            continue
        seen[key] = path
        tariffs.append(tariff)
    rate_plans = read_rate_plans(r, {code for code, _ in seen}, problems)
    return TariffBook(tuple(tariffs), rate_plans), problems


def read_rate_plans(
    r: Reader, tariff_codes: set[str], problems: list[Problem]
) -> dict[str, str]:
    path, raw = r.mapping("rate_plans")
    plans = {}
    for plan, code in raw.items():
        here = join(path, str(plan))
        if not isinstance(plan, str) or not TARIFF_CODE.fullmatch(plan):
            problems.append(Problem(here, f"{plan!r} is not valid: {TARIFF_CODE_RULE}"))
        elif not isinstance(code, str):
            problems.append(Problem(here, f"must be a tariff code, not {code!r}"))
        elif code not in tariff_codes:
            problems.append(Problem(here, f"there is no tariff {code!r}"))
        else:
            plans[plan] = code
    return plans


def read_tariff(raw: object, path: str, problems: list[Problem]) -> Tariff | None:
    """One version of a tariff, or ``None`` when it has any problem."""
    before = len(problems)
    r = Reader(raw, path, problems)
    r.reject_unknown(TARIFF_FIELDS)
    code = r.text("code", pattern=TARIFF_CODE, rule=TARIFF_CODE_RULE)
    description = r.text("description", default="")
    currency = r.text("currency", pattern=CURRENCY, rule="an ISO 4217 code (GBP)")
    timezone = read_timezone(r)
    effective_from = read_effective_from(r)
    raw_map = r.raw
    bands = [
        band
        for at, item in section(raw_map, "time_bands", path, problems)
        if (band := read_time_band(item, at, problems)) is not None
    ]
    destinations_path, raw_destinations = r.mapping("destinations")
    destinations = read_destinations(raw_destinations, destinations_path, problems)
    zones_path, raw_zones = r.mapping("zones")
    zones = read_zones(raw_zones, zones_path, problems)
    rated = [
        (at, rate)
        for at, item in section(raw_map, "rates", path, problems)
        if (rate := read_rate(item, at, problems)) is not None
    ]
    if r.is_mapping and "rates" not in raw_map:
        r.fail(join(path, "rates"), "is required: at least one rate")
    discounts = [
        discount
        for at, item in section(raw_map, "discounts", path, problems)
        if (discount := read_discount(item, at, problems)) is not None
    ]
    allowances = [
        allowance
        for at, item in section(raw_map, "allowances", path, problems)
        if (allowance := read_allowance(item, at, problems)) is not None
    ]
    check_unique(path, "time_bands", [band.code for band in bands], problems)
    check_unique(path, "discounts", [d.usage_class for d in discounts], problems)
    check_unique(path, "allowances", [a.code for a in allowances], problems)
    check_schedules(path, bands, problems)
    check_references(
        rated,
        bands={band.code for band in bands},
        destinations={destination.code for destination in destinations},
        zones={zone.code for zone in zones},
        problems=problems,
    )
    if len(problems) > before:
        return None
    return Tariff(
        code=code,
        currency=currency,
        timezone=timezone,
        rates=tuple(rate for _, rate in rated),
        effective_from=effective_from,
        time_bands=tuple(bands),
        destinations=tuple(destinations),
        zones=tuple(zones),
        discounts=tuple(discounts),
        allowances=tuple(allowances),
        description=description,
    )


def read_timezone(r: Reader) -> str:
    name = r.text("timezone", default="UTC")
    try:
        ZoneInfo(name)
    except (ValueError, OSError, KeyError):  # ZoneInfoNotFoundError: a KeyError
        r.fail(join(r.path, "timezone"), f"{name!r} is not an IANA time zone")
    return name


def read_effective_from(r: Reader) -> datetime | None:
    path = join(r.path, "effective_from")
    value = r.raw.get("effective_from")
    if value is None:
        return None
    moment: datetime | None = value if isinstance(value, datetime) else None
    if isinstance(value, str) and "T" in value.upper():
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            moment = None
    if moment is None or moment.tzinfo is None:
        r.fail(path, f"must be an RFC 3339 time with an offset, not {value!r}")
        return None
    return moment.astimezone(UTC)


def check_unique(
    path: str, key: str, codes: Iterable[str], problems: list[Problem]
) -> None:
    seen: set[str] = set()
    for index, code in enumerate(codes):
        if code in seen:
            problems.append(
                Problem(f"{path}.{key}[{index}]", f"{code} is listed twice")
            )
        seen.add(code)


def check_schedules(path: str, bands: list[Any], problems: list[Problem]) -> None:
    """Two bands of one day schedule may not start at the same time."""
    starts: dict[tuple[object, int], str] = {}
    for index, band in enumerate(bands):
        key = (band.schedule, band.start)
        if key in starts:
            problems.append(
                Problem(
                    f"{path}.time_bands[{index}].start",
                    f"band {starts[key]} has the same days and start",
                )
            )
        starts.setdefault(key, band.code)


def check_references(
    rated: list[tuple[str, Rate]],
    *,
    bands: set[str],
    destinations: set[str],
    zones: set[str],
    problems: list[Problem],
) -> None:
    """Rates name bands, destinations and zones of their tariff, and no two
    rates are alike in everything that would choose between them."""
    seen: dict[tuple[object, ...], str] = {}
    for path, rate in rated:
        for key, value, known in (
            ("time_band", rate.time_band, bands),
            ("destination", rate.destination, destinations),
        ):
            if value != ANY and value not in known:
                problems.append(Problem(join(path, key), unknown(key, value, known)))
        if rate.zone is not None and rate.zone not in zones:
            problems.append(
                Problem(join(path, "zone"), unknown("zone", rate.zone, zones))
            )
        alike = (
            rate.usage_class,
            rate.destination,
            rate.time_band,
            rate.zone,
            rate.weight,
        )
        if alike in seen:
            problems.append(
                Problem(
                    path,
                    f"{seen[alike]} has the same usage class, destination, time band,"
                    " zone and weight: one of them could never apply",
                )
            )
        seen.setdefault(alike, path)


def unknown(what: str, value: str, known: set[str]) -> str:
    names = ", ".join(sorted(known)) or "none"
    return f"there is no {what.replace('_', ' ')} {value!r} (the tariff has: {names})"


def write_tariffs(
    tariffs: Iterable[Tariff], rate_plans: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A document that :func:`read_tariff_book` reads back to the same values."""
    document: dict[str, Any] = {
        "version": 1,
        "tariffs": [write_tariff(tariff) for tariff in tariffs],
    }
    if rate_plans:
        document["rate_plans"] = dict(rate_plans)
    return document


__all__ = [
    "read_tariff",
    "read_tariff_book",
    "read_tariffs",
    "write_tariffs",
]
