"""Data (per volume) and events (per unit), worked by hand."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.rating import RatingError, quote

from .tariffs import MIB, WEEKDAYS, data, entry, london, sms, tariff

STD = tariff()
MONDAY_10 = london(2026, 3, 2, 10)

DATA_CASES = [
    # rate 9: 1.5 MiB = 1572864 bytes, a whole number of 1 KiB steps:
    # 1572864 * 0.01 / 1048576 = 0.015
    ("one and a half mebibytes", 1_572_864, "0.0150"),
    # 1000 bytes billed as 1024: 1024 * 0.01 / 1048576 = 0.0000097656.. -> 0.0000
    ("less than a kibibyte", 1000, "0.0000"),
    # 1048577 bytes -> 1025 KiB = 1049600 bytes: 1049600 * 0.01 / 1048576
    # = 0.0100097656.. -> half_up 4 -> 0.0100
    ("one byte over a mebibyte", MIB + 1, "0.0100"),
    # 150 MiB: slab 0 to 100 MiB: 100 * 0.01 = 1.00; slab 1: 50 * 0.005 = 0.25
    ("across the volume slab", 150 * MIB, "1.2500"),
    # 100 MiB exactly: all of it in slab 0: 1.00
    ("up to the slab", 100 * MIB, "1.0000"),
    # nothing used: nothing charged
    ("an empty session", 0, "0.0000"),
]


@pytest.mark.parametrize(
    ("volume", "charge"),
    [case[1:] for case in DATA_CASES],
    ids=[case[0] for case in DATA_CASES],
)
def test_data_is_charged_by_volume_as_worked_out_by_hand(
    volume: int, charge: str
) -> None:
    assert str(quote(STD, data(MONDAY_10, volume)).charge) == charge


def test_a_data_session_is_cut_only_where_a_slab_begins() -> None:
    rated = quote(STD, data(london(2026, 3, 2, 23, 59), 150 * MIB))
    assert [(p.elapsed_from, p.elapsed_to, p.slab) for p in rated.parts] == [
        (0, 100 * MIB, 0),
        (100 * MIB, 150 * MIB, 1),
    ]


BANDED = entry(
    rates=[
        {
            "usage_class": "DATA",
            "time_band": "PEAK",
            "slabs": [{"from": 0, "price": "0.02", "per": MIB, "increment": 1}],
        },
        {
            "usage_class": "DATA",
            "time_band": "OFF",
            "slabs": [{"from": 0, "price": "0.01", "per": MIB, "increment": 1}],
        },
        {
            "usage_class": "SMS_NAT",
            "time_band": "PEAK",
            "slabs": [{"from": 0, "price": "0.05", "per": 1, "increment": 1}],
        },
        {
            "usage_class": "SMS_NAT",
            "time_band": "OFF",
            "slabs": [{"from": 0, "price": "0.01", "per": 1, "increment": 1}],
        },
    ],
    discounts=[],
)


def test_the_band_active_at_the_start_prices_all_of_a_data_session() -> None:
    # 18:59:59, 10 MiB, running past 19:00: all PEAK: 10 * 0.02 = 0.20
    rated = quote(tariff(BANDED), data(london(2026, 3, 2, 18, 59, 59), 10 * MIB))
    assert rated.charge == Decimal("0.20")
    assert [p.band for p in rated.parts] == ["PEAK"]


def test_an_event_is_priced_by_the_band_active_when_it_happened() -> None:
    # PEAK 3 * 0.05 = 0.15; OFF 3 * 0.01 = 0.03
    banded = tariff(BANDED)
    assert quote(banded, sms(london(2026, 3, 2, 18, 59, 59), 3)).charge == Decimal(
        "0.15"
    )
    assert quote(banded, sms(london(2026, 3, 2, 19), 3)).charge == Decimal("0.03")


SMS_CASES = [
    # rate 10: 0.04; 10 % discount = 0.004 -> half_up 2 -> 0.00; net 0.04
    ("one sms", 1, "0.04", "0.00", "0.04"),
    # 3 * 0.04 = 0.12; discount 0.012 -> 0.01; net 0.11
    ("three sms", 3, "0.12", "0.01", "0.11"),
    # 13 * 0.04 = 0.52; discount 0.052 -> 0.05; net 0.47
    ("thirteen sms", 13, "0.52", "0.05", "0.47"),
]


@pytest.mark.parametrize(
    ("units", "charge", "discount", "net"),
    [case[1:] for case in SMS_CASES],
    ids=[case[0] for case in SMS_CASES],
)
def test_an_sms_is_charged_per_unit_with_its_discount(
    units: int, charge: str, discount: str, net: str
) -> None:
    rated = quote(STD, sms(MONDAY_10, units))
    assert (str(rated.charge), str(rated.discount), str(rated.net)) == (
        charge,
        discount,
        net,
    )


def test_event_slabs_count_units_from_the_first() -> None:
    raw = entry(
        rates=[
            {
                "usage_class": "SMS_NAT",
                "connect_fee": "0.01",
                "slabs": [
                    {"from": 0, "price": "0.05", "per": 1, "increment": 1},
                    {"from": 2, "price": "0.02", "per": 1, "increment": 1},
                ],
            }
        ],
        discounts=[],
    )
    # units 1-2 at 0.05, unit 3 at 0.02: 0.10 + 0.02 + fee 0.01 = 0.13
    assert quote(tariff(raw), sms(MONDAY_10, 3)).charge == Decimal("0.13")


def test_a_weekday_band_schedule_applies_to_events_on_weekdays_only() -> None:
    raw = entry(
        time_bands=[{"code": "DAY", "weekdays": WEEKDAYS, "start": "00:00"}],
        rates=[
            {
                "usage_class": "SMS_NAT",
                "time_band": "DAY",
                "slabs": [{"from": 0, "price": "0.05", "per": 1, "increment": 1}],
            }
        ],
        discounts=[],
    )
    # Saturday: no band of the only rate is active
    with pytest.raises(RatingError) as raised:
        quote(tariff(raw), sms(london(2026, 3, 7, 12)))
    assert raised.value.code == "no_rate"
