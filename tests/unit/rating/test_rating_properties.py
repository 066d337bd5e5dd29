"""Properties of the engine over many generated usages and tariffs."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.rating import AllowanceState, compile_tariff, quote
from domain.rating.rated import EXACT

from .tariffs import LONDON, entry, rounding, tariff, voice

STD = compile_tariff(tariff())
STARTS = st.datetimes(
    min_value=datetime(2026, 1, 1),  # noqa: DTZ001 (hypothesis: naive bounds)
    max_value=datetime(2027, 12, 31),  # noqa: DTZ001
    timezones=st.just(LONDON),
)
PRICES = st.decimals(min_value=0, max_value=10, places=3).map(str)


@st.composite
def capped_tariffs(draw: st.DrawFn) -> object:
    increment = draw(st.sampled_from([1, 6, 30, 60]))
    second_from = draw(st.integers(min_value=1, max_value=600))
    rates = [
        {
            "usage_class": "VOICE_NAT",
            "destination": "NAT",
            "time_band": band,
            "connect_fee": draw(PRICES),
            "slabs": [
                {"from": 0, "price": draw(PRICES), "per": 60, "increment": increment},
                {"from": second_from, "price": draw(PRICES), "per": 60, "increment": 1},
            ],
            "rounding": rounding(
                draw(st.sampled_from(["up", "down", "half_up"])),
                draw(st.integers(0, 4)),
            ),
            "max_cost": {"amount": draw(PRICES)},
        }
        for band in ("NIGHT", "PEAK", "OFF", "WKD", "HOL")
    ]
    return compile_tariff(tariff(entry(rates=rates, discounts=[])))


@settings(max_examples=200, deadline=None)
@given(capped_tariffs(), STARTS, st.integers(min_value=0, max_value=4 * 3600))
def test_a_capped_charge_never_exceeds_any_max_cost_of_its_rates(
    capped: object, start: datetime, seconds: int
) -> None:
    rated = quote(capped, voice(start, seconds))  # type: ignore[arg-type]
    assert rated.max_cost is not None or not rated.parts
    if rated.max_cost is not None:
        assert rated.charge <= rated.max_cost
    # charges that do not end carry the engine's 34 digits: subtract as it does
    assert rated.net == EXACT.subtract(rated.charge, rated.discount) >= 0


@settings(max_examples=300, deadline=None)
@given(STARTS, st.integers(min_value=0, max_value=3 * 86_400), st.integers(0, 200))
def test_splitting_a_call_prices_exactly_its_duration_give_or_take_increments(
    start: datetime, seconds: int, free: int
) -> None:
    allowance = entry(
        allowances=[{"code": "MIN", "units": 200, "usage_classes": ["VOICE_NAT"]}]
    )
    rated = quote(
        tariff(allowance), voice(start, seconds), AllowanceState({"MIN": free})
    )
    charged = seconds - min(free, seconds)
    assert sum(part.quantity for part in rated.parts) == charged
    edges = [(p.elapsed_from, p.elapsed_to) for p in rated.parts]
    assert all(a[1] == b[0] for a, b in pairwise(edges))
    for part in rated.parts:
        assert 0 <= part.billed - part.quantity < part.increment
        assert part.billed % part.increment == 0


@settings(max_examples=200, deadline=None)
@given(STARTS, st.integers(min_value=1, max_value=7200))
def test_each_part_starts_where_a_band_a_slab_or_a_day_begins(
    start: datetime, seconds: int
) -> None:
    rated = quote(STD, voice(start, seconds))
    for part in rated.parts[1:]:
        at = (start + timedelta(microseconds=part.begin)).astimezone(LONDON)
        on_boundary = (at.hour, at.minute, at.second) in {
            (0, 0, 0),
            (8, 0, 0),
            (19, 0, 0),
        }
        assert on_boundary or part.elapsed_from == 60  # PEAK's slab 1
