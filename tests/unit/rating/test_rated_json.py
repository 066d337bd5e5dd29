"""A rated usage explains itself, and serialises to the quote's JSON shape."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest

from domain.rating import AllowanceState, RatingError, Usage, compile_tariff, quote

from .tariffs import data, entry, london, tariff, voice

STD = tariff()


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
