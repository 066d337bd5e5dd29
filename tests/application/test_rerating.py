"""A tariff fixed afterwards and a rerate over a period change exactly the
records of that class in that period, each with an auditable delta."""

from __future__ import annotations

import copy
import os
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from application.rerating import PRICING_NICENESS, Rerater, pricing_pool
from domain.rating import TariffBook
from domain.repricing import Repricing, TariffOf
from tests.application.test_offline_rating import TARIFFS, unrated, usage_of
from tests.application.test_usage_loading import drop, load, usage_file
from tests.application.workflow_fixtures import Line, Operator


def fixed_tariffs() -> dict[str, Any]:
    """The national voice rate was meant to be 0.20 a minute, not 0.10."""
    document = copy.deepcopy(TARIFFS)
    for slab in document["tariffs"][0]["rates"][0]["slabs"]:
        slab["price"] = "0.20"
    return document


def loaded(operator: Operator) -> tuple[Line, Line]:
    operator.platform.tariffs.import_document(TARIFFS, "pricing-team")
    postpaid = operator.new_line()
    prepaid = operator.new_line(payment_type="prepaid")
    operator.settle()
    drop(
        operator,
        "U-R.json",
        usage_file(
            "U-R",
            [
                unrated("V-20", postpaid.msisdn, start_time="2026-11-20T12:00:00Z"),
                unrated("V-21", postpaid.msisdn, start_time="2026-11-21T12:00:00Z"),
                unrated("P-21", prepaid.msisdn, start_time="2026-11-21T13:00:00Z"),
                unrated(
                    "S-21",
                    postpaid.msisdn,
                    usage_class="SMS_NAT",
                    duration_seconds=None,
                    units=1,
                    start_time="2026-11-21T12:00:00Z",
                ),
            ],
            kind="unrated",
        ),
        "unrated",
    )
    load(operator, "unrated")
    return postpaid, prepaid


def charges(operator: Operator, *lines: Line) -> dict[str, str]:
    found = {}
    for line in lines:
        for payment in ("postpaid", "prepaid"):
            for row in usage_of(operator, line, payment):
                found[row["id"]] = row["charge"]
    return found


NOV_21 = datetime(2026, 11, 21, tzinfo=UTC)
NOV_22 = datetime(2026, 11, 22, tzinfo=UTC)


def test_a_rerate_changes_exactly_the_records_of_the_class_in_the_period(
    operator: Operator,
) -> None:
    postpaid, prepaid = loaded(operator)
    # 0.05 + 60 s at 0.10/60 + 65 s at 0.10/60 = 0.2583 (half up)
    assert charges(operator, postpaid, prepaid) == {
        "V-20": "0.2583",
        "V-21": "0.2583",
        "P-21": "0.2583",
        "S-21": "0.0400",
    }
    operator.platform.tariffs.import_document(fixed_tariffs(), "pricing-team")

    result = operator.platform.rerater.rerate("VOICE_NAT", NOV_21, NOV_22, "ops-1")
    operator.platform.usage_views.catch_up()

    # 0.05 + 125 s at 0.20/60 = 0.05 + 0.416666… = 0.4667: delta 0.2084
    assert charges(operator, postpaid, prepaid) == {
        "V-20": "0.2583",
        "V-21": "0.4667",
        "P-21": "0.4667",
        "S-21": "0.0400",
    }
    assert (result["selected"], result["changed"], result["refused"]) == (2, 2, 0)
    run = operator.platform.usage_views.batches.rerate_run(result["id"], 10, 0)
    assert run is not None
    assert (run["usage_class"], run["status"], run["requested_by"]) == (
        "VOICE_NAT",
        "completed",
        "ops-1",
    )
    assert [
        (c["record_id"], c["old_charge"], c["new_charge"], c["delta"])
        for c in run["corrections"]
    ] == [
        ("P-21", "0.2583", "0.4667", "0.2084"),
        ("V-21", "0.2583", "0.4667", "0.2084"),
    ]
    balance = operator.care.subscription(prepaid.subscription_id).prepaid_balance
    assert balance == Decimal("-0.4667")  # -0.2583 at load, -0.2084 now
    (row,) = [r for r in usage_of(operator, postpaid, "postpaid") if r["id"] == "V-21"]
    assert row["breakdown"]["charge"] == "0.4667"


def test_a_second_identical_rerate_changes_nothing(operator: Operator) -> None:
    postpaid, prepaid = loaded(operator)
    operator.platform.tariffs.import_document(fixed_tariffs(), "pricing-team")
    operator.platform.rerater.rerate("VOICE_NAT", None, None, "ops-1")
    operator.platform.usage_views.catch_up()
    before = charges(operator, postpaid, prepaid)

    again = operator.platform.rerater.rerate("VOICE_NAT", None, None, "ops-1")
    operator.platform.usage_views.catch_up()

    assert (again["selected"], again["changed"], again["unchanged"]) == (3, 0, 3)
    assert charges(operator, postpaid, prepaid) == before
    balance = operator.care.subscription(prepaid.subscription_id).prepaid_balance
    assert balance == Decimal("-0.4667")
    runs = operator.platform.usage_views.batches.rerate_runs(10, 0)
    assert sorted(r["changed"] for r in runs) == [0, 3]


