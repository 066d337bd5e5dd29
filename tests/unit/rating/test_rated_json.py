"""A rated usage explains itself, and serialises to the quote's JSON shape."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.rating import AllowanceState, RatingError, Usage, compile_tariff, quote

from .tariffs import LONDON, data, entry, london, roaming, sms, tariff, voice

STD = tariff()
STARTS = st.datetimes(
    min_value=datetime(2026, 1, 1),  # noqa: DTZ001 (hypothesis: naive bounds)
    max_value=datetime(2027, 12, 31),  # noqa: DTZ001
    # London, and fixed offsets (what stored UTC text parses to), whose
    # clock times as_json formats itself up to midnight
    timezones=st.sampled_from(
        [
            LONDON,
            UTC,
            timezone(timedelta(hours=-5)),
            timezone(timedelta(hours=5, minutes=30)),
            timezone(timedelta(hours=1, seconds=30)),
        ]
    ),
)


def test_a_quote_prints_charge_currency_and_breakdown_as_strings() -> None:
    rated = quote(STD, voice(london(2026, 3, 2, 18, 58, 30), 150))
    printed = json.loads(rated.to_json())
    assert (printed["charge"], printed["currency"]) == ("0.2450", "GBP")
    assert printed["breakdown"][0] == {
        "from": "0",
        "to": "60",
        "start": "2026-03-02T18:58:30+00:00",
        "end": "2026-03-02T18:59:30+00:00",
        "band": "PEAK",
        "rate": 0,
        "weight": 10,
        "slab": 0,
        "quantity": "60",
        "increment": 60,
        "increments": 1,
        "billed": 60,
        "price": "0.10",
        "per": 60,
        "cost": "0.10",
    }
    assert printed["breakdown"][2]["band"] == "OFF"
    assert (printed["connect_fee"], printed["subtotal"]) == ("0.10", "0.245")
    assert printed["rounding"] == {"method": "half_up", "decimals": 4}
    assert (printed["max_cost"], printed["capped"]) == ("2.00", False)
    assert (printed["destination"], printed["prefix"]) == ("NAT", "441")


def test_the_allowance_used_is_part_of_the_explanation() -> None:
    with_allowance = tariff(
        entry(
            allowances=[{"code": "MIN", "units": 100, "usage_classes": ["VOICE_NAT"]}]
        )
    )
    rated = quote(
        with_allowance, voice(london(2026, 3, 2, 10), 90), AllowanceState({"MIN": 40})
    )
    printed = rated.as_dict()
    assert printed["allowances"] == [{"code": "MIN", "units": 40, "left": 0}]
    assert printed["breakdown"][0]["from"] == "40"


def test_a_data_part_has_no_clock_times() -> None:
    printed = quote(STD, data(london(2026, 3, 2, 10), 2048)).as_dict()
    assert "start" not in printed["breakdown"][0]
    assert printed["breakdown"][0]["quantity"] == "2048"


def test_small_amounts_are_printed_without_an_exponent() -> None:
    printed = quote(STD, data(london(2026, 3, 2, 10), 1000)).as_dict()
    assert printed["charge"] == "0.0000"
    assert printed["breakdown"][0]["cost"] == "0.000009765625"  # 1024 * 0.01 / 1048576


def test_rating_is_deterministic_and_a_compiled_tariff_gives_the_same() -> None:
    usage = voice(london(2026, 3, 2, 18, 58, 30), 150)
    compiled = compile_tariff(STD)
    assert quote(STD, usage) == quote(STD, usage) == quote(compiled, usage)


@pytest.mark.parametrize(
    "usage",
    [
        Usage("VOICE_NAT", london(2026, 3, 2, 10)),  # no quantity
        Usage("VOICE_NAT", london(2026, 3, 2, 10), duration_seconds=1, units=1),
        Usage("VOICE_NAT", london(2026, 3, 2, 10), duration_seconds=-1),
        Usage("VOICE_NAT", datetime(2026, 3, 2, 10), duration_seconds=1),  # noqa: DTZ001
        Usage("VOICE_NAT", london(2026, 3, 2, 10), duration_seconds=1.5),  # type: ignore[arg-type]
    ],
    ids=["no quantity", "two quantities", "negative", "naive start", "float"],
)
def test_a_usage_that_cannot_be_rated_is_refused_with_bad_usage(usage: Usage) -> None:
    with pytest.raises(RatingError) as raised:
        quote(STD, usage)
    assert raised.value.code == "bad_usage"


def test_a_rating_error_serialises_with_its_code() -> None:
    error = RatingError("no_rate", "no rate")
    assert error.as_dict() == {"code": "no_rate", "message": "no rate"}
    assert Decimal("0") == quote(STD, voice(london(2026, 3, 2, 10), 0)).charge


WITH_ALLOWANCES = compile_tariff(
    tariff(
        entry(
            code="STD-2",
            allowances=[
                {"code": "MIN", "units": 300, "usage_classes": ["VOICE_NAT"]},
                {"code": "MB", "units": 50 * 1_048_576, "usage_classes": ["DATA"]},
            ],
        )
    )
)
USAGES = st.one_of(
    st.builds(
        voice,
        STARTS,
        st.integers(min_value=0, max_value=3 * 86_400),
        st.sampled_from(
            ["441632960000", "447700900000", "33123456789", "19995550100", "9"]
        ),
        st.sampled_from(["VOICE_NAT", "VOICE_MOB", "VOICE_INTL"]),
    ),
    st.builds(data, STARTS, st.integers(min_value=0, max_value=300 * 1_048_576)),
    st.builds(sms, STARTS, st.integers(min_value=1, max_value=5)),
    st.builds(
        lambda start, seconds, network: voice(start, seconds, **network),
        STARTS,
        st.integers(min_value=1, max_value=7200),
        st.sampled_from([roaming("208", "10"), roaming("262", "01")]),
    ),
)


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from([compile_tariff(STD), WITH_ALLOWANCES]),
    USAGES,
    st.dictionaries(st.sampled_from(["MIN", "MB"]), st.integers(0, 400)),
)
def test_the_json_text_of_a_rated_usage_is_exactly_its_dict_dumped(
    compiled: object, usage: Usage, left: dict[str, int]
) -> None:
    try:
        rated = quote(compiled, usage, AllowanceState(left))  # type: ignore[arg-type]
    except RatingError:
        return  # nothing rated, nothing to write
    assert rated.as_json() == json.dumps(rated.as_dict(), separators=(",", ":"))
    assert rated.as_json().isascii()


def _dumped(rated: object) -> str:
    return json.dumps(rated.as_dict(), separators=(",", ":"))  # type: ignore[attr-defined]


def test_amounts_equal_in_value_but_not_in_digits_print_their_own_digits() -> None:
    # The JSON text keeps what it formatted from the tariff per object: 0.10
    # and 0.1 are equal (and hash alike) but print otherwise.
    rated = quote(STD, voice(london(2026, 3, 2, 18, 58, 30), 150))
    part = rated.parts[0]
    for digits in ("0.10", "0.1", "0.100", "0.10"):
        for changed in (
            rated._replace(connect_fee=Decimal(digits)),
            rated._replace(max_cost=Decimal(digits)),
            rated._replace(discount=Decimal(digits)),
            rated._replace(parts=(part._replace(price=Decimal(digits)),)),
        ):
            assert changed.as_json() == _dumped(changed)


@pytest.mark.parametrize(
    "start",
    [
        datetime(2026, 3, 2, 23, 59, 30, tzinfo=UTC),  # into the next day
        datetime(2026, 12, 31, 23, 58, 0, 250_000, tzinfo=UTC),  # and year
        datetime(2026, 3, 2, 10, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=-3))),
        datetime(2026, 10, 25, 0, 59, 59, tzinfo=LONDON),  # over a change of time
        datetime(2026, 10, 25, 1, 30, tzinfo=LONDON, fold=1),
    ],
)
def test_clock_times_of_a_call_over_midnight_or_a_change_of_time(
    start: datetime,
) -> None:
    rated = quote(STD, voice(start, 7_000))
    assert rated.as_json() == _dumped(rated)
