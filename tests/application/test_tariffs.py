"""The tariff service on SQLite and PostgreSQL: import, versions, export, rate
plans, and the book the rating job reads."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.domain import CanMutateAggregate

from api.cli_tariffs import demo_tariffs
from application.platform import Platform
from application.tariffs import TariffService, TariffsRejected
from domain.rating import Usage, quote, read_tariff_book, write_tariffs
from domain.rating.book import TariffCatalogue
from tests.unit.test_event_topics import declared_by

MONDAY_EVENING = datetime(2026, 3, 2, 18, 58, 30, tzinfo=UTC)


def events_recorded(tariffs: TariffService) -> int:
    return len(list(tariffs.recorder.select_notifications(start=None, limit=10_000)))


def version(
    price: str, effective_from: str | None = None, code: str = "STD"
) -> dict[str, Any]:
    """One version of a tariff pricing national calls at ``price`` a minute."""
    raw: dict[str, Any] = {
        "code": code,
        "currency": "GBP",
        "timezone": "Europe/London",
        "rates": [
            {
                "usage_class": "VOICE_NAT",
                "slabs": [{"from": 0, "price": price, "per": 60, "increment": 60}],
            }
        ],
    }
    if effective_from is not None:
        raw["effective_from"] = effective_from
    return raw


def document(*versions: dict[str, Any], **rate_plans: str) -> dict[str, Any]:
    return {"version": 1, "tariffs": list(versions), "rate_plans": rate_plans}


def a_minute_call(at: datetime = MONDAY_EVENING) -> Usage:
    return Usage("VOICE_NAT", at, duration_seconds=60, called_number="441632960000")


def price_at(tariffs: TariffService, rate_plan: str, at: datetime) -> Decimal:
    """What the rating job charges a minute's call on ``rate_plan`` at ``at``."""
    tariff = tariffs.book().for_rate_plan(rate_plan, at)
    return quote(tariffs.compiled(tariff), a_minute_call(at)).charge


def test_the_demo_tariffs_are_imported_and_rate_every_demo_rate_plan(
    platform: Platform,
) -> None:
    tariffs = platform.tariffs

    counts = tariffs.import_document(demo_tariffs(), "ops")

    assert counts == {
        "defined": 1,
        "redefined": 0,
        "assigned": 4,
        "unchanged": 0,
        "events": 5,
    }
    book = tariffs.book()
    for plan in ("STD", "SIMO10", "PAYG", "BIZ10"):
        assert book.for_rate_plan(plan, MONDAY_EVENING).code == "STD"
    usage = Usage(
        "VOICE_NAT",
        MONDAY_EVENING,
        duration_seconds=150,
        called_number="441632960000",
    )
    assert tariffs.quote("STD", usage).as_dict()["charge"] == "0.2800"


def test_importing_the_same_document_again_records_nothing(
    platform: Platform,
) -> None:
    tariffs = platform.tariffs
    tariffs.import_document(demo_tariffs(), "ops")
    recorded = events_recorded(tariffs)

    again = tariffs.import_document(demo_tariffs(), "ops")

    assert again == {
        "defined": 0,
        "redefined": 0,
        "assigned": 0,
        "unchanged": 5,
        "events": 0,
    }
    assert events_recorded(tariffs) == recorded


def test_a_changed_version_is_redefined_and_the_next_rating_uses_it(
    platform: Platform,
) -> None:
    platform.tariffs.import_document(
        document(version("0.10"), version("0.50", code="GOLD"), SIMO10="STD"), "ops"
    )
    assert price_at(platform.tariffs, "SIMO10", MONDAY_EVENING) == Decimal("0.10")
    other_process = Platform(platform.settings)
    try:
        counts = other_process.tariffs.import_document(
            document(version("0.12"), version("0.50", code="GOLD")), "bob"
        )
    finally:
        other_process.close()

    assert counts["redefined"] == 1
    assert counts["unchanged"] == 1
    assert price_at(platform.tariffs, "SIMO10", MONDAY_EVENING) == Decimal("0.12")
    assert [(h["change"], h["tariff"], h["actor"]) for h in platform.tariffs.history()][
        -1
    ] == ("redefined", "STD", "bob")


def test_a_later_version_is_in_force_from_its_effective_from(
    platform: Platform,
) -> None:
    tariffs = platform.tariffs
    tariffs.import_document(document(version("0.10"), SIMO10="STD"), "ops")

    counts = tariffs.import_document(
        document(version("0.20", "2027-01-01T00:00:00Z")), "ops"
    )

    assert counts["defined"] == 1
    before = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    after = datetime(2027, 1, 1, 0, 0, tzinfo=UTC)
    assert price_at(tariffs, "SIMO10", before) == Decimal("0.10")
    assert price_at(tariffs, "SIMO10", after) == Decimal("0.20")
    listed = [(row["code"], row["effective_from"]) for row in tariffs.list_versions()]
    assert listed == [("STD", None), ("STD", "2027-01-01T00:00:00Z")]