def test_a_rerate_of_many_pages_priced_by_several_processes_corrects_each_once(
    operator: Operator,
) -> None:
    postpaid, prepaid = loaded(operator)
    # a page a record: three pages, the second and third priced by the pool
    rerater = Rerater(operator.platform.usage, processes=2, page=1)
    broken = fixed_tariffs()
    broken["tariffs"][0]["rates"][0]["usage_class"] = "VOICE_INT"
    operator.platform.tariffs.import_document(broken, "pricing-team")
    refused = rerater.rerate("VOICE_NAT", None, None, "ops-1")
    operator.platform.tariffs.import_document(fixed_tariffs(), "pricing-team")
    pages: list[int] = []

    voice = rerater.rerate("VOICE_NAT", None, None, "ops-1", pages.append)
    operator.platform.usage_views.catch_up()

    assert (refused["selected"], refused["changed"], refused["refused"]) == (3, 0, 3)
    assert pages == [1, 2, 3]
    assert (voice["selected"], voice["changed"], voice["refused"]) == (3, 3, 0)
    assert charges(operator, postpaid, prepaid) == {
        "V-20": "0.4667",
        "V-21": "0.4667",
        "P-21": "0.4667",
        "S-21": "0.0400",
    }
    run = operator.platform.usage_views.batches.rerate_run(voice["id"], 10, 0)
    assert run is not None
    assert [(c["record_id"], c["delta"]) for c in run["corrections"]] == [
        ("P-21", "0.2084"),
        ("V-20", "0.2084"),
        ("V-21", "0.2084"),
    ]
    balance = operator.care.subscription(prepaid.subscription_id).prepaid_balance
    assert balance == Decimal("-0.4667")


def test_a_rerates_pricing_processes_give_way_to_the_other_processes() -> None:
    book = TariffBook()
    repricing = Repricing("VOICE_NAT", {}, TariffOf(book), None, None)

    with pricing_pool(1, repricing, book) as pool:
        niceness = pool.submit(os.nice, 0).result()

    assert niceness == min(19, os.nice(0) + PRICING_NICENESS)
    assert niceness > os.nice(0) or niceness == 19


class Died(Exception):
    """The rerating process died (here: once its pages were saved)."""


def test_a_rerate_that_died_is_closed_and_its_prepaid_deltas_charged_once(
    operator: Operator,
) -> None:
    postpaid, prepaid = loaded(operator)
    operator.platform.tariffs.import_document(fixed_tariffs(), "pricing-team")
    rerater = Rerater(operator.platform.usage, processes=1, page=1)

    def dies_after_the_last_page(done: int) -> None:
        if done == 3:
            raise Died

    with pytest.raises(Died):
        rerater.rerate("VOICE_NAT", None, None, "ops-1", dies_after_the_last_page)
    operator.platform.usage_views.catch_up()
    (died,) = operator.platform.usage_views.batches.rerate_runs(10, 0)
    assert (died["status"], died["changed"]) == ("running", 3)
    care = operator.care
    assert care.subscription(prepaid.subscription_id).prepaid_balance == Decimal(
        "-0.2583"  # the load's charge only: the rerate's delta not yet taken
    )

    again = rerater.rerate("VOICE_NAT", None, None, "ops-2")
    assert rerater.close_interrupted() == []  # closed once, by the rerate
    operator.platform.usage_views.catch_up()

    closed = operator.platform.usage_views.batches.rerate_run(died["id"], 10, 0)
    assert closed is not None and closed["status"] == "interrupted"
    assert len(closed["corrections"]) == 3
    assert (again["selected"], again["changed"]) == (3, 0)  # nothing left to do
    assert care.subscription(prepaid.subscription_id).prepaid_balance == Decimal(
        "-0.4667"
    )
    assert charges(operator, postpaid, prepaid)["P-21"] == "0.4667"


def test_usage_the_fixed_tariff_cannot_price_is_listed_not_lost(
    operator: Operator,
) -> None:
    postpaid, prepaid = loaded(operator)
    broken = fixed_tariffs()
    broken["tariffs"][0]["rates"][0]["usage_class"] = "VOICE_INT"
    operator.platform.tariffs.import_document(broken, "pricing-team")

    result = operator.platform.rerater.rerate("VOICE_NAT", None, None, "ops-1")
    operator.platform.usage_views.catch_up()

    assert (result["selected"], result["changed"], result["refused"]) == (3, 0, 3)
    run = operator.platform.usage_views.batches.rerate_run(result["id"], 10, 0)
    assert run is not None
    assert {code for _, code, _ in run["refused"]} == {"no_rate"}
    assert charges(operator, postpaid, prepaid)["V-21"] == "0.2583"  # kept
