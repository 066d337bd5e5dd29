"""The detailed bill: a subscription's usage of one bill period, line by line,
with totals by usage class and the total, and the account's summary across
its subscriptions; computed from the usage and customer views."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from domain.bill_periods import Period, period_of, periods_for
from domain.rerating import RerateRun
from projections.bills import (
    Bills,
    InvalidPeriod,
    UnknownAccount,
    UnknownSubscription,
    bill_line,
)
from tests.application.test_offline_rating import TARIFFS, unrated
from tests.application.test_rerating import fixed_tariffs
from tests.application.test_usage_loading import drop, load, record, usage_file
from tests.application.workflow_fixtures import Line, Operator

# The operator's clock stands at 2026-11-23 09:00 UTC.
_numbers = itertools.count(447701000100)


def bills(operator: Operator) -> Bills:
    found = Bills(
        operator.platform.usage_views,
        operator.platform.views,
        now=operator.platform.clock.now,
    )
    found.catch_up()
    return found


def line_on_day(operator: Operator, bill_cycle_day: int, **kind: str) -> Line:
    """A customer whose account has the given bill-cycle day, and one line."""
    customer = operator.care.register_customer(name="Grace Hopper", actor="agent-1")
    account = operator.care.open_account(
        customer_id=customer, bill_cycle_day=bill_cycle_day, actor="agent-1"
    )
    return another_line(operator, account, customer, **kind)


def another_line(
    operator: Operator, account: UUID, customer: UUID, **kind: str
) -> Line:
    msisdn = str(next(_numbers))
    subscription = operator.care.create_subscription(
        account_id=account, msisdn=msisdn, status="active", actor="agent-1", **kind
    )
    return Line(customer, account, subscription, msisdn)


def call(record_id: str, line: Line, at: str, **fields: Any) -> dict[str, Any]:
    return record(record_id, msisdn=line.msisdn, start_time=at, **fields)


def sms(record_id: str, line: Line, at: str, units: int, charge: str) -> Any:
    money = {"amount": charge, "currency": "GBP"}
    return call(
        record_id,
        line,
        at,
        usage_class="SMS_NAT",
        duration_seconds=None,
        units=units,
        charge=money,
    )


def loaded(operator: Operator, file_id: str, records: list[dict[str, Any]]) -> None:
    drop(operator, f"{file_id}.json", usage_file(file_id, records))
    (handled,) = load(operator)
    assert handled.outcome == "archived"
    (batch,) = [
        b
        for b in operator.platform.usage_views.batches.batches(None, None, 50, 0)
        if b["file_id"] == file_id
    ]
    assert sum(batch["errors_by_class"].values()) == 0, batch


def classes(bill: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (
            row["usage_class"],
            row["records"],
            row["quantity"]["value"],
            row["quantity"]["unit"],
            row["charge"],
            row["discount"],
            row["net"],
        )
        for row in bill["totals_by_usage_class"]
    ]


def test_a_bill_itemises_the_period_and_totals_each_usage_class(
    operator: Operator,
) -> None:
    line = line_on_day(operator, 1)
    operator.settle()
    loaded(
        operator,
        "BILL-1",
        [
            call("OUT-BEFORE", line, "2026-10-31T23:59:59Z", charge=_gbp("9.0000")),
            call(
                "IN-START",
                line,
                "2026-11-01T00:00:00Z",
                called_number="441632960001",
                mcc="234",
                mnc="15",
                discount={"amount": "0.0500"},
            ),
            sms("IN-SMS", line, "2026-11-10T12:00:00Z", 2, "0.0800"),
            call(
                "IN-CALL",
                line,
                "2026-11-21T09:58:01Z",
                duration_seconds=60,
                charge=_gbp("0.1000"),
            ),
            call(
                "IN-DATA",
                line,
                "2026-11-30T23:59:59Z",
                usage_class="DATA_ROAM",
                duration_seconds=None,
                volume_bytes=1048576,
                mcc="208",
                mnc="01",
                charge=_gbp("1.5000"),
                discount={"amount": "0.5000"},
            ),
            call("OUT-AFTER", line, "2026-12-01T00:00:00Z", charge=_gbp("7.0000")),
        ],
    )

    bill = bills(operator).subscription_bill(line.subscription_id, "2026-11-01")

    assert bill["period"] == {
        "start": "2026-11-01T00:00:00.000000+00:00",
        "end": "2026-12-01T00:00:00.000000+00:00",
        "name": "2026-11-01",
    }
    assert (bill["msisdn"], bill["payment_type"], bill["currency"]) == (
        line.msisdn,
        "postpaid",
        "GBP",
    )
    assert bill["account_id"] == str(line.account_id)
    assert [
        (x["record_id"], x["description"], x["charge"], x["discount"], x["net"])
        for x in bill["lines"]
    ] == [
        ("IN-START", "441632960001", "0.2500", "0.0500", "0.2000"),
        ("IN-SMS", "SMS", "0.0800", "0", "0.0800"),
        ("IN-CALL", "call", "0.1000", "0", "0.1000"),
        ("IN-DATA", "data", "1.5000", "0.5000", "1.0000"),
    ]
    first, _, _, data = bill["lines"]
    assert first["time"] == "2026-11-01T00:00:00.000000+00:00"
    assert first["quantity"] == {"value": 125, "unit": "seconds"}
    assert (first["roaming"], first["payment_type"]) == (False, "postpaid")
    assert (first["allowance"], first["breakdown"], first["rated_by"]) == (
        None,
        None,
        "network",
    )
    assert data["quantity"] == {"value": 1048576, "unit": "bytes"}
    assert data["roaming"] is True
    # By hand: voice 125 s + 60 s, 0.2500 + 0.1000 less 0.0500; one SMS line
    # of 2 units; one data session.
    assert classes(bill) == [
        ("DATA_ROAM", 1, 1048576, "bytes", "1.5000", "0.5000", "1.0000"),
        ("SMS_NAT", 1, 2, "units", "0.0800", "0", "0.0800"),
        ("VOICE_NAT", 2, 185, "seconds", "0.3500", "0.0500", "0.3000"),
    ]
    assert bill["total"] == {
        "records": 4,
        "charge": "1.9300",
        "discount": "0.5500",
        "adjustments": "0",
        "net": "1.3800",
    }
    assert bill["adjustments"] == []
    # The records either side of the period belong to the periods either side.
    assert bills(operator).subscription_bill(line.subscription_id, "current") == bill
    before = bills(operator).subscription_bill(line.subscription_id, "2026-10-01")
    after = bills(operator).subscription_bill(line.subscription_id, "2026-12-01")
    assert [x["record_id"] for x in before["lines"]] == ["OUT-BEFORE"]
    assert [x["record_id"] for x in after["lines"]] == ["OUT-AFTER"]
    assert after["total"]["net"] == "7.0000"


def _gbp(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "GBP"}


def test_periods_of_an_account_billed_on_the_15th(operator: Operator) -> None:
    line = line_on_day(operator, 15)
    operator.settle()
    loaded(
        operator,
        "BILL-15",
        [
            call("A", line, "2026-11-14T23:59:59Z"),
            call("B", line, "2026-11-15T00:00:00Z"),
            call("C", line, "2026-12-14T23:59:59Z", charge=_gbp("0.5000")),
            call("D", line, "2026-12-15T00:00:00Z"),
        ],
    )
    found = bills(operator)

    bill = found.subscription_bill(line.subscription_id, "2026-11-15")

    assert bill["bill_cycle_day"] == 15
    assert bill["period"]["start"] == "2026-11-15T00:00:00.000000+00:00"
    assert bill["period"]["end"] == "2026-12-15T00:00:00.000000+00:00"
    assert [x["record_id"] for x in bill["lines"]] == ["B", "C"]
    assert bill["total"]["charge"] == "0.7500"
    assert found.subscription_bill(line.subscription_id) == bill  # current
    with pytest.raises(InvalidPeriod, match="day 15 of each month"):
        found.subscription_bill(line.subscription_id, "2026-11-01")
    summary = found.account_bills(line.account_id)
    assert summary["current"] == "2026-11-15"
    assert [(p["name"], p["end"][:10], p["records"]) for p in summary["periods"]] == [
        ("2026-12-15", "2027-01-15", 1),
        ("2026-11-15", "2026-12-15", 2),
        ("2026-10-15", "2026-11-15", 1),
    ]


def test_the_account_summary_adds_up_its_subscriptions(operator: Operator) -> None:
    phone = line_on_day(operator, 1)
    tablet = another_line(
        operator, phone.account_id, phone.customer_id, payment_type="prepaid"
    )
    idle = another_line(operator, phone.account_id, phone.customer_id)
    other = line_on_day(operator, 1)  # another account: not in the summary
    operator.settle()
    loaded(
        operator,
        "BILL-ACC",
        [
            call("P-1", phone, "2026-11-02T10:00:00Z", discount={"amount": "0.0500"}),
            sms("P-2", phone, "2026-11-03T10:00:00Z", 1, "0.0400"),
            call("T-1", tablet, "2026-11-04T10:00:00Z", charge=_gbp("1.0000")),
            call("T-2", tablet, "2026-10-04T10:00:00Z"),  # the period before
            call("O-1", other, "2026-11-04T10:00:00Z"),
        ],
    )
    found = bills(operator)

    summary = found.account_bills(phone.account_id, "2026-11-01")

    assert summary["period"]["name"] == "2026-11-01"
    assert [
        (s["subscription_id"], s["payment_type"], s["total"])
        for s in summary["subscriptions"]
    ] == [
        (
            str(phone.subscription_id),
            "postpaid",
            {
                "records": 2,
                "charge": "0.2900",
                "discount": "0.0500",
                "adjustments": "0",
                "net": "0.2400",
            },
        ),
        (
            str(tablet.subscription_id),
            "prepaid",
            {
                "records": 1,
                "charge": "1.0000",
                "discount": "0",
                "adjustments": "0",
                "net": "1.0000",
            },
        ),
        (
            str(idle.subscription_id),
            "postpaid",
            {
                "records": 0,
                "charge": "0",
                "discount": "0",
                "adjustments": "0",
                "net": "0",
            },
        ),
    ]
    assert summary["total"] == {
        "records": 3,
        "charge": "1.2900",
        "discount": "0.0500",
        "adjustments": "0",
        "net": "1.2400",
    }
    assert [
        (t["payment_type"], t["net"]) for t in summary["totals_by_payment_type"]
    ] == [
        ("postpaid", "0.2400"),
        ("prepaid", "1.0000"),
    ]
    assert classes(summary) == [
        ("SMS_NAT", 1, 1, "units", "0.0400", "0", "0.0400"),
        ("VOICE_NAT", 2, 250, "seconds", "1.2500", "0.0500", "1.2000"),
    ]
    assert summary["adjustments"] == []
    prepaid = found.subscription_bill(tablet.subscription_id, "2026-11-01")
    assert [(x["record_id"], x["payment_type"]) for x in prepaid["lines"]] == [
        ("T-1", "prepaid")
    ]
    periods = found.account_bills(phone.account_id)["periods"]
    assert [(p["name"], p["records"]) for p in periods] == [
        ("2026-11-01", 3),
        ("2026-10-01", 1),
    ]


def test_an_offline_rated_line_carries_its_breakdown(operator: Operator) -> None:
    operator.platform.tariffs.import_document(TARIFFS, "pricing-team")
    line = line_on_day(operator, 1)
    operator.settle()
    drop(
        operator,
        "U-BILL.json",
        usage_file(
            "U-BILL",
            [
                unrated("U-1", line.msisdn),
                unrated(
                    "U-2",
                    line.msisdn,
                    usage_class="SMS_NAT",
                    duration_seconds=None,
                    units=3,
                    called_number=None,
                    start_time="2026-11-22T08:00:00Z",
                ),
            ],
            kind="unrated",
        ),
        "unrated",
    )
    load(operator, "unrated")

    bill = bills(operator).subscription_bill(line.subscription_id, "current")

    voice, text = bill["lines"]
    # 0.05 connect + 0.10 first minute + 65 s x 0.10/60 = 0.2583 (half up)
    assert (voice["description"], voice["charge"], voice["net"]) == (
        "NAT",
        "0.2583",
        "0.2583",
    )
    assert voice["rated_by"] == "monetise"
    assert voice["breakdown"]["tariff"] == "FLAT"
    assert voice["breakdown"]["destination"] == "NAT"
    assert len(voice["breakdown"]["breakdown"]) == 2  # the two slabs
    assert voice["allowance"] is None  # no allowance in this tariff
    assert (text["description"], text["charge"]) == ("SMS", "0.1200")
    assert bill["total"]["charge"] == "0.3783"


def test_allowances_in_a_breakdown_show_on_the_line() -> None:
    row = {
        "record_id": "R-1",
        "subscription_id": "s",
        "usage_class": "VOICE_NAT",
        "start_time": "2026-11-21T09:58:01.000000+00:00",
        "duration_seconds": 125,
        "volume_bytes": None,
        "units": None,
        "direction": "MO",
        "called_number": "441632960001",
        "roaming": 0,
        "charge": "0.0000",
        "discount": None,
        "currency": "GBP",
        "breakdown": '{"destination": "NAT", "allowances": '
        '[{"code": "MIN100", "units": 125, "left": 5875}], "breakdown": []}',
    }

    line = bill_line(row, "postpaid")

    assert line["allowance"] == [{"code": "MIN100", "units": 125, "left": 5875}]
    assert (line["description"], line["net"], line["roaming"]) == (
        "NAT",
        "0.0000",
        False,
    )


def test_unknown_subscriptions_accounts_and_bad_periods_are_refused(
    operator: Operator,
) -> None:
    line = line_on_day(operator, 1)
    operator.settle()
    found = bills(operator)
    nobody = "00000000-0000-0000-0000-000000000000"

    with pytest.raises(UnknownSubscription):
        found.subscription_bill(nobody, "current")
    with pytest.raises(UnknownAccount):
        found.account_bills(nobody)
    for bad in ("2026-11", "2026-13-01", "2026-02-30", "last", "2026-11-02"):
        with pytest.raises(InvalidPeriod):
            found.subscription_bill(line.subscription_id, bad)
    empty = found.subscription_bill(line.subscription_id, "2026-11-01")
    assert (empty["lines"], empty["totals_by_usage_class"]) == ([], [])
    assert empty["total"] == {
        "records": 0,
        "charge": "0",
        "discount": "0",
        "adjustments": "0",
        "net": "0",
    }
    assert found.account_bills(line.account_id)["periods"] == []


def test_periods_for_a_span_follow_the_bill_cycle_day() -> None:
    assert [p.name for p in periods_for(15, date(2026, 10, 20), date(2027, 1, 15))] == [
        "2026-10-15",
        "2026-11-15",
        "2026-12-15",
    ]
    assert [p.name for p in periods_for(1, date(2026, 12, 1), date(2027, 1, 2))] == [
        "2026-12-01",
        "2027-01-01",
    ]
    assert periods_for(1, date(2026, 12, 1), date(2026, 12, 1)) == []
    moment = datetime(2026, 12, 14, 23, 59, 59, tzinfo=UTC)
    assert period_of(15, moment) == Period(date(2026, 11, 15), date(2026, 12, 15))
    assert period_of(28, date(2027, 1, 3)).name == "2026-12-28"
    with pytest.raises(ValueError, match="1-28"):
        period_of(29, date(2026, 1, 1))


# --- rerating corrections: changed lines and adjustments ---------------------
#
# By hand, for 125 s of VOICE_NAT (connect fee, a first whole minute, then
# per second), rounded half up to 4 places:
# - as loaded (0.10 a minute): 0.05 + 0.10 + 65 x 0.10/60 = 0.2583…  → 0.2583
# - fixed (0.20 a minute):     0.05 + 0.20 + 65 x 0.20/60 = 0.4666…  → 0.4667
# - fixed with 10 % off voice: discount 0.04667 → 0.0467, net 0.4200


def fixed(discount: bool = False) -> dict[str, Any]:
    document = fixed_tariffs()
    if discount:
        document["tariffs"][0]["discounts"] = [
            {"usage_class": "VOICE_NAT", "percentage": "10"}
        ]
    return document


@pytest.fixture
def corrections_on_the_clock(
    operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> Operator:
    """Rerate runs whose corrections are stamped with the operator's clock.

    A correction's time is its stored event's timestamp, which eventsourcing
    takes from the machine's clock; pinning it here makes the tests the same
    on any day."""
    monkeypatch.setattr(
        RerateRun.ChargesCorrected, "create_timestamp", staticmethod(operator.clock.now)
    )
    return operator


def voice_usage(operator: Operator, line: Line, *records: tuple[str, str]) -> None:
    """Unrated 125 s national calls (record id, start time), priced offline."""
    file_id = f"U-{records[0][0]}"
    drop(
        operator,
        f"{file_id}.json",
        usage_file(
            file_id,
            [unrated(r, line.msisdn, start_time=at) for r, at in records],
            kind="unrated",
        ),
        "unrated",
    )
    (handled,) = load(operator, "unrated")
    assert handled.outcome == "archived"


def rerate(operator: Operator, tariffs: dict[str, Any]) -> str:
    operator.platform.tariffs.import_document(tariffs, "pricing-team")
    run = operator.platform.rerater.rerate("VOICE_NAT", None, None, "ops-1")
    assert run["changed"] > 0
    return str(run["id"])


def amounts_of(bill: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (x["record_id"], x["charge"], x["discount"], x["net"], x["adjusted_in"])
        for x in bill["lines"]
    ]


def adjustment_lines(bill: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (a["record_id"], a["period"]["name"], a["old_net"], a["new_net"], a["delta"])
        for a in bill["adjustments"]
    ]


def test_a_correction_while_the_period_is_open_changes_the_line_only(
    corrections_on_the_clock: Operator,
) -> None:
    operator = corrections_on_the_clock
    operator.platform.tariffs.import_document(TARIFFS, "pricing-team")
    line = line_on_day(operator, 1)
    operator.settle()
    voice_usage(operator, line, ("NOV-1", "2026-11-20T12:00:00Z"))
    before = bills(operator).subscription_bill(line.subscription_id, "2026-11-01")
    assert amounts_of(before) == [("NOV-1", "0.2583", "0", "0.2583", None)]

    rerate(operator, fixed(discount=True))  # on 2026-11-23: November is open

    november = bills(operator).subscription_bill(line.subscription_id, "2026-11-01")
    assert amounts_of(november) == [("NOV-1", "0.4667", "0.0467", "0.4200", None)]
    assert november["lines"][0]["breakdown"]["charge"] == "0.4667"
    assert november["adjustments"] == []
    assert november["total"] == {
        "records": 1,
        "charge": "0.4667",
        "discount": "0.0467",
        "adjustments": "0",
        "net": "0.4200",
    }
    december = bills(operator).subscription_bill(line.subscription_id, "2026-12-01")
    assert (december["lines"], december["adjustments"]) == ([], [])


def test_a_correction_after_the_period_closed_is_an_adjustment_on_the_next_bill(
    corrections_on_the_clock: Operator,
) -> None:
    operator = corrections_on_the_clock
    operator.platform.tariffs.import_document(TARIFFS, "pricing-team")
    line = line_on_day(operator, 1)
    tablet = another_line(
        operator, line.account_id, line.customer_id, payment_type="prepaid"
    )
    operator.settle()
    voice_usage(
        operator,
        line,
        ("OCT-1", "2026-10-20T12:00:00Z"),  # its period closed on 2026-11-01
        ("NOV-1", "2026-11-20T12:00:00Z"),
    )
    voice_usage(operator, tablet, ("TAB-1", "2026-11-21T12:00:00Z"))
    october_before = bills(operator).subscription_bill(
        line.subscription_id, "2026-10-01"
    )

    run = rerate(operator, fixed(discount=True))  # on 2026-11-23

    found = bills(operator)
    october = found.subscription_bill(line.subscription_id, "2026-10-01")
    # As billed: the closed bill's amounts do not move.
    assert amounts_of(october) == [("OCT-1", "0.2583", "0", "0.2583", "2026-11-01")]
    assert october["total"] == october_before["total"]
    assert october["totals_by_usage_class"] == october_before["totals_by_usage_class"]
    assert october["lines"][0]["breakdown"] is None  # the view has the new one
    assert october["adjustments"] == []
    november = found.subscription_bill(line.subscription_id, "2026-11-01")
    assert amounts_of(november) == [("NOV-1", "0.4667", "0.0467", "0.4200", None)]
    # 0.4200 - 0.2583 = 0.1617
    assert adjustment_lines(november) == [
        ("OCT-1", "2026-10-01", "0.2583", "0.4200", "0.1617")
    ]
    (adjusted,) = november["adjustments"]
    assert (adjusted["run_id"], adjusted["usage_class"], adjusted["time"]) == (
        run,
        "VOICE_NAT",
        "2026-10-20T12:00:00.000000+00:00",
    )
    assert adjusted["corrected_at"] == "2026-11-23T09:00:00.000000+00:00"
    assert adjusted["payment_type"] == "postpaid"
    # 0.4667 - 0.0467 + 0.1617 = 0.5817
    assert november["total"] == {
        "records": 1,
        "charge": "0.4667",
        "discount": "0.0467",
        "adjustments": "0.1617",
        "net": "0.5817",
    }
    assert [
        (t["usage_class"], t["adjustments"], t["net"])
        for t in november["totals_by_usage_class"]
    ] == [("VOICE_NAT", "0.1617", "0.5817")]
    # The account: the postpaid line 0.5817, the tablet (corrected while
    # November was open) 0.4200, together 1.0017.
    summary = found.account_bills(line.account_id, "2026-11-01")
    assert [
        (s["payment_type"], s["total"]["adjustments"], s["total"]["net"])
        for s in summary["subscriptions"]
    ] == [("postpaid", "0.1617", "0.5817"), ("prepaid", "0", "0.4200")]
    assert summary["total"] == {
        "records": 2,
        "charge": "0.9334",
        "discount": "0.0934",
        "adjustments": "0.1617",
        "net": "1.0017",
    }
    assert adjustment_lines(summary) == adjustment_lines(november)
    assert summary["adjustments"][0]["subscription_id"] == str(line.subscription_id)
    assert [
        (t["payment_type"], t["adjustments"], t["net"])
        for t in summary["totals_by_payment_type"]
    ] == [("postpaid", "0.1617", "0.5817"), ("prepaid", "0", "0.4200")]
    periods = found.account_bills(line.account_id)["periods"]
    assert [(p["name"], p["records"], p["adjustments"]) for p in periods] == [
        ("2026-11-01", 2, 1),
        ("2026-10-01", 1, 0),
    ]


def test_two_late_reruns_give_two_adjustment_lines(
    corrections_on_the_clock: Operator,
) -> None:
    operator = corrections_on_the_clock
    operator.platform.tariffs.import_document(TARIFFS, "pricing-team")
    line = line_on_day(operator, 1)
    operator.settle()
    voice_usage(operator, line, ("OCT-1", "2026-10-20T12:00:00Z"))

    first = rerate(operator, fixed())  # 2026-11-23: the price
    operator.clock.advance(timedelta(days=1))
    second = rerate(operator, fixed(discount=True))  # 2026-11-24: the discount
    operator.clock.set(datetime(2026, 12, 1, tzinfo=UTC))  # December's first
    third = rerate(operator, TARIFFS)  # back to 0.10 a minute, no discount

    found = bills(operator)
    october = found.subscription_bill(line.subscription_id, "2026-10-01")
    assert amounts_of(october) == [("OCT-1", "0.2583", "0", "0.2583", "2026-11-01")]
    assert october["total"]["net"] == "0.2583"
    november = found.subscription_bill(line.subscription_id, "2026-11-01")
    # 0.4667 - 0.2583 = 0.2084; 0.4200 - 0.4667 = -0.0467; together 0.1617.
    assert adjustment_lines(november) == [
        ("OCT-1", "2026-10-01", "0.2583", "0.4667", "0.2084"),
        ("OCT-1", "2026-10-01", "0.4667", "0.4200", "-0.0467"),
    ]
    assert [a["run_id"] for a in november["adjustments"]] == [first, second]
    assert (november["total"]["adjustments"], november["total"]["net"]) == (
        "0.1617",
        "0.1617",
    )
    assert november["totals_by_usage_class"] == [
        {
            "usage_class": "VOICE_NAT",
            "records": 0,
            "charge": "0",
            "discount": "0",
            "adjustments": "0.1617",
            "net": "0.1617",
            "quantity": {"value": 0, "unit": "seconds"},
        }
    ]
    # A correction at midnight opening December belongs to December's bill.
    december = found.subscription_bill(line.subscription_id, "2026-12-01")
    assert adjustment_lines(december) == [
        ("OCT-1", "2026-10-01", "0.4200", "0.2583", "-0.1617")
    ]
    assert december["adjustments"][0]["run_id"] == third
    assert december["total"]["net"] == "-0.1617"
    periods = found.account_bills(line.account_id)["periods"]
    assert [(p["name"], p["records"], p["adjustments"]) for p in periods] == [
        ("2026-12-01", 0, 1),
        ("2026-11-01", 0, 2),
        ("2026-10-01", 1, 0),
    ]


def test_a_projection_rebuild_gives_the_same_bills(
    corrections_on_the_clock: Operator,
) -> None:
    operator = corrections_on_the_clock
    operator.platform.tariffs.import_document(TARIFFS, "pricing-team")
    line = line_on_day(operator, 1)
    operator.settle()
    voice_usage(
        operator,
        line,
        ("OCT-1", "2026-10-20T12:00:00Z"),
        ("NOV-1", "2026-11-20T12:00:00Z"),
    )
    rerate(operator, fixed())
    operator.clock.advance(timedelta(days=10))  # into December
    rerate(operator, fixed(discount=True))
    names = ("2026-10-01", "2026-11-01", "2026-12-01")

    def everything() -> list[Any]:
        found = bills(operator)
        return [
            *(found.subscription_bill(line.subscription_id, name) for name in names),
            *(found.account_bills(line.account_id, name) for name in names),
            found.account_bills(line.account_id)["periods"],
        ]

    before = everything()
    assert [len(bill["adjustments"]) for bill in before[:3]] == [0, 1, 2]
    operator.clock.advance(timedelta(days=90))  # rebuilt on another day

    assert operator.platform.usage_views.rebuild() > 0

    assert everything() == before
