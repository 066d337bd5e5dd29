"""Tariff versions by effective-from time, and rate plans pointing at tariffs."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain.rating import RatingError, quote, read_tariff_book, tariff_in_force

from .tariffs import entry, london, per_minute, voice


def version(effective_from: str | None, price: str) -> dict[str, object]:
    raw = entry(
        rates=[{"usage_class": "VOICE_NAT", "slabs": [per_minute(price, 60)]}],
        discounts=[],
    )
    if effective_from is not None:
        raw["effective_from"] = effective_from
    return raw


BOOK, PROBLEMS = read_tariff_book(
    {
        "tariffs": [
            version("2027-01-01T00:00:00Z", "0.30"),
            version(None, "0.10"),
            version("2026-07-01T00:00:00+01:00", "0.20"),
        ],
        "rate_plans": {"SIMO10": "STD"},
    }
)


def test_the_document_of_versions_reads_without_a_problem() -> None:
    assert PROBLEMS == []


@pytest.mark.parametrize(
    ("at", "price"),
    [
        (datetime(2020, 1, 1, tzinfo=UTC), "0.10"),  # from the beginning of time
        (datetime(2026, 6, 30, 22, 59, 59, tzinfo=UTC), "0.10"),
        (datetime(2026, 6, 30, 23, tzinfo=UTC), "0.20"),  # 00:00+01:00 exactly
        (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), "0.20"),
        (datetime(2027, 1, 1, tzinfo=UTC), "0.30"),
        (datetime(2099, 1, 1, tzinfo=UTC), "0.30"),
    ],
)
def test_the_version_in_force_is_the_latest_that_began_at_or_before(
    at: datetime, price: str
) -> None:
    chosen = tariff_in_force(BOOK.tariffs, at)
    assert chosen.rates[0].slabs[0].price == Decimal(price)


def test_a_subscription_reaches_its_tariff_through_its_rate_plan() -> None:
    at = london(2026, 8, 3, 10)
    tariff = BOOK.for_rate_plan("SIMO10", at)
    # the July version: 60 * 0.20 / 60 = 0.2
    assert quote(tariff, voice(at, 60)).charge == Decimal("0.2")


def test_no_version_in_force_yet_is_a_configuration_error() -> None:
    later_only = [v for v in BOOK.tariffs if v.effective_from is not None]
    with pytest.raises(RatingError) as raised:
        tariff_in_force(later_only, datetime(2026, 1, 1, tzinfo=UTC))
    assert raised.value.code == "no_tariff"


@pytest.mark.parametrize("rate_plan", ["UNKNOWN"])
def test_a_rate_plan_without_a_tariff_is_a_configuration_error(rate_plan: str) -> None:
    with pytest.raises(RatingError) as raised:
        BOOK.for_rate_plan(rate_plan, datetime(2026, 1, 1, tzinfo=UTC))
    assert raised.value.code == "no_tariff"


def test_two_versions_from_the_same_time_are_a_problem() -> None:
    _, problems = read_tariff_book(
        {
            "tariffs": [
                version("2027-01-01T00:00:00Z", "1"),
                version("2027-01-01T01:00:00+01:00", "2"),
            ]
        }
    )
    assert [p.path for p in problems] == ["tariffs[1].effective_from"]


def test_a_rate_plan_must_name_a_tariff_of_the_document() -> None:
    _, problems = read_tariff_book(
        {"tariffs": [version(None, "1")], "rate_plans": {"SIMO10": "GOLD"}}
    )
    assert [p.path for p in problems] == ["rate_plans.SIMO10"]
