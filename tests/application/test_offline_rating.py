"""Unrated usage is priced by monetise against the tariff of each
subscription's rate plan and lands in the usage views with its breakdown."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from tests.application.test_usage_loading import drop, load, usage_file
from tests.application.workflow_fixtures import Line, Operator

# A tariff simple enough to check by hand: national voice at 0.10 a minute
# charged per second after a first whole minute, plus a 0.05 connect fee;
# SMS at 0.04 each.
TARIFFS: dict[str, Any] = {
    "tariffs": [
        {
            "code": "FLAT",
            "currency": "GBP",
            "timezone": "Europe/London",
            "time_bands": [{"code": "ALL", "start": "00:00"}],
            "destinations": {"NAT": ["441", "442"]},
            "rates": [
                {
                    "usage_class": "VOICE_NAT",
                    "destination": "NAT",
                    "time_band": "*",
                    "connect_fee": "0.05",
                    "slabs": [
                        {"from": 0, "price": "0.10", "per": 60, "increment": 60},
                        {"from": 60, "price": "0.10", "per": 60, "increment": 1},
                    ],
                    "rounding": {"method": "half_up", "decimals": 4},
                },
                {
                    "usage_class": "SMS_NAT",
                    "destination": "*",
                    "time_band": "*",
                    "slabs": [{"from": 0, "price": "0.04", "per": 1, "increment": 1}],
                    "rounding": {"method": "half_up", "decimals": 4},
                },
            ],
        }
    ],
    "rate_plans": {"STD": "FLAT"},
}


def unrated(record_id: str, msisdn: str, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "record_id": record_id,
        "msisdn": msisdn,
        "usage_class": "VOICE_NAT",
        "start_time": "2026-11-21T09:58:01Z",
        "duration_seconds": 125,
        "direction": "MO",
        "called_number": "441632960001",
    }
    record.update(fields)
    return {key: value for key, value in record.items() if value is not None}


def usage_of(operator: Operator, line: Line, payment: str) -> list[dict[str, Any]]:
    rows, _ = operator.platform.usage_views.batches.usage(
        payment, str(line.subscription_id), None, None, 100, 0
    )
    return rows


def test_an_unrated_file_is_priced_against_the_rate_plan_tariff(
    operator: Operator,
) -> None:
    operator.platform.tariffs.import_document(TARIFFS, "pricing-team")
    postpaid = operator.new_line()
    prepaid = operator.new_line(payment_type="prepaid")
    operator.settle()
    drop(
        operator,
        "U-1.json",
        usage_file(
            "U-1",
            [
                unrated("U-1-1", postpaid.msisdn),
                unrated(
                    "U-1-2",
                    prepaid.msisdn,
                    usage_class="SMS_NAT",
                    duration_seconds=None,
                    units=3,
                ),
            ],
            kind="unrated",
        ),
        "unrated",
    )

    (handled,) = load(operator, "unrated")

    assert handled.outcome == "archived"
    (call,) = usage_of(operator, postpaid, "postpaid")
    # 0.05 connect + first minute 60 s x 0.10/60 = 0.10 + next 65 s x 0.10/60
    # = 0.108333… → 0.258333… → half_up 4 places: 0.2583
    assert (call["charge"], call["currency"]) == ("0.2583", "GBP")
    assert call["breakdown"]["charge"] == "0.2583"
    assert len(call["breakdown"]["breakdown"]) == 2  # the two slabs
    (sms,) = usage_of(operator, prepaid, "prepaid")
    assert sms["charge"] == "0.1200"  # 3 x 0.04
    balance = operator.care.subscription(prepaid.subscription_id).prepaid_balance
    assert balance == Decimal("-0.1200")
    (batch,) = operator.platform.usage_views.batches.batches(None, None, 10, 0)
    assert (batch["kind"], batch["status"]) == ("unrated", "completed")


def test_usage_without_a_tariff_is_refused_and_priced_once_the_tariff_exists(
    operator: Operator,
) -> None:
    line = operator.new_line()
    operator.settle()
    drop(
        operator,
        "U-2.json",
        usage_file("U-2", [unrated("U-2-1", line.msisdn)], kind="unrated"),
        "unrated",
    )
    load(operator, "unrated")
    (batch,) = operator.platform.usage_views.batches.batches(None, None, 10, 0)
    errors = operator.platform.usage_views.batches.errors(batch["id"], None, 10, 0)
    assert [(e["error_class"], e["code"]) for e in errors] == [
        ("configuration", "no_tariff")
    ]
    assert usage_of(operator, line, "postpaid") == []

    operator.platform.tariffs.import_document(TARIFFS, "pricing-team")
    operator.platform.usage.reprocess(UUID(batch["id"]), "agent-1")
    operator.platform.usage_views.catch_up()

    assert [row["charge"] for row in usage_of(operator, line, "postpaid")] == ["0.2583"]
    assert operator.platform.usage_views.batches.errors(batch["id"], None, 10, 0) == []
