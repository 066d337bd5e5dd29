"""Discounts off the charge, and allowances of free units used in time order."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.rating import (
    AllowanceState,
    AllowanceUse,
    RatingError,
    quote,
    rate_records,
)
from domain.rating.tariff import Rounding

from .tariffs import STANDARD, entry, london, per_minute, sms, tariff, voice

STD = tariff()
MONDAY_10 = london(2026, 3, 2, 10)

WITH_ALLOWANCES = tariff(
    entry(
        allowances=[
            {"code": "MIN", "units": 100, "usage_classes": ["VOICE_NAT", "VOICE_MOB"]},
            {"code": "SMS2", "units": 2, "usage_classes": ["SMS_NAT"]},
        ]
    )
)


def test_a_fixed_discount_comes_off_the_rounded_charge() -> None:
    # MOB: 0.05 + 30 * 0.12 / 60 (0.06) = 0.11; 0.05 off: net 0.06
    rated = quote(STD, voice(MONDAY_10, 30, "447700900123", "VOICE_MOB"))
    assert (rated.charge, rated.discount, rated.net) == (
        Decimal("0.1100"),
        Decimal("0.0500"),
        Decimal("0.0600"),
    )


def test_a_fixed_discount_never_takes_more_than_the_charge() -> None:
    # MOB_PROMO at PEAK: 10 * 0.06 / 60 = 0.01; the 0.05 discount takes 0.01
    rated = quote(STD, voice(MONDAY_10, 10, "447912345678", "VOICE_MOB"))
    assert (rated.charge, rated.discount, rated.net) == (
        Decimal("0.0100"),
        Decimal("0.0100"),
        Decimal("0.0000"),
    )


def test_a_percentage_discount_is_rounded_like_the_charge() -> None:
    raw = entry(discounts=[{"usage_class": "VOICE_NAT", "percentage": "12.5"}])
    # PEAK 90 s = 0.2250 (see the voice cases); 12.5 % = 0.028125 -> half_up 4
    # -> 0.0281; net 0.1969
    rated = quote(tariff(raw), voice(MONDAY_10, 90))
    assert (rated.discount, rated.net) == (Decimal("0.0281"), Decimal("0.1969"))


def test_the_discount_is_taken_off_the_capped_charge() -> None:
    raw = entry(discounts=[{"usage_class": "VOICE_NAT", "percentage": "50"}])
    # 3600 s PEAK = 3.15 capped at 2.00; 50 % = 1.00
    rated = quote(tariff(raw), voice(london(2026, 3, 2, 9), 3600))
    assert (rated.charge, rated.discount, rated.net) == (
        Decimal("2.0000"),
        Decimal("1.0000"),
        Decimal("1.0000"),
    )


def test_a_call_covered_by_the_allowance_costs_nothing_not_even_the_fee() -> None:
    # 60 s of the 100 free seconds: no part charged, so no connect fee
    rated = quote(WITH_ALLOWANCES, voice(MONDAY_10, 60))
    assert rated.charge == Decimal("0.0000")
    assert rated.parts == ()
    assert [(use.code, use.units, use.left) for use in rated.allowances] == [
        ("MIN", 60, 40)
    ]
    assert rated.remaining == AllowanceState({"MIN": 40})


def test_an_allowance_used_up_mid_call_leaves_the_rest_charged_by_elapsed_time() -> (
    None
):
    # 40 s left: [0,40) free; [40,60) PEAK slab 0 (elapsed counts from the
    # start of the call) billed 60 s = 0.10; [60,90) slab 1 30 * 0.05 / 60 =
    # 0.025; + fee 0.10 (the first charged part's rate) = 0.225
    rated = quote(WITH_ALLOWANCES, voice(MONDAY_10, 90), AllowanceState({"MIN": 40}))
    assert rated.charge == Decimal("0.2250")
    assert [(p.elapsed_from, p.elapsed_to, p.slab, p.billed) for p in rated.parts] == [
        (40, 60, 0, 60),
        (60, 90, 1, 30),
    ]
    assert rated.remaining.remaining == {"MIN": 0}


def test_an_allowance_used_up_mid_call_across_a_band_start() -> None:
    # 18:59:00 + 120 s with 90 s left: [0,90) free; [90,120) OFF
    # 30 * 0.02 / 60 = 0.01, no fee (OFF prices the first charged part)
    rated = quote(
        WITH_ALLOWANCES,
        voice(london(2026, 3, 2, 18, 59), 120),
        AllowanceState({"MIN": 90}),
    )
    assert rated.charge == Decimal("0.0100")
    assert [p.band for p in rated.parts] == ["OFF"]


def test_a_used_up_allowance_leaves_the_whole_call_charged() -> None:
    # PEAK 30 s = 0.20, as without allowances
    rated = quote(WITH_ALLOWANCES, voice(MONDAY_10, 30), AllowanceState({"MIN": 0}))
    assert (rated.charge, rated.allowances) == (Decimal("0.2000"), ())


def test_sms_beyond_the_free_ones_are_charged() -> None:
    # 3 SMS with 2 free: 1 * 0.04 = 0.04; 10 % = 0.004 -> 0.00
    rated = quote(WITH_ALLOWANCES, sms(MONDAY_10, 3))
    assert (rated.charge, rated.net) == (Decimal("0.04"), Decimal("0.04"))
    assert rated.remaining.remaining == {"SMS2": 0}


def test_allowances_are_consumed_in_time_order_across_usage_classes() -> None:
    later = voice(london(2026, 3, 2, 20), 80)  # OFF
    earlier = voice(london(2026, 3, 2, 19, 30), 70, "447700900123", "VOICE_MOB")
    results, state = rate_records(WITH_ALLOWANCES, [later, earlier])
    first, second = results
    assert not isinstance(first, RatingError)
    assert not isinstance(second, RatingError)
    # earlier (MOB) takes 70 s free of 100: the call is free.
    assert (second.charge, second.remaining.remaining) == (
        Decimal("0.0000"),
        {"MIN": 30},
    )
    # later: 30 s free, [30,80) OFF: 50 * 0.02 / 60 = 0.01666.. -> 0.0167
    assert first.charge == Decimal("0.0167")
    assert state == AllowanceState({"MIN": 0})


def test_a_usage_that_cannot_be_rated_takes_nothing_from_the_allowance() -> None:
    broken = voice(MONDAY_10, 60, "4930123456")  # no destination
    fine = voice(london(2026, 3, 2, 11), 60)
    results, state = rate_records(WITH_ALLOWANCES, [broken, fine])
    assert isinstance(results[0], RatingError)
    assert results[0].code == "no_destination"
    assert state == AllowanceState({"MIN": 40})


def test_a_fresh_bill_period_has_every_allowance_in_full() -> None:
    assert AllowanceState.fresh(WITH_ALLOWANCES).remaining == {"MIN": 100, "SMS2": 2}


@pytest.mark.parametrize("units", [0, 1, 7])
def test_an_allowance_of_other_usage_classes_leaves_a_call_charged(
    units: int,
) -> None:
    raw = dict(STANDARD)
    raw["allowances"] = [{"code": "DATA1", "units": units, "usage_classes": ["DATA"]}]
    raw["rates"] = [{"usage_class": "VOICE_NAT", "slabs": [per_minute("0.60", 60)]}]
    # VOICE_NAT has no allowance: 60 s * 0.60 / 60 = 0.6
    rated = quote(tariff(raw), voice(MONDAY_10, 60))
    assert (rated.charge, rated.allowances) == (Decimal("0.6"), ())


def test_a_rated_usage_carries_each_value_under_its_own_name() -> None:
    # The engine builds a Rated by position (for speed): every field is
    # checked here, with values that cannot be mistaken for one another.
    raw = entry(
        discounts=[{"usage_class": "VOICE_NAT", "percentage": "50"}],
        allowances=[{"code": "MIN", "units": 100, "usage_classes": ["VOICE_NAT"]}],
    )
    start = london(2026, 3, 2, 9)
    rated = quote(tariff(raw), voice(start, 3600))
    (part,) = rated.parts  # the first 100 s free, then PEAK's second slab
    assert (part.begin, part.end, part.band, part.billed) == (
        100_000_000,
        3_600_000_000,
        "PEAK",
        3500,
    )
    assert {k: v for k, v in rated._asdict().items() if k != "parts"} == {
        "tariff": "STD",
        "currency": "GBP",
        "usage_class": "VOICE_NAT",
        "kind": "voice",
        "start": start,
        "quantity": 3600,
        "destination": "NAT",
        "prefix": "441",
        "zone": None,
        "connect_fee": Decimal("0.10"),
        # 0.10 + 3500 s * 0.05 / 60 = 3.0166…: over the 2.00 cap
        "fraction": (36200, 12000),
        "rounding": Rounding(method="half_up", decimals=4),
        "max_cost": Decimal("2.00"),
        "capped": True,
        "charge": Decimal("2.0000"),
        "discount": Decimal("1.0000"),
        "net": Decimal("1.0000"),
        "allowances": (AllowanceUse(code="MIN", units=100, left=0),),
        "remaining": AllowanceState({"MIN": 0}),
    }
