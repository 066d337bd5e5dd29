"""The rated-usage job's decisions, without storage."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from domain.usage_batch import BatchNotReprocessable, UsageBatch, batch_id_for
from domain.usage_loading import (
    Holder,
    HomeNetwork,
    RatedUsageRules,
    holder_at,
    plmn_of_imsi,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 6, 1, tzinfo=UTC)


def holder(
    name: str, released: datetime | None = None, payment: str = "postpaid"
) -> Holder:
    return Holder(name, f"acct-{name}", payment, "GBP", released)


def test_a_number_belongs_to_each_holder_until_its_release() -> None:
    holders = [holder("first", released=T1), holder("second")]

    assert holder_at(holders, T0) == holders[0]
    assert holder_at(holders, T1) == holders[1]  # released at T1: no longer its
    assert holder_at([holder("gone", released=T1)], T1) is None


@pytest.mark.parametrize(
    ("imsi", "plmn"),
    [
        ("234150000000001", ("234", "15")),
        ("310260000000001", ("310", "260")),
        ("208010000000001", ("208", "01")),
    ],
)
def test_the_network_of_an_imsi_is_its_mcc_and_two_or_three_digit_mnc(
    imsi: str, plmn: tuple[str, str]
) -> None:
    assert plmn_of_imsi(imsi) == plmn


def rules(loaded: Collection[str] = ()) -> RatedUsageRules:
    return RatedUsageRules(
        {"VOICE_NAT"}, HomeNetwork("234", "15"), lambda ids: set(ids) & set(loaded)
    )


def voice(record_id: str, **fields: object) -> dict[str, object]:
    return {
        "record_id": record_id,
        "msisdn": "447700900123",
        "usage_class": "VOICE_NAT",
        "start_time": "2026-11-21T09:58:01Z",
        "duration_seconds": 60,
        "direction": "MO",
        "charge": {"amount": "0.10", "currency": "GBP"},
        **fields,
    }


HOLDERS = {"msisdn:447700900123": [holder("sub")]}


def test_a_record_loaded_by_another_batch_is_a_duplicate() -> None:
    outcome = rules(loaded={"R1"}).decide("rated", [(0, voice("R1"))], HOLDERS)

    assert outcome.loaded == []
    assert outcome.rejected == [
        [
            0,
            "R1",
            "duplicate",
            "duplicate_record",
            "record R1 is already loaded",
            "/records/0/record_id",
        ]
    ]


def test_roaming_is_flagged_only_outside_the_home_network() -> None:
    outcome = rules().decide(
        "rated",
        [
            (0, voice("H", mcc="234", mnc="15")),
            (1, voice("R", mcc="208", mnc="01")),
            (2, voice("U")),
        ],
        HOLDERS,
    )

    assert [row[16] for row in outcome.loaded] == [False, True, None]


def test_a_charge_in_another_currency_than_the_subscription_is_refused() -> None:
    record = voice("C", charge={"amount": "0.10", "currency": "EUR"})

    outcome = rules().decide("rated", [(4, record)], HOLDERS)

    assert outcome.rejected[0][2:4] == ["configuration", "currency_mismatch"]
    assert outcome.rejected[0][5] == "/records/4/charge/currency"


class FullRules(RatedUsageRules):
    quick_check = False  # every record through validate_record and _load
    quick_lane = False


def test_the_quick_lane_decides_every_record_as_the_full_checks_do() -> None:
    imsi = "234150000000001"
    holders = {
        **HOLDERS,
        "imsi:" + imsi: [holder("by-imsi", payment="prepaid")],
        "msisdn:447700900555": [holder("old", released=T1), holder("new")],
        "msisdn:447700900666": [holder("gone", released=T0)],
    }
    chunk: list[tuple[int, object]] = [
        (0, voice("A", mcc="234", mnc="15", called_number="441632960000")),
        (1, voice("B", start_time="2026-11-21T10:58:01.25+01:00")),
        (2, voice("C", usage_class="DATA_ROAM")),
        (3, voice("D", charge={"amount": "0.10", "currency": "EUR"})),
        (4, voice("E", msisdn="447700900999")),
        (5, voice("F", msisdn="447700900555")),
        (6, voice("G", msisdn="447700900666")),
        (7, {**voice("H", imsi=imsi), "msisdn": None}),
        (
            8,
            {k: v for k, v in voice("I", imsi=imsi, mnc="20").items() if k != "msisdn"},
        ),
        (9, voice("J", msisdn="447700900999", imsi=imsi)),
        (10, voice("A")),
        (
            11,
            voice(
                "L", discount={"amount": "0.0100"}, start_time="2026-02-30T00:00:00Z"
            ),
        ),
        (12, voice("M", discount={"amount": "0.0100"}, units=3)),
        (13, voice("R1")),
        (14, voice("N", duration_seconds=60.0)),
    ]

    quick = rules(loaded={"R1"})
    full = FullRules({"VOICE_NAT"}, HomeNetwork("234", "15"), lambda ids: ids & {"R1"})
    first = quick.decide("rated", chunk, holders)

    assert first == full.decide("rated", chunk, holders)
    assert [row[1] for row in first.loaded] == ["A", "B", "F", "I", "J", "M", "N"]
    again = [(15 + index, raw) for index, raw in chunk]  # the same ids again
    assert quick.decide("rated", again, holders) == full.decide("rated", again, holders)


def test_a_batch_counts_outcomes_and_knows_what_reprocessing_would_rerun() -> None:
    batch = UsageBatch(
        file_name="f.json",
        sha256="AB" * 32,
        size=10,
        kind="rated",
        directory="rated",
        key_id=None,
        received_by="test",
    )
    assert batch.id == batch_id_for("ab" * 32)
    chunk = batch.stage(["{}", "{}", "{}"])
    prepaid_row = [
        1,
        "P",
        "sub",
        "acct",
        "prepaid",
        None,
        None,
        "VOICE_NAT",
        "t",
        60,
        None,
        None,
        "MO",
        None,
        None,
        None,
        None,
        "0.30",
        "0.10",
        "GBP",
    ]
    batch.record_outcomes(
        chunk,
        [],
        [prepaid_row],
        [
            [0, "X", "configuration", "unknown_msisdn", "m", "/records/0/msisdn"],
            [2, "Y", "schema", "missing_field", "m", "/records/2"],
        ],
    )
    with pytest.raises(BatchNotReprocessable):
        batch.start_reprocessing()  # not completed yet
    batch.complete("F", "OCS1", T0, 3)

    assert batch.counts() == {
        "records": 3,
        "loaded_postpaid": 0,
        "loaded_prepaid": 1,
        "rejected_schema": 1,
        "rejected_configuration": 1,
        "rejected_duplicate": 0,
    }
    assert batch.prepaid_debits() == {"sub": (Decimal("0.20"), 1)}
    assert batch.start_reprocessing() == 1
    assert batch.awaiting_fix == {0: [0]}


def test_a_subscription_snapshot_from_before_prepaid_charging_still_loads() -> None:
    from uuid import uuid4

    from eventsourcing.domain import Snapshot

    from domain.subscription import Subscription

    subscription = Subscription(
        account_id=uuid4(),
        customer_id=uuid4(),
        msisdn="447700900123",
        imsi="",
        payment_type="prepaid",
        rate_plan="STD",
        currency="GBP",
        status="active",
        created_by="test",
    )
    snapshot = Snapshot.take(subscription)
    old_state = {
        k: v
        for k, v in snapshot.state.items()
        if k not in ("charged_batches", "class_version")
    }
    old = Snapshot(
        originator_id=snapshot.originator_id,
        originator_version=snapshot.originator_version,
        timestamp=snapshot.timestamp,
        topic=snapshot.topic,
        state=old_state,
    )

    restored = old.mutate(None)

    assert isinstance(restored, Subscription)
    assert restored.charge_prepaid_usage(uuid4(), 0, Decimal("1.50"), 3)
    assert restored.prepaid_balance == Decimal("-1.50")


def test_unrated_records_of_the_usual_shape_are_priced_as_after_the_full_checks() -> (
    None
):
    from domain.rating import compile_tariff, read_tariff_book
    from domain.usage_loading import OfflineRatingRules

    book, problems = read_tariff_book(
        {
            "tariffs": [
                {
                    "code": "STD",
                    "currency": "GBP",
                    "timezone": "Europe/London",
                    "rates": [
                        {
                            "usage_class": "VOICE_NAT",
                            "slabs": [
                                {"from": 0, "price": "0.60", "per": 60, "increment": 1}
                            ],
                            "rounding": {"method": "half_up", "decimals": 4},
                        }
                    ],
                }
            ],
            "rate_plans": {"PLAN": "STD"},
        }
    )
    assert problems == []

    class FullOffline(OfflineRatingRules):
        quick_check = False

    def unrated(record_id: str, **fields: Any) -> dict[str, Any]:
        record = voice(record_id, **fields)
        del record["charge"]
        return record

    chunk: list[tuple[int, object]] = [
        (0, unrated("A", duration_seconds=61)),
        (1, unrated("B", start_time="2026-11-21T10:58:01.25+01:00")),
        (2, unrated("C", usage_class="DATA_ROAM")),
        (3, unrated("D", msisdn="447700900999")),
        (4, voice("E")),  # a charge in an unrated file
        (5, unrated("A")),
        (6, unrated("F", duration_seconds=60.0)),
    ]
    holders = {
        "msisdn:447700900123": [
            Holder("sub", "acct-sub", "postpaid", "GBP", None, "PLAN")
        ]
    }

    def decided(rules: type[OfflineRatingRules]) -> Any:
        made = rules(
            {"VOICE_NAT"},
            HomeNetwork("234", "15"),
            lambda ids: set(),
            book,
            compile_tariff,
        )
        return made.decide("unrated", chunk, holders)

    quick = decided(OfflineRatingRules)

    assert quick == decided(FullOffline)
    assert [row[1] for row in quick.loaded] == ["A", "B", "F"]


def test_usage_earlier_than_usage_that_took_free_units_before_it_is_listed() -> None:
    from domain.bill_periods import period_of
    from domain.rating import compile_tariff, read_tariff_book
    from domain.usage_loading import AllowancesSoFar, OfflineRatingRules

    book, problems = read_tariff_book(
        {
            "tariffs": [
                {
                    "code": "STD",
                    "currency": "GBP",
                    "timezone": "UTC",
                    "rates": [
                        {
                            "usage_class": "VOICE_NAT",
                            "slabs": [
                                {"from": 0, "price": "0.60", "per": 60, "increment": 1}
                            ],
                        }
                    ],
                    "allowances": [
                        {"code": "MIN", "units": 90, "usage_classes": ["VOICE_NAT"]}
                    ],
                }
            ],
            "rate_plans": {"PLAN": "STD"},
        }
    )
    assert problems == []
    holders = {
        "msisdn:447700900123": [Holder("sub", "acct", "postpaid", "GBP", None, "PLAN")]
    }
    # Usage loaded before took 30 s; the latest of it started at 09:00.
    before = AllowancesSoFar({"MIN": 30}, "2026-11-21T09:00:00.000000+00:00")
    rules = OfflineRatingRules(
        {"VOICE_NAT"},
        HomeNetwork("234", "15"),
        lambda ids: set(),
        book,
        compile_tariff,
        allowance_used=lambda subscription, period: before,
    )

    def unrated(record_id: str, start: str) -> dict[str, Any]:
        record = voice(record_id, start_time=f"2026-11-21T{start}Z")
        del record["charge"]
        return record

    # After 09:00 and in time order: nothing to give again.
    rules.decide("unrated", [(0, unrated("A", "10:00:00"))], holders)
    assert rules.reallocations == {}
    # A later chunk goes back before A (which took free units), and before
    # the usage of the earlier load.
    rules.decide("unrated", [(1, unrated("B", "09:30:00"))], holders)
    rules.decide("unrated", [(2, unrated("C", "08:00:00"))], holders)

    period = period_of(1, datetime(2026, 11, 21, tzinfo=UTC))
    assert rules.reallocations == {("sub", period): "2026-11-21T08:00:00.000000+00:00"}
