"""Reading the tariff document, naming every problem by its path, and writing
it back."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.rating import (
    MaxCost,
    Rounding,
    Slab,
    read_tariff_book,
    read_tariffs,
    write_tariffs,
)

from .tariffs import STANDARD, entry

SPEC_EXAMPLE: dict[str, Any] = {
    "tariffs": [
        {
            "code": "STD",
            "currency": "GBP",
            "timezone": "Europe/London",
            "time_bands": [
                {"code": "PEAK", "weekdays": [1, 2, 3, 4, 5], "start": "08:00"},
                {"code": "OFF", "weekdays": [1, 2, 3, 4, 5], "start": "19:00"},
                {"code": "WKD", "weekdays": [6, 7], "start": "00:00"},
                {"code": "HOL", "dates": ["12-25", "2027-01-01"], "start": "00:00"},
            ],
            "destinations": {"NAT": ["441", "442"], "MOB": ["447"]},
            "rates": [
                {
                    "usage_class": "VOICE_NAT",
                    "destination": "NAT",
                    "time_band": "PEAK",
                    "weight": 10,
                    "connect_fee": "0.10",
                    "slabs": [
                        {"from": 0, "price": "0.10", "per": 60, "increment": 60},
                        {"from": 60, "price": "0.05", "per": 60, "increment": 1},
                    ],
                    "rounding": {"method": "half_up", "decimals": 4},
                    "max_cost": {"amount": "2.00", "strategy": "cap"},
                }
            ],
        }
    ],
    "rate_plans": {"SIMO10": "STD"},
}


def test_the_documented_example_reads_without_a_problem() -> None:
    book, problems = read_tariff_book(SPEC_EXAMPLE)
    assert problems == []
    (std,) = book.tariffs
    rate = std.rates[0]
    assert rate.slabs[1] == Slab(start=60, price=Decimal("0.05"), per=60, increment=1)
    assert rate.rounding == Rounding("half_up", 4)
    assert rate.max_cost == MaxCost(Decimal("2.00"), "cap")
    assert std.time_bands[3].dates == ("12-25", "2027-01-01")
    assert book.rate_plans == {"SIMO10": "STD"}


def document_with(change: str, value: Any) -> dict[str, Any]:
    """STANDARD with the value at a dotted path (indexes as numbers) replaced."""
    raw = copy.deepcopy(STANDARD)
    *parents, last = change.split(".")
    target: Any = raw
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return {"tariffs": [raw]}


PROBLEMS = [
    ("rates.2.slabs.0.per", 0, "tariffs[0].rates[2].slabs[0].per"),
    ("rates.0.slabs.1.price", 0.05, "tariffs[0].rates[0].slabs[1].price"),
    ("rates.0.slabs.1.price", "-1", "tariffs[0].rates[0].slabs[1].price"),
    ("rates.0.slabs.1.from", 0, "tariffs[0].rates[0].slabs[1].from"),
    ("rates.0.slabs.0.from", 5, "tariffs[0].rates[0].slabs[0].from"),
    ("rates.0.slabs.1.increment", None, "tariffs[0].rates[0].slabs[1].increment"),
    ("rates.0.time_band", "EVENING", "tariffs[0].rates[0].time_band"),
    ("rates.0.destination", "MARS", "tariffs[0].rates[0].destination"),
    ("rates.11.zone", "ASIA", "tariffs[0].rates[11].zone"),
    ("rates.0.weight", "high", "tariffs[0].rates[0].weight"),
    (
        "rates.0.rounding",
        {"method": "even", "decimals": 2},
        "tariffs[0].rates[0].rounding.method",
    ),
    (
        "rates.0.rounding",
        {"method": "up", "decimals": -1},
        "tariffs[0].rates[0].rounding.decimals",
    ),
    (
        "rates.0.max_cost",
        {"amount": "2", "strategy": "free"},
        "tariffs[0].rates[0].max_cost.strategy",
    ),
    ("rates.0.connect_fee", "ten pence", "tariffs[0].rates[0].connect_fee"),
    ("rates.0.slabs", [], "tariffs[0].rates[0].slabs"),
    ("rates.0.colour", "red", "tariffs[0].rates[0].colour"),
    (
        "rates.1",
        {
            "usage_class": "VOICE_NAT",
            "destination": "NAT",
            "time_band": "PEAK",
            "weight": 10,
            "slabs": [{"price": "1", "per": 1, "increment": 1}],
        },
        "tariffs[0].rates[1]",
    ),
    ("time_bands.0.start", "8am", "tariffs[0].time_bands[0].start"),
    ("time_bands.0.start", 480, "tariffs[0].time_bands[0].start"),
    ("time_bands.1.weekdays", [1, 8], "tariffs[0].time_bands[1].weekdays[1]"),
    ("time_bands.4.dates", ["02-30"], "tariffs[0].time_bands[4].dates[0]"),
    ("time_bands.2.start", "08:00", "tariffs[0].time_bands[2].start"),
    ("time_bands.3.code", "NIGHT", "tariffs[0].time_bands[3]"),
    ("destinations.NAT", [441], "tariffs[0].destinations.NAT[0]"),
    ("destinations.MOB", ["447", "447"], "tariffs[0].destinations.MOB[1]"),
    ("zones.EU", [{"mcc": 208}], "tariffs[0].zones.EU[0].mcc"),
    ("currency", "pounds", "tariffs[0].currency"),
    ("timezone", "Europe/Atlantis", "tariffs[0].timezone"),
    ("effective_from", "2027-01-01T00:00:00", "tariffs[0].effective_from"),
    ("discounts.0", {"usage_class": "VOICE_MOB"}, "tariffs[0].discounts[0]"),
    ("discounts.1.percentage", "150", "tariffs[0].discounts[1].percentage"),
    (
        "allowances",
        [{"code": "M", "units": -1, "usage_classes": ["VOICE_NAT"]}],
        "tariffs[0].allowances[0].units",
    ),
    (
        "allowances",
        [{"code": "M", "units": 1, "usage_classes": []}],
        "tariffs[0].allowances[0].usage_classes",
    ),
]


@pytest.mark.parametrize(("change", "value", "path"), PROBLEMS)
def test_a_problem_is_named_by_its_path_in_the_document(
    change: str, value: Any, path: str
) -> None:
    tariffs, problems = read_tariffs(document_with(change, value))
    assert path in [problem.path for problem in problems], problems
    assert tariffs == []  # a tariff with a problem is not returned


def test_every_problem_of_a_document_is_reported_at_once() -> None:
    raw = entry()
    raw["rates"][0]["slabs"][1]["per"] = 0
    raw["rates"][3]["time_band"] = "LUNCH"
    raw["currency"] = "gbp"
    document = {"tariffs": [raw, {"code": "X"}], "rate_plans": {"P": "NOPE"}}
    _, problems = read_tariffs(document)
    paths = {problem.path for problem in problems}
    assert {
        "tariffs[0].rates[0].slabs[1].per",
        "tariffs[0].rates[3].time_band",
        "tariffs[0].currency",
        "tariffs[1].currency",
        "tariffs[1].rates",
        "rate_plans.P",
    } <= paths


@pytest.mark.parametrize(
    "document",
    [None, [], "tariffs", {"tariffs": "STD"}, {"tariffs": [None]}, {"tarifs": []}],
)
def test_a_document_of_the_wrong_shape_is_refused_with_a_problem(document: Any) -> None:
    tariffs, problems = read_tariffs(document)
    assert tariffs == []
    assert problems


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)


@given(
    st.fixed_dictionaries(
        {
            "tariffs": st.lists(
                st.dictionaries(st.sampled_from(list(STANDARD)), JSON_VALUES)
            )
        }
    )
)
def test_reading_never_raises_whatever_the_document_holds(document: Any) -> None:
    read_tariff_book(document)


def test_a_written_document_reads_back_to_the_same_tariffs() -> None:
    raw = entry(
        effective_from="2027-01-01T00:00:00+01:00",
        allowances=[{"code": "MIN", "units": 6000, "usage_classes": ["VOICE_NAT"]}],
        description="Standard",
    )
    raw["time_bands"].append({"code": "LATE", "start": "23:30:15"})
    book, problems = read_tariff_book({"tariffs": [raw], "rate_plans": {"S": "STD"}})
    assert problems == []
    written = write_tariffs(book.tariffs, book.rate_plans)
    again, problems = read_tariff_book(json.loads(json.dumps(written)))
    assert problems == []
    assert again == book
    assert write_tariffs(again.tariffs, again.rate_plans) == written


def test_amounts_are_written_with_the_digits_they_were_read_with() -> None:
    raw = entry()
    raw["rates"][0]["slabs"][0]["price"] = "0.0000001"
    tariffs, _ = read_tariffs({"tariffs": [raw]})
    rate = write_tariffs(tariffs)["tariffs"][0]["rates"][0]
    assert rate["slabs"][0]["price"] == "0.0000001"
    assert rate["connect_fee"] == "0.10"
    assert rate["max_cost"] == {"amount": "2.00", "strategy": "cap"}


def test_values_that_yaml_parses_into_dates_and_times_are_accepted() -> None:
    raw = entry(effective_from=datetime(2027, 1, 1, tzinfo=UTC))
    raw["time_bands"][4]["dates"] = ["12-25", date(2027, 1, 1)]
    tariffs, problems = read_tariffs({"tariffs": [raw]})
    assert problems == []
    assert tariffs[0].time_bands[4].dates == ("12-25", "2027-01-01")
    assert tariffs[0].effective_from == datetime(2027, 1, 1, tzinfo=UTC)