def test_a_document_with_problems_is_refused_whole_and_records_nothing(
    platform: Platform,
) -> None:
    tariffs = platform.tariffs
    bad = version("0.10")
    bad["rates"].append({**version("0.10")["rates"][0], "time_band": "PEAK"})
    bad["rates"][0]["slabs"][0]["per"] = 0
    bad["discounts"] = [{"usage_class": "VOICE_NAT", "percentage": 10.5}]
    other = version("0.10", code="GOLD")
    other["currency"] = "pounds"

    with pytest.raises(TariffsRejected) as refused:
        tariffs.import_document(document(bad, other, SIMO10="NOPE"), "ops")

    paths = [problem.path for problem in refused.value.problems]
    assert {
        "tariffs[0].rates[0].slabs[0].per",
        "tariffs[0].discounts[0].percentage",
        "tariffs[0].rates[1].time_band",
        "tariffs[1].currency",
        "rate_plans.SIMO10",
    } <= set(paths)
    assert events_recorded(tariffs) == 0
    assert tariffs.export()["tariffs"] == []


def test_the_export_imports_back_with_no_new_events(platform: Platform) -> None:
    tariffs = platform.tariffs
    imported = document(
        version("0.10"),
        version("0.20", "2027-01-01T01:00:00+01:00"),
        version("0.50", code="GOLD"),
        SIMO10="STD",
        BIZ10="GOLD",
    )
    tariffs.import_document(imported, "ops")

    exported = tariffs.export()
    again = tariffs.import_document(exported, "ops")

    book, _ = read_tariff_book(imported)
    assert exported == write_tariffs(book.tariffs, book.rate_plans)
    assert again["events"] == 0


def test_a_rate_plan_is_reassigned_to_another_tariff(platform: Platform) -> None:
    tariffs = platform.tariffs
    tariffs.import_document(
        document(version("0.10"), version("0.50", code="GOLD"), SIMO10="STD"), "ops"
    )

    counts = tariffs.import_document(
        document(version("0.50", code="GOLD"), SIMO10="GOLD"), "ops"
    )

    assert counts["assigned"] == 1
    assert price_at(tariffs, "SIMO10", MONDAY_EVENING) == Decimal("0.50")
    assert tariffs.book().in_force("STD", MONDAY_EVENING).code == "STD"  # kept


def test_a_new_process_reads_back_the_same_book(platform: Platform) -> None:
    platform.tariffs.import_document(demo_tariffs(), "ops")

    reopened = Platform(platform.settings)
    try:
        assert reopened.tariffs.book() == platform.tariffs.book()
        assert reopened.tariffs.export() == platform.tariffs.export()
    finally:
        reopened.close()


def test_a_version_is_compiled_once_until_it_is_redefined(platform: Platform) -> None:
    tariffs = platform.tariffs
    tariffs.import_document(document(version("0.10")), "ops")
    first = tariffs.compiled(tariffs.book().in_force("STD", MONDAY_EVENING))
    tariffs.import_document(document(version("0.10"), version("1", code="X")), "ops")

    same = tariffs.compiled(tariffs.book().in_force("STD", MONDAY_EVENING))
    tariffs.import_document(document(version("0.11")), "ops")
    changed = tariffs.compiled(tariffs.book().in_force("STD", MONDAY_EVENING))

    assert same is first
    assert changed is not first
    assert changed.tariff.rates[0].slabs[0].price == Decimal("0.11")


def test_an_empty_service_has_an_empty_book() -> None:
    tariffs = TariffService(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})

    assert tariffs.book().tariffs == ()
    assert tariffs.export() == {"version": 1, "tariffs": []}
    assert tariffs.list_versions() == []


# --- stored events keep their topics -----------------------------------------


def stored_event_classes() -> list[type]:
    return [
        value
        for name, value in vars(TariffCatalogue).items()
        if isinstance(value, type)
        and issubclass(value, CanMutateAggregate)
        and name != "Event"
    ]


def test_every_stored_tariff_event_declares_a_stable_topic_and_version() -> None:
    classes = stored_event_classes()

    assert vars(TariffCatalogue)["TOPIC"] == "monetise.tariffs:TariffCatalogue"
    assert {cls.__qualname__ for cls in classes} == {
        "TariffCatalogue.Created",
        "TariffCatalogue.TariffVersionDefined",
        "TariffCatalogue.TariffVersionRedefined",
        "TariffCatalogue.RatePlanAssigned",
    }
    for cls in classes:
        owner = declared_by(cls, "TOPIC")
        assert vars(owner)["TOPIC"] == f"monetise.tariffs:{cls.__qualname__}"
        assert type(vars(declared_by(cls, "class_version"))["class_version"]) is int
