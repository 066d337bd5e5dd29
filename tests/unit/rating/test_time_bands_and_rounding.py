"""Which band prices an instant, where a call is cut, and how charges round."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.rating import RatingError, TimeBand, quote
from domain.rating.bands import SECOND, BandCalendar, epoch_us

from .tariffs import WEEKDAYS, entry, london, per_minute, rounding, tariff, voice

# The document's own example: PEAK and OFF on weekdays, nothing before 08:00.
SPEC_BANDS = [
    {"code": "PEAK", "weekdays": WEEKDAYS, "start": "08:00"},
    {"code": "OFF", "weekdays": WEEKDAYS, "start": "19:00"},
    {"code": "WKD", "weekdays": [6, 7], "start": "00:00"},
    {"code": "HOL", "dates": ["12-25", "2027-01-01"], "start": "00:00"},
]


def banded(*rates: dict[str, object]) -> dict[str, object]:
    return entry(time_bands=SPEC_BANDS, rates=list(rates), discounts=[])


def nat(
    band: str, price: str, weight: int = 10, increment: int = 1
) -> dict[str, object]:
    return {
        "usage_class": "VOICE_NAT",
        "destination": "NAT",
        "time_band": band,
        "weight": weight,
        "slabs": [per_minute(price, increment)],
    }


def test_a_band_runs_until_midnight_not_into_the_next_morning() -> None:
    # OFF runs 19:00 to midnight; 03:00 on a weekday has no band at all
    spec = tariff(banded(nat("PEAK", "0.10"), nat("OFF", "0.02")))
    with pytest.raises(RatingError) as raised:
        quote(spec, voice(london(2026, 3, 3, 3), 60))
    assert raised.value.code == "no_rate"


def test_a_call_running_into_a_time_without_a_band_is_a_configuration_error() -> None:
    spec = tariff(banded(nat("PEAK", "0.10"), nat("OFF", "0.02")))
    with pytest.raises(RatingError) as raised:
        quote(spec, voice(london(2026, 3, 2, 23, 59), 120))
    assert raised.value.code == "no_rate"


def test_an_any_band_rate_fills_the_hours_no_band_covers() -> None:
    # 03:00: only "*" (weight 0): 60 * 0.05 / 60 = 0.05; 10:00: PEAK (weight
    # 10) beats "*": 60 * 0.10 / 60 = 0.1
    spec = tariff(banded(nat("PEAK", "0.10"), nat("*", "0.05", weight=0)))
    assert quote(spec, voice(london(2026, 3, 3, 3), 60)).charge == Decimal("0.05")
    assert quote(spec, voice(london(2026, 3, 3, 10), 60)).charge == Decimal("0.1")


def test_on_equal_weights_the_band_that_started_latest_wins() -> None:
    # 25 Dec 2026 is a Friday: HOL from 00:00 and PEAK from 08:00 are both
    # active at 10:00; equal weights: PEAK started later: 60 * 0.10 / 60
    spec = tariff(banded(nat("PEAK", "0.10"), nat("HOL", "0.01")))
    assert quote(spec, voice(london(2026, 12, 25, 10), 60)).charge == Decimal("0.1")


def test_a_heavier_holiday_band_overrides_the_weekday_bands() -> None:
    # HOL weight 20: 60 * 0.01 / 60 = 0.01 at 10:00 on 25 Dec
    spec = tariff(banded(nat("PEAK", "0.10"), nat("HOL", "0.01", weight=20)))
    assert quote(spec, voice(london(2026, 12, 25, 10), 60)).charge == Decimal("0.01")


def test_a_call_is_cut_where_a_band_of_its_rates_starts_even_if_it_loses() -> None:
    # 25 Dec 07:59:30 + 60 s, HOL (20) over PEAK (10), 60 s steps: cut at
    # 08:00 where PEAK starts: two parts of 30 s, each billed 60 s at HOL:
    # 2 * 60 * 0.01 / 60 = 0.02
    spec = tariff(banded(nat("PEAK", "0.10", increment=60), nat("HOL", "0.01", 20, 60)))
    rated = quote(spec, voice(london(2026, 12, 25, 7, 59, 30), 60))
    assert [(p.band, p.billed) for p in rated.parts] == [("HOL", 60), ("HOL", 60)]
    assert rated.charge == Decimal("0.02")


def test_a_band_none_of_the_usage_rates_names_does_not_cut_the_call() -> None:
    # One "*" rate in 60 s steps; PEAK starts at 08:00 but no VOICE_NAT rate
    # names it: one part, 60 s billed: 60 * 0.60 / 60 = 0.6
    spec = tariff(
        banded(
            nat("*", "0.60", increment=60),
            {"usage_class": "DATA", "time_band": "PEAK", "slabs": [per_minute("1", 1)]},
        )
    )
    rated = quote(spec, voice(london(2026, 3, 2, 7, 59, 30), 60))
    assert [(p.quantity, p.billed) for p in rated.parts] == [(60, 60)]
    assert rated.charge == Decimal("0.6")


def test_a_band_starting_in_the_spring_forward_gap_starts_at_the_change() -> None:
    # 29 Mar 2026: clocks go from 01:00 GMT to 02:00 BST at 01:00 UTC, so
    # 01:30 never shows on a London clock; the band starts at the change
    late = TimeBand("LATE", start=90 * 60)
    calendar = BandCalendar("Europe/London", [TimeBand("EARLY", 0), late])
    change = epoch_us(datetime(2026, 3, 29, 1, tzinfo=UTC))
    assert calendar.instant(date(2026, 3, 29), late.start) == change
    plan = calendar.plan(date(2026, 3, 29).toordinal())
    assert plan.starts == [plan.begin, change]
    assert plan.active == [frozenset({"EARLY"}), frozenset({"LATE"})]


def test_local_days_are_23_and_25_hours_long_when_the_clocks_change() -> None:
    calendar = BandCalendar("Europe/London", [])
    spring = calendar.plan(date(2026, 3, 29).toordinal())
    autumn = calendar.plan(date(2026, 10, 25).toordinal())
    assert (spring.end - spring.begin) // SECOND == 23 * 3600
    assert (autumn.end - autumn.begin) // SECOND == 25 * 3600


def test_a_call_over_the_autumn_change_is_priced_for_its_real_duration() -> None:
    # 25 Oct 2026 (Sunday, WKD): 01:30 BST + 3600 s ends 01:30 GMT; one part
    # of 3600 s in 30 s steps: 3600 * 0.035 / 60 = 2.1 -> down 2 -> 2.10
    start = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 01:30 BST
    rated = quote(tariff(), voice(start, 3600))
    assert rated.charge == Decimal("2.10")
    assert len(rated.parts) == 1


ROUNDING_CASES = [
    # 15 s * 0.005 / 60 = 0.00125 exactly: a tie at 4 decimals
    ("up", 4, "0.0013"),  # away from zero
    ("down", 4, "0.0012"),  # towards zero
    ("half_up", 4, "0.0013"),  # the tie goes up (not to even)
    ("half_up", 5, "0.00125"),  # nothing to round
    ("down", 0, "0.00125"),  # decimals 0: no rounding at all
    ("up", 2, "0.01"),
    ("half_up", 2, "0.00"),
]


@pytest.mark.parametrize(("method", "decimals", "charge"), ROUNDING_CASES)
def test_the_total_is_rounded_once_with_the_rate_s_method(
    method: str, decimals: int, charge: str
) -> None:
    rate = nat("*", "0.005")
    rate["rounding"] = rounding(method, decimals)
    rated = quote(tariff(banded(rate)), voice(london(2026, 3, 2, 10), 15))
    assert str(rated.charge) == charge


def test_parts_are_not_rounded_before_they_are_added() -> None:
    # 07:59:50 + 20 s, cut at the PEAK start: 10 s * 0.20 / 60 = 0.0333..
    # twice; the sum 0.0666.. rounds up (2 decimals) to 0.07, where rounding
    # each part up first would give 0.04 + 0.04 = 0.08
    cheap = nat("*", "0.20", weight=0)
    peak = nat("PEAK", "0.20")
    for rate in (cheap, peak):
        rate["rounding"] = rounding("up", 2)
    spec = tariff(banded(cheap, peak))
    rated = quote(spec, voice(london(2026, 3, 2, 7, 59, 50), 20))
    assert len(rated.parts) == 2
    assert rated.charge == Decimal("0.07")


ZONES = ["Europe/London", "America/Sao_Paulo", "Australia/Lord_Howe", "Asia/Kathmandu"]
CALENDARS = {zone: BandCalendar(zone, []) for zone in ZONES}


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(ZONES),
    st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001 (hypothesis: naive bounds)
        max_value=datetime(2035, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
)
def test_an_instant_falls_in_the_local_day_its_clock_shows(
    zone: str, moment: datetime
) -> None:
    plan = CALENDARS[zone].day_of(epoch_us(moment))
    assert plan.day == moment.astimezone(ZoneInfo(zone)).date()
    assert plan.begin <= epoch_us(moment) < plan.end
