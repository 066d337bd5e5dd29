"""Allowances in offline rating: the free units of a bill period are taken in
time order by the usage priced in it, across files, and renew with the
account's next bill period."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from tests.application.test_offline_rating import unrated, usage_of
from tests.application.test_usage_loading import drop, load, usage_file
from tests.application.workflow_fixtures import Line, Operator

# National voice at 0.60 a minute charged per second (0.01 a second), no
# connect fee; the first 300 seconds of each bill period are free (MIN5).
TARIFFS: dict[str, Any] = {
    "tariffs": [
        {
            "code": "BUNDLE",
            "currency": "GBP",
            "timezone": "UTC",
            "time_bands": [{"code": "ALL", "start": "00:00"}],
            "destinations": {"NAT": ["441"]},
            "rates": [
                {
                    "usage_class": "VOICE_NAT",
                    "destination": "NAT",
                    "time_band": "*",
                    "slabs": [{"from": 0, "price": "0.60", "per": 60, "increment": 1}],
                    "rounding": {"method": "half_up", "decimals": 4},
                }
            ],
            "allowances": [
                {"code": "MIN5", "units": 300, "usage_classes": ["VOICE_NAT"]}
            ],
        }
    ],
    "rate_plans": {"STD": "BUNDLE"},
}


def call(record_id: str, line: Line, start: str, seconds: int, **more: Any) -> Any:
    return unrated(
        record_id, line.msisdn, start_time=start, duration_seconds=seconds, **more
    )


def priced(operator: Operator, name: str, records: list[dict[str, Any]]) -> None:
    drop(operator, f"{name}.json", usage_file(name, records, kind="unrated"), "unrated")
    (handled,) = load(operator, "unrated")
    assert handled.outcome == "archived"


def lines(operator: Operator, line: Line) -> dict[str, tuple[str, Any]]:
    return {
        row["id"]: (row["charge"], row["breakdown"]["allowances"])
        for row in usage_of(operator, line, "postpaid")
    }


def line_on_cycle_day(operator: Operator, day: int) -> Line:
    care = operator.care
    customer = care.register_customer(
        name="Grace Hopper",
        email="grace@example.com",
        phone="447700900002",
        address="1 Compiler Lane, Arlington",
        actor="agent-1",
    )
    account = care.open_account(
        customer_id=customer, bill_cycle_day=day, actor="agent-1"
    )
    msisdn = "447700955501"
    subscription = care.create_subscription(
        account_id=account, msisdn=msisdn, payment_type="postpaid", actor="agent-1"
    )
    return Line(customer, account, subscription, msisdn)


def test_free_units_go_to_the_earliest_usage_and_run_out_in_the_middle_of_a_call(
    operator: Operator,
) -> None:
    operator.platform.tariffs.import_document(TARIFFS, "pricing-team")
    line = operator.new_line()
    operator.settle()

    # The file lists the later call first: allowances go in time order.
    priced(
        operator,
        "A-1",
        [
            call("A-1-late", line, "2026-11-21T10:05:00Z", 200),
            call("A-1-early", line, "2026-11-21T10:00:00Z", 200),
        ],
    )

    assert lines(operator, line) == {
        # 200 s of the 300 free
        "A-1-early": ("0.0000", [{"code": "MIN5", "units": 200, "left": 100}]),
        # the last 100 s free, then 100 s x 0.01 = 1.00
        "A-1-late": ("1.0000", [{"code": "MIN5", "units": 100, "left": 0}]),
    }


def test_allowances_carry_across_files_of_a_bill_period_and_renew_with_the_next(
    operator: Operator,
) -> None:
    operator.platform.tariffs.import_document(TARIFFS, "pricing-team")
    line = line_on_cycle_day(operator, 15)  # periods run from the 15th
    operator.settle()
    priced(operator, "B-1", [call("B-1-1", line, "2026-11-20T09:00:00Z", 250)])

    priced(
        operator,
        "B-2",
        [
            call("B-2-1", line, "2026-11-21T09:00:00Z", 100),
            call("B-2-2", line, "2026-12-14T23:59:00Z", 10),
            call("B-2-3", line, "2026-12-15T00:00:01Z", 100),
        ],
    )

    assert lines(operator, line) == {
        "B-1-1": ("0.0000", [{"code": "MIN5", "units": 250, "left": 50}]),
        # 50 s left from the first file, then 50 s x 0.01 = 0.50
        "B-2-1": ("0.5000", [{"code": "MIN5", "units": 50, "left": 0}]),
        # still the period of 15 November: nothing left, 10 s x 0.01 = 0.10
        "B-2-2": ("0.1000", []),
        # the period of 15 December starts with all 300 s
        "B-2-3": ("0.0000", [{"code": "MIN5", "units": 100, "left": 200}]),
    }


def test_a_refused_record_takes_nothing_and_takes_what_is_left_when_reprocessed(
    operator: Operator,
) -> None:
    operator.platform.tariffs.import_document(TARIFFS, "pricing-team")
    line = operator.new_line()
    operator.settle()
    priced(
        operator,
        "C-1",
        [
            # no destination for 999…: refused, a configuration error
            call("C-1-1", line, "2026-11-21T08:00:00Z", 200, called_number="999"),
            call("C-1-2", line, "2026-11-21T09:00:00Z", 200),
        ],
    )
    assert lines(operator, line) == {
        "C-1-2": ("0.0000", [{"code": "MIN5", "units": 200, "left": 100}]),
    }

    fixed = json.loads(json.dumps(TARIFFS))
    fixed["tariffs"][0]["destinations"]["ANY"] = ["9"]
    fixed["tariffs"][0]["rates"][0]["destination"] = "*"
    fixed["tariffs"][0]["effective_from"] = "2026-01-01T00:00:00Z"
    operator.platform.tariffs.import_document(fixed, "pricing-team")
    (batch,) = operator.platform.usage_views.batches.batches(None, None, 10, 0)
    operator.platform.usage.reprocess(UUID(batch["id"]), "agent-1")
    operator.platform.usage_views.catch_up()

    # Priced after the other, it takes the 100 s left: 100 s x 0.01 = 1.00
    assert lines(operator, line)["C-1-1"] == (
        "1.0000",
        [{"code": "MIN5", "units": 100, "left": 0}],
    )


def test_a_failed_file_gives_its_free_units_back(operator: Operator) -> None:
    operator.platform.tariffs.import_document(TARIFFS, "pricing-team")
    line = operator.new_line()
    operator.settle()
    records = [call("D-1-1", line, "2026-11-21T09:00:00Z", 300)]
    content = json.loads(usage_file("D-1", records, kind="unrated"))
    content["header"]["record_count"] = 5  # a wrong count fails the whole file
    drop(operator, "D-1.json", json.dumps(content), "unrated")
    (failed,) = load(operator, "unrated")
    assert failed.outcome == "quarantined"
    assert lines(operator, line) == {}

    priced(operator, "D-2", [call("D-2-1", line, "2026-11-21T10:00:00Z", 300)])

    assert lines(operator, line) == {
        "D-2-1": ("0.0000", [{"code": "MIN5", "units": 300, "left": 0}]),
    }


def test_a_rerate_keeps_the_free_units_each_record_took(operator: Operator) -> None:
    operator.platform.tariffs.import_document(TARIFFS, "pricing-team")
    line = operator.new_line()
    operator.settle()
    priced(
        operator,
        "E-1",
        [
            call("E-1-1", line, "2026-11-21T10:00:00Z", 200),
            call("E-1-2", line, "2026-11-21T10:05:00Z", 200),
        ],
    )
    cheaper = json.loads(json.dumps(TARIFFS))
    cheaper["tariffs"][0]["effective_from"] = "2026-01-01T00:00:00Z"
    cheaper["tariffs"][0]["rates"][0]["slabs"][0]["price"] = "0.30"
    operator.platform.tariffs.import_document(cheaper, "pricing-team")

    first = operator.platform.rerater.rerate("VOICE_NAT", None, None, "ops-1")
    again = operator.platform.rerater.rerate("VOICE_NAT", None, None, "ops-1")
    operator.platform.usage_views.catch_up()

    assert (first["changed"], again["changed"]) == (1, 0)
    assert lines(operator, line) == {
        # all 200 s free, as before: nothing to change
        "E-1-1": ("0.0000", [{"code": "MIN5", "units": 200, "left": 100}]),
        # the same 100 s free, then 100 s x 0.30/60 = 0.50 (was 1.00)
        "E-1-2": ("0.5000", [{"code": "MIN5", "units": 100, "left": 0}]),
    }
    # The allowance is still used up: a later call pays from its first second.
    priced(operator, "E-2", [call("E-2-1", line, "2026-11-22T10:00:00Z", 60)])
    assert lines(operator, line)["E-2-1"] == ("0.3000", [])  # 60 s x 0.005
