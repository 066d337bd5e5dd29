"""Allowances in offline rating: the free units of a bill period are taken in
time order by the usage priced in it, across files, and renew with the
account's next bill period."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

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


def test_a_refused_record_takes_nothing_then_free_units_in_time_order_once_reprocessed(
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

    # The earlier call takes its 200 s first; the later one keeps 100 s free
    # and pays for 100 s x 0.01 = 1.00
    assert lines(operator, line) == {
        "C-1-1": ("0.0000", [{"code": "MIN5", "units": 200, "left": 100}]),
        "C-1-2": ("1.0000", [{"code": "MIN5", "units": 100, "left": 0}]),
    }


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


def allowance_order_runs(operator: Operator) -> list[dict[str, Any]]:
    views = operator.platform.usage_views.batches
    return [
        views.rerate_run(run["id"], 100, 0)
        for run in views.rerate_runs(100, 0)
        if run["reason"] == "allowance_order"
    ]


def batch_id_of(operator: Operator, name: str) -> str:
    batches = operator.platform.usage_views.batches.batches(None, None, 100, 0)
    (found,) = [b["id"] for b in batches if b["file_name"] == f"{name}.json"]
    return str(found)


def test_usage_arriving_late_takes_its_free_units_first_and_later_usage_is_corrected(
    operator: Operator,
) -> None:
    operator.platform.tariffs.import_document(TARIFFS, "pricing-team")
    line = operator.new_line()
    operator.settle()
    priced(
        operator,
        "F-1",
        [
            call("F-1-1", line, "2026-11-21T10:05:00Z", 200),
            call("F-1-2", line, "2026-11-21T10:30:00Z", 100),
        ],
    )
    # F-1-1 took 200 s, F-1-2 the last 100 s.

    # The charging system sends an earlier call in a later file.
    priced(operator, "F-2", [call("F-2-1", line, "2026-11-21T10:00:00Z", 250)])

    assert lines(operator, line) == {
        # first in time: 250 s of the 300 free
        "F-2-1": ("0.0000", [{"code": "MIN5", "units": 250, "left": 50}]),
        # 50 s left, then 150 s x 0.01 = 1.50 (was free)
        "F-1-1": ("1.5000", [{"code": "MIN5", "units": 50, "left": 0}]),
        # nothing left: 100 s x 0.01 = 1.00 (was free)
        "F-1-2": ("1.0000", []),
    }
    (run,) = allowance_order_runs(operator)
    assert run["status"] == "completed"
    assert run["batch_id"] == batch_id_of(operator, "F-2")
    assert run["requested_by"] == "offline-rating-job"
    assert {
        c["record_id"]: (c["old_charge"], c["new_charge"], c["delta"])
        for c in run["corrections"]
    } == {
        "F-1-1": ("0.0000", "1.5000", "1.5000"),
        "F-1-2": ("0.0000", "1.0000", "1.0000"),
        # loaded with nothing left: 250 s x 0.01 = 2.50
        "F-2-1": ("2.5000", "0.0000", "-2.5000"),
    }
    # The allowance is used up: a later call pays from its first second, and
    # loading it changes nothing before it.
    priced(operator, "F-3", [call("F-3-1", line, "2026-11-21T11:00:00Z", 60)])
    assert lines(operator, line)["F-3-1"] == ("0.6000", [])
    assert len(allowance_order_runs(operator)) == 1


def test_usage_that_took_no_free_units_takes_none_when_earlier_usage_arrives(
    operator: Operator,
) -> None:
    operator.platform.tariffs.import_document(TARIFFS, "pricing-team")
    line = operator.new_line()
    operator.settle()
    priced(
        operator,
        "G-1",
        [
            call("G-1-1", line, "2026-11-21T10:05:00Z", 300),
            call("G-1-2", line, "2026-11-21T10:30:00Z", 100),
        ],
    )

    priced(operator, "G-2", [call("G-2-1", line, "2026-11-21T10:00:00Z", 100)])

    assert lines(operator, line) == {
        "G-2-1": ("0.0000", [{"code": "MIN5", "units": 100, "left": 200}]),
        "G-1-1": ("1.0000", [{"code": "MIN5", "units": 200, "left": 0}]),
        "G-1-2": ("1.0000", []),  # as before: charged, not corrected
    }
    (run,) = allowance_order_runs(operator)
    assert sorted(c["record_id"] for c in run["corrections"]) == ["G-1-1", "G-2-1"]
    # The ledger follows: nothing is left for later usage of the period.
    priced(operator, "G-3", [call("G-3-1", line, "2026-11-22T09:00:00Z", 10)])
    assert lines(operator, line)["G-3-1"] == ("0.1000", [])


def test_free_units_follow_time_order_across_the_chunks_of_one_file(
    operator: Operator,
) -> None:
    operator.platform.tariffs.import_document(TARIFFS, "pricing-team")
    operator.platform.usage.chunk_records = 1  # each record a chunk of its own
    line = operator.new_line()
    operator.settle()

    priced(
        operator,
        "H-1",
        [
            call("H-1-late", line, "2026-11-21T10:05:00Z", 300),
            call("H-1-early", line, "2026-11-21T10:00:00Z", 200),
        ],
    )

    # The same as in one chunk: the earlier call first.
    assert lines(operator, line) == {
        "H-1-early": ("0.0000", [{"code": "MIN5", "units": 200, "left": 100}]),
        "H-1-late": ("2.0000", [{"code": "MIN5", "units": 100, "left": 0}]),
    }
    (run,) = allowance_order_runs(operator)
    assert run["batch_id"] == batch_id_of(operator, "H-1")


def test_late_prepaid_usage_moves_the_charge_and_the_balance_takes_it_once(
    operator: Operator,
) -> None:
    operator.platform.tariffs.import_document(TARIFFS, "pricing-team")
    line = operator.new_line(payment_type="prepaid")
    operator.settle()
    care = operator.care
    priced(operator, "P-1", [call("P-1-1", line, "2026-11-21T10:05:00Z", 300)])
    assert care.subscription(line.subscription_id).prepaid_balance == Decimal("0")

    priced(operator, "P-2", [call("P-2-1", line, "2026-11-21T10:00:00Z", 100)])

    charges = {row["id"]: row["charge"] for row in usage_of(operator, line, "prepaid")}
    # 100 s free for the early call; the later one now pays for 100 s.
    assert charges == {"P-2-1": "0.0000", "P-1-1": "1.0000"}
    # P-2-1 was loaded at 1.00 (nothing left), then corrected by -1.00, and
    # P-1-1 by +1.00: the balance is down 1.00 in all, not 2.00.
    assert care.subscription(line.subscription_id).prepaid_balance == Decimal("-1.0000")
    operator.platform.rerater.close_interrupted()  # nothing left running
    assert care.subscription(line.subscription_id).prepaid_balance == Decimal("-1.0000")


def test_a_load_that_died_before_giving_free_units_again_gives_them_when_resumed(
    operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    operator.platform.tariffs.import_document(TARIFFS, "pricing-team")
    line = operator.new_line()
    operator.settle()
    priced(operator, "K-1", [call("K-1-1", line, "2026-11-21T10:05:00Z", 300)])
    loader = operator.platform.usage
    reallocating = loader._reallocate

    def dies(*args: Any, **kwargs: Any) -> None:
        raise OSError("the machine went down")

    monkeypatch.setattr(loader, "_reallocate", dies)
    records = [call("K-2-1", line, "2026-11-21T10:00:00Z", 100)]
    drop(operator, "K-2.json", usage_file("K-2", records, kind="unrated"), "unrated")
    (handled,) = load(operator, "unrated")
    assert handled.outcome == "retry"
    monkeypatch.setattr(loader, "_reallocate", reallocating)

    # A restarted daemon resumes the batch: every chunk is staged already.
    (handled,) = load(operator, "unrated")

    assert handled.outcome == "archived"
    assert lines(operator, line) == {
        "K-2-1": ("0.0000", [{"code": "MIN5", "units": 100, "left": 200}]),
        "K-1-1": ("1.0000", [{"code": "MIN5", "units": 200, "left": 0}]),
    }
    (run,) = allowance_order_runs(operator)
    assert run["batch_id"] == batch_id_of(operator, "K-2")
