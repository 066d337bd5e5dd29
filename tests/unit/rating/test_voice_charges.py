"""Voice usage priced against the STANDARD tariff, each charge worked by hand.

Rates are referred to by their index in STANDARD (see tariffs.py). 2 March
2026 is a Monday; London is on GMT until 29 March 2026.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from domain.rating import Usage, quote

from .tariffs import london, tariff, voice

STD = tariff()

CASES = [
    # -- connect fee, increments and slabs (rate 0, PEAK, weekday 10:00) --
    # 30 s in slab 0 billed as one 60 s increment: 60 * 0.10 / 60 = 0.10;
    # + connect fee 0.10 = 0.20
    (
        "connect fee and a first minute billed whole",
        london(2026, 3, 2, 10),
        30,
        "0.2000",
    ),
    # 60 * 0.10 / 60 = 0.10; + 0.10 = 0.20
    ("exactly one minute", london(2026, 3, 2, 10), 60, "0.2000"),
    # slab 0: 0.10; slab 1 from 60 s, per second: 1 * 0.05 / 60 = 0.000833..;
    # 0.10 + 0.10 + 0.000833.. = 0.200833.. -> half_up 4 -> 0.2008
    ("one second into the per-second slab", london(2026, 3, 2, 10), 61, "0.2008"),
    # 0.10 + 0.10 + 30 * 0.05 / 60 (0.025) = 0.225
    ("half a minute into the second slab", london(2026, 3, 2, 10), 90, "0.2250"),
    # no part, so no connect fee either
    ("a call of no duration costs nothing", london(2026, 3, 2, 10), 0, "0.0000"),
    # 0.10 + 0.10 + 3540 * 0.05 / 60 (2.95) = 3.15 -> capped at max_cost 2.00
    ("a long call is capped at max_cost", london(2026, 3, 2, 9), 3600, "2.0000"),
    # 3000 s: 0.10 + 0.10 + 2940 * 0.05 / 60 (2.45) = 2.65 -> capped
    ("a cap that bites before the hour", london(2026, 3, 2, 9), 3000, "2.0000"),
    # 2040 s: 0.10 + 0.10 + 1980 * 0.05 / 60 (1.65) = 1.85: under the cap
    ("a call under the cap is not capped", london(2026, 3, 2, 9), 2040, "1.8500"),
    # -- per-second increments off peak (rate 1, no connect fee) --
    # 45 * 0.02 / 60 = 0.015
    ("off-peak per second", london(2026, 3, 2, 20), 45, "0.0150"),
    # 7 * 0.02 / 60 = 0.002333.. -> half_up 4 -> 0.0023
    ("off-peak seven seconds", london(2026, 3, 2, 20), 7, "0.0023"),
    # 3599 * 0.02 / 60 = 1.199666.. -> 1.1997
    ("off-peak almost an hour", london(2026, 3, 2, 20), 3599, "1.1997"),
    # -- rounding up at night (rate 2: up, 2 decimals) --
    # 61 * 0.01 / 60 = 0.0101666.. -> up 2 -> 0.02
    ("night rounds up", london(2026, 3, 3, 3), 61, "0.02"),
    # 30 * 0.01 / 60 = 0.005 -> up 2 -> 0.01
    ("night half a minute rounds up", london(2026, 3, 3, 3), 30, "0.01"),
    # 120 * 0.01 / 60 = 0.02 exactly: nothing to round
    ("night two minutes", london(2026, 3, 3, 3), 120, "0.02"),
    # -- 30 s increments and rounding down at weekends (rate 3) --
    # 100 s -> 4 increments = 120 s: 120 * 0.035 / 60 = 0.07
    ("weekend in 30 second steps", london(2026, 3, 7, 12), 100, "0.07"),
    # 50 s -> 60 s: 60 * 0.035 / 60 = 0.035 -> down 2 -> 0.03
    ("weekend rounds down", london(2026, 3, 7, 12), 50, "0.03"),
    # 1 s -> 30 s: 30 * 0.035 / 60 = 0.0175 -> down 2 -> 0.01
    ("weekend one second billed as thirty", london(2026, 3, 7, 12), 1, "0.01"),
    # -- a call crossing a band start --
    # 18:59:00 + 120 s: [0,60) PEAK slab 0 = 0.10; 19:00 is elapsed 60 (both
    # the OFF band and slab 1 start): [60,120) OFF 60 * 0.02 / 60 = 0.02;
    # + PEAK's connect fee 0.10 = 0.22
    ("peak into off-peak", london(2026, 3, 2, 18, 59), 120, "0.2200"),
    # 18:59:30 + 150 s: [0,60) PEAK slab 0 0.10; [60,90) PEAK slab 1
    # 30 * 0.05 / 60 = 0.025; [90,150) OFF 60 * 0.02 / 60 = 0.02; + 0.10
    # = 0.245
    ("peak slabs then off-peak", london(2026, 3, 2, 18, 58, 30), 150, "0.2450"),
    # 07:59:30 + 60 s: [0,30) NIGHT 30 * 0.01 / 60 = 0.005; [30,60) PEAK slab 0
    # (elapsed 30 < 60) billed 60 s = 0.10; the connect fee is NIGHT's (the
    # first part's rate): none; 0.105, rounded with the most decimals among
    # the parts' rates (PEAK: half_up 4) = 0.1050
    (
        "night into peak takes the first rate's fee",
        london(2026, 3, 2, 7, 59, 30),
        60,
        "0.1050",
    ),
    # 07:59:50 + 20 s: [0,10) NIGHT 10 * 0.01 / 60 = 0.001666..;
    # [10,20) PEAK billed 60 s = 0.10: 0.101666.. -> half_up 4 -> 0.1017
    (
        "each part is billed in its own increments",
        london(2026, 3, 2, 7, 59, 50),
        20,
        "0.1017",
    ),
    # -- a call crossing midnight --
    # Mon 23:59 + 120 s: [0,60) OFF 60 * 0.02 / 60 = 0.02; Tue [60,120) NIGHT
    # 60 * 0.01 / 60 = 0.01; 0.03 with OFF's half_up 4 (4 decimals > 2)
    ("weekday midnight", london(2026, 3, 2, 23, 59), 120, "0.0300"),
    # Fri 23:59:30 + 60 s: [0,30) OFF 30 * 0.02 / 60 = 0.01; Sat [30,60) WKD
    # 30 s = 0.0175; 0.0275 with OFF's half_up 4
    ("friday night into the weekend", london(2026, 3, 6, 23, 59, 30), 60, "0.0275"),
    # Sun 23:59:45 + 45 s: [0,15) WKD billed 30 s = 0.0175; Mon [15,45) NIGHT
    # 30 * 0.01 / 60 = 0.005; 0.0225; both round to 2 decimals, so the first
    # part's rounding applies (WKD: down) -> 0.02 (NIGHT's up would be 0.03)
    (
        "equal decimals take the first part's method",
        london(2026, 3, 8, 23, 59, 45),
        45,
        "0.02",
    ),
    # Sat 28 Mar 23:59:30 + 60 s: WKD on both sides of midnight, but the call
    # is still cut there: 30 s -> 30 s twice: 2 * 30 * 0.035 / 60 = 0.035 -> 0.03
    ("midnight cuts even within one band", london(2026, 3, 28, 23, 59, 30), 60, "0.03"),
    # -- holidays --
    # Fri 25 Dec 2026 10:00: HOL (weight 20) beats PEAK (10): fee 0.05 +
    # 60 * 0.01 / 60 = 0.01 -> 0.06
    ("christmas day beats the weekday peak", london(2026, 12, 25, 10), 60, "0.0600"),
    # 1 Jan 2027 is a dated HOL: 0.05 + 0.01
    ("a one-off date", london(2027, 1, 1, 10), 60, "0.0600"),
    # 1 Jan 2028 is a Saturday and not listed: WKD 60 * 0.035 / 60 = 0.035 -> 0.03
    ("a one-off date is not every year", london(2028, 1, 1, 10), 60, "0.03"),
    # Thu 24 Dec 23:59:30 + 60 s: [0,30) OFF 0.01; [30,60) HOL
    # 30 * 0.01 / 60 = 0.005; HOL's fee is not charged (OFF prices the first
    # part): 0.015
    ("into christmas at midnight", london(2026, 12, 24, 23, 59, 30), 60, "0.0150"),
    # -- bands are evaluated in the tariff's time zone --
    # Mon 1 Jun 2026 07:30 UTC is 08:30 BST: PEAK, 30 s -> 0.10 + fee 0.10
    (
        "summer time decides the band",
        datetime(2026, 6, 1, 7, 30, tzinfo=UTC),
        30,
        "0.2000",
    ),
    # Mon 1 Jun 2026 06:30 UTC is 07:30 BST: NIGHT, 30 * 0.01 / 60 -> up 0.01
    ("summer time night", datetime(2026, 6, 1, 6, 30, tzinfo=UTC), 30, "0.01"),
]


@pytest.mark.parametrize(
    ("start", "seconds", "charge"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_a_national_call_is_charged_as_worked_out_by_hand(
    start: datetime, seconds: int, charge: str
) -> None:
    rated = quote(STD, voice(start, seconds))
    assert str(rated.charge) == charge
    assert rated.net == rated.charge  # no discount on VOICE_NAT


def test_a_call_crossing_a_band_start_is_priced_part_by_part() -> None:
    rated = quote(STD, voice(london(2026, 3, 2, 18, 58, 30), 150))
    assert [
        (p.elapsed_from, p.elapsed_to, p.band, p.slab, p.billed, p.cost)
        for p in rated.parts
    ] == [
        (0, 60, "PEAK", 0, 60, Decimal("0.10")),
        (60, 90, "PEAK", 1, 30, Decimal("0.025")),
        (90, 150, "OFF", 0, 60, Decimal("0.02")),
    ]
    assert rated.connect_fee == Decimal("0.10")
    assert rated.subtotal == Decimal("0.245")


def test_billed_quantity_can_exceed_the_real_one_at_a_band_start() -> None:
    # 07:59:50 + 20 s: 10 s of NIGHT (1 s steps) and 10 s of PEAK billed 60 s
    rated = quote(STD, voice(london(2026, 3, 2, 7, 59, 50), 20))
    assert [(p.quantity, p.billed, p.increments) for p in rated.parts] == [
        (10, 10, 10),
        (10, 60, 1),
    ]


def test_the_cap_is_recorded_with_the_charge() -> None:
    rated = quote(STD, voice(london(2026, 3, 2, 9), 3600))
    assert rated.capped
    assert rated.max_cost == Decimal("2.00")
    assert rated.subtotal == Decimal("3.15")


def test_a_start_with_an_offset_is_the_same_instant() -> None:
    # 11:00+01:00 is 10:00 in London (GMT): PEAK, as in the first case
    start = datetime(2026, 3, 2, 11, tzinfo=timezone(timedelta(hours=1)))
    assert quote(STD, voice(start, 30)).charge == Decimal("0.2000")


def test_a_start_between_seconds_is_cut_where_the_band_starts() -> None:
    # 18:59:59.5 + 2 s: 0.5 s PEAK (billed 60 s: 0.10) + 1.5 s OFF (slab of
    # OFF, 1 s steps: 2 s * 0.02 / 60 = 0.000666..); + fee 0.10 = 0.2007
    start = london(2026, 3, 2, 18, 59, 59) + timedelta(microseconds=500_000)
    rated = quote(STD, voice(start, 2))
    assert [(p.quantity, p.billed) for p in rated.parts] == [
        (Decimal("0.5"), 60),
        (Decimal("1.5"), 2),
    ]
    assert rated.charge == Decimal("0.2007")


def test_the_home_network_is_not_roaming_when_the_usage_names_no_network() -> None:
    usage = Usage(
        "VOICE_NAT",
        london(2026, 3, 2, 10),
        duration_seconds=30,
        called_number="441632960000",
    )
    assert quote(STD, usage).charge == Decimal("0.2000")
