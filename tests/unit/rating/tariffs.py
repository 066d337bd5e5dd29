"""Tariff documents and usages for the rating tests.

STANDARD is one tariff in Europe/London; its rates, by index (comments in the
tests refer to them):

0 VOICE_NAT  NAT  PEAK  w10  fee 0.10  0.10/60 s in 60 s from 0,
                                       0.05/60 s in 1 s from 60 s;
                                       half_up 4; max_cost 2.00 (cap)
1 VOICE_NAT  NAT  OFF   w10            0.02/60 s in 1 s; half_up 4
2 VOICE_NAT  NAT  NIGHT w10            0.01/60 s in 1 s; up 2
3 VOICE_NAT  NAT  WKD   w10            0.035/60 s in 30 s; down 2
4 VOICE_NAT  NAT  HOL   w20  fee 0.05  0.01/60 s in 1 s; half_up 4
5 VOICE_MOB  MOB  *     w0   fee 0.05  0.12/60 s in 1 s; half_up 4
6 VOICE_MOB  MOB_PROMO PEAK w0         0.06/60 s in 1 s; half_up 4
7 VOICE_INTL INTL *                    0.60/60 s in 60 s; up 2; max_cost 5.00
8 VOICE_INTL *    *                    1.20/60 s in 60 s; up 2
9 DATA       *    *                    0.01/MiB in 1 KiB from 0,
                                       0.005/MiB in 1 KiB from 100 MiB; half_up 4
10 SMS_NAT   *    *                    0.04 per SMS; half_up 2
11 VOICE_NAT *    *  zone EU           0.25/60 s in 1 s; half_up 4
12 DATA      *    *  zone EU           0.02/MiB in 1 KiB; half_up 4
13 SMS_NAT   *    *  zone EU           0.10 per SMS; half_up 2

Discounts: VOICE_MOB 0.05 off; SMS_NAT 10 %. Bands: NIGHT 00:00, PEAK 08:00,
OFF 19:00 on weekdays; WKD all day Saturday and Sunday; HOL all day on every
25 December and on 1 January 2027. Home network 234/15.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from domain.rating import Tariff, Usage, read_tariffs

LONDON = ZoneInfo("Europe/London")
WEEKDAYS = [1, 2, 3, 4, 5]
MIB = 1_048_576
HOME = {"mcc": "234", "mnc": "15", "home_mcc": "234", "home_mnc": "15"}


def per_minute(price: str, increment: int) -> dict[str, Any]:
    return {"from": 0, "price": price, "per": 60, "increment": increment}


def rounding(method: str, decimals: int) -> dict[str, Any]:
    return {"method": method, "decimals": decimals}


STANDARD: dict[str, Any] = {
    "code": "STD",
    "currency": "GBP",
    "timezone": "Europe/London",
    "time_bands": [
        {"code": "NIGHT", "weekdays": WEEKDAYS, "start": "00:00"},
        {"code": "PEAK", "weekdays": WEEKDAYS, "start": "08:00"},
        {"code": "OFF", "weekdays": WEEKDAYS, "start": "19:00"},
        {"code": "WKD", "weekdays": [6, 7], "start": "00:00"},
        {"code": "HOL", "dates": ["12-25", "2027-01-01"], "start": "00:00"},
    ],
    "destinations": {
        "NAT": ["441", "442"],
        "MOB": ["447"],
        "MOB_PROMO": ["4479"],
        "INTL": ["1", "33"],
    },
    "zones": {
        "EU": [{"mcc": "208"}, {"mcc": "262", "mnc": "01"}],
        "WORLD": [{"mcc": "310"}],
    },
    "rates": [
        {
            "usage_class": "VOICE_NAT",
            "destination": "NAT",
            "time_band": "PEAK",
            "weight": 10,
            "connect_fee": "0.10",
            "slabs": [
                per_minute("0.10", 60),
                {"from": 60, "price": "0.05", "per": 60, "increment": 1},
            ],
            "rounding": rounding("half_up", 4),
            "max_cost": {"amount": "2.00", "strategy": "cap"},
        },
        {
            "usage_class": "VOICE_NAT",
            "destination": "NAT",
            "time_band": "OFF",
            "weight": 10,
            "slabs": [per_minute("0.02", 1)],
            "rounding": rounding("half_up", 4),
        },
        {
            "usage_class": "VOICE_NAT",
            "destination": "NAT",
            "time_band": "NIGHT",
            "weight": 10,
            "slabs": [per_minute("0.01", 1)],
            "rounding": rounding("up", 2),
        },
        {
            "usage_class": "VOICE_NAT",
            "destination": "NAT",
            "time_band": "WKD",
            "weight": 10,
            "slabs": [per_minute("0.035", 30)],
            "rounding": rounding("down", 2),
        },
        {
            "usage_class": "VOICE_NAT",
            "destination": "NAT",
            "time_band": "HOL",
            "weight": 20,
            "connect_fee": "0.05",
            "slabs": [per_minute("0.01", 1)],
            "rounding": rounding("half_up", 4),
        },
        {
            "usage_class": "VOICE_MOB",
            "destination": "MOB",
            "connect_fee": "0.05",
            "slabs": [per_minute("0.12", 1)],
            "rounding": rounding("half_up", 4),
        },
        {
            "usage_class": "VOICE_MOB",
            "destination": "MOB_PROMO",
            "time_band": "PEAK",
            "slabs": [per_minute("0.06", 1)],
            "rounding": rounding("half_up", 4),
        },
        {
            "usage_class": "VOICE_INTL",
            "destination": "INTL",
            "slabs": [per_minute("0.60", 60)],
            "rounding": rounding("up", 2),
            "max_cost": {"amount": "5.00"},
        },
        {
            "usage_class": "VOICE_INTL",
            "slabs": [per_minute("1.20", 60)],
            "rounding": rounding("up", 2),
        },
        {
            "usage_class": "DATA",
            "slabs": [
                {"from": 0, "price": "0.01", "per": MIB, "increment": 1024},
                {"from": 100 * MIB, "price": "0.005", "per": MIB, "increment": 1024},
            ],
            "rounding": rounding("half_up", 4),
        },
        {
            "usage_class": "SMS_NAT",
            "slabs": [{"from": 0, "price": "0.04", "per": 1, "increment": 1}],
            "rounding": rounding("half_up", 2),
        },
        {
            "usage_class": "VOICE_NAT",
            "zone": "EU",
            "slabs": [per_minute("0.25", 1)],
            "rounding": rounding("half_up", 4),
        },
        {
            "usage_class": "DATA",
            "zone": "EU",
            "slabs": [{"from": 0, "price": "0.02", "per": MIB, "increment": 1024}],
            "rounding": rounding("half_up", 4),
        },
        {
            "usage_class": "SMS_NAT",
            "zone": "EU",
            "slabs": [{"from": 0, "price": "0.10", "per": 1, "increment": 1}],
            "rounding": rounding("half_up", 2),
        },
    ],
    "discounts": [
        {"usage_class": "VOICE_MOB", "amount": "0.05"},
        {"usage_class": "SMS_NAT", "percentage": "10"},
    ],
}


def entry(base: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    """A deep copy of a tariff entry (STANDARD by default) with fields replaced."""
    copied = copy.deepcopy(STANDARD if base is None else base)
    copied.update(copy.deepcopy(changes))
    return copied


def tariff(raw: dict[str, Any] | None = None) -> Tariff:
    """The tariff of one document entry, which must read without a problem."""
    tariffs, problems = read_tariffs({"tariffs": [STANDARD if raw is None else raw]})
    assert problems == []
    return tariffs[0]


def london(*fields: int) -> datetime:
    """A wall-clock time in London: london(2026, 3, 2, 10, 0)."""
    return datetime(*fields, tzinfo=LONDON)  # type: ignore[misc]


def voice(
    start: datetime,
    seconds: int,
    number: str = "441632960000",
    usage_class: str = "VOICE_NAT",
    **network: str,
) -> Usage:
    return Usage(
        usage_class,
        start,
        duration_seconds=seconds,
        called_number=number,
        **(network or HOME),
    )


def data(start: datetime, volume: int, **network: str) -> Usage:
    return Usage("DATA", start, volume_bytes=volume, **(network or HOME))


def sms(start: datetime, units: int = 1, **network: str) -> Usage:
    return Usage(
        "SMS_NAT", start, units=units, called_number="447700900000", **(network or HOME)
    )


def roaming(mcc: str, mnc: str) -> dict[str, str]:
    return {"mcc": mcc, "mnc": mnc, "home_mcc": "234", "home_mnc": "15"}
