"""Repricing a page of rated usage: what changed is corrected with its delta
and new breakdown, what did not is left alone, what cannot be priced is
listed; free units stay with the records that took them."""

from __future__ import annotations

import json
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from application.rerating import _Ahead
from domain.rating import read_tariff_book
from domain.repricing import Repricing, TariffOf, uses_allowances

PER_MINUTE = {"from": 0, "price": "0.60", "per": 60, "increment": 60}


def book(allowance: int | None = None) -> Any:
    tariff: dict[str, Any] = {
        "code": "STD",
        "currency": "GBP",
        "timezone": "Europe/London",
        "rates": [
            {
                "usage_class": "VOICE_NAT",
                "slabs": [PER_MINUTE],
                "rounding": {"method": "half_up", "decimals": 4},
            }
        ],
    }
    if allowance is not None:
        tariff["allowances"] = [
            {"code": "MIN", "units": allowance, "usage_classes": ["VOICE_NAT"]}
        ]
    found, problems = read_tariff_book(
        {"tariffs": [tariff], "rate_plans": {"PLAN": "STD"}}
    )
    assert problems == []
    return found


def row(record_id: str, seconds: int, charge: str, subscription: str = "S1") -> Any:
    return (
        record_id,
        "B1",
        subscription,
        "2026-11-21T12:00:00+00:00",
        seconds,
        None,
        None,
        "441632960000",
        "234",
        "15",
        charge,
        None,
    )


def repricing(tariffs: Any) -> Repricing:
    return Repricing(
        "VOICE_NAT", {"S1": "PLAN", "S2": "PLAN"}, TariffOf(tariffs), "234", "15"
    )


def test_only_records_whose_price_changed_are_corrected_with_their_delta() -> None:
    corrections, refused = repricing(book()).page(
        [row("A", 60, "0.6000"), row("B", 61, "0.6000")], "postpaid"
    )
    assert refused == []
    ((record_id, batch, payment, subscription, old, new, delta, *rest),) = corrections
    assert (record_id, batch, payment, subscription) == ("B", "B1", "postpaid", "S1")
    assert (old, new, delta) == ("0.6000", "1.2000", "0.6000")
    old_discount, new_discount, breakdown = rest
    assert (old_discount, new_discount) == (None, None)
    assert json.loads(breakdown)["charge"] == "1.2000"


def test_a_record_that_cannot_be_priced_is_refused_with_the_reason() -> None:
    corrections, refused = repricing(book()).page(
        [row("A", 60, "0.1000", subscription="NOBODY")], "prepaid"
    )
    assert corrections == []
    assert [(record_id, code) for record_id, code, _ in refused] == [("A", "no_tariff")]


def test_a_record_keeps_the_free_units_it_took_and_gets_none_it_did_not() -> None:
    tariffs = book(allowance=600)
    assert uses_allowances(tariffs, "VOICE_NAT")
    assert not uses_allowances(tariffs, "SMS_NAT")
    corrections, _ = repricing(tariffs).page(
        [row("TOOK", 120, "0.3000"), row("NONE", 120, "0.3000")],
        "postpaid",
        {"TOOK": {"MIN": 60}},
    )
    by_record = {c[0]: c for c in corrections}
    # 600 free minutes are in the tariff, but TOOK took 60 s and NONE none
    assert by_record["TOOK"][5] == "0.6000"
    assert json.loads(by_record["TOOK"][9])["allowances"] == [
        {"code": "MIN", "units": 60, "left": 0}
    ]
    assert by_record["NONE"][5] == "1.2000"
    assert json.loads(by_record["NONE"][9])["allowances"] == []


def test_a_page_the_broken_pool_did_not_price_is_priced_here() -> None:
    broken: Future[Any] = Future()
    broken.set_exception(BrokenProcessPool("a pricing process was killed"))
    pages = [
        _Ahead("postpaid", [row("B", 61, "0.6000")], None, broken),
        _Ahead("postpaid", [row("C", 61, "0.6000")], None, None),
    ]

    priced = [page.result(repricing(book())) for page in pages]

    assert [(payment, count) for payment, count, _, _ in priced] == [
        ("postpaid", 1),
        ("postpaid", 1),
    ]
    assert [corrections[0][0] for _, _, corrections, _ in priced] == ["B", "C"]


def usage(record_id: str, start: str, seconds: int, charge: str) -> Any:
    return (
        "postpaid",
        (
            record_id,
            "B1",
            "S1",
            "VOICE_NAT",
            f"2026-11-21T{start}:00+00:00",
            seconds,
            None,
            None,
            "441632960000",
            "234",
            "15",
            charge,
            None,
        ),
    )


def reallocation(tariffs: Any) -> Any:
    from domain.repricing import Reallocation

    return Reallocation("PLAN", TariffOf(tariffs), "234", "15")


def test_reallocating_gives_free_units_in_time_order_and_corrects_what_changed() -> (
    None
):
    # 120 free seconds, 60 of them given before; then in time order: the
    # early call (loaded last, with nothing left: 0.60) and the later one
    # (loaded first, it took the 60 s left: free).
    corrections, refused = reallocation(book(allowance=120)).reprice(
        [usage("EARLY", "10:00", 60, "0.6000"), usage("LATE", "10:05", 60, "0.0000")],
        used={"MIN": 60},
        taken={"LATE": {"MIN": 60}},
    )

    assert refused == []
    assert [(c[0], c[4], c[5], c[6]) for c in corrections] == [
        ("EARLY", "0.6000", "0.0000", "-0.6000"),
        ("LATE", "0.0000", "0.6000", "0.6000"),
    ]
    early = json.loads(corrections[0][9])
    assert early["allowances"] == [{"code": "MIN", "units": 60, "left": 0}]


def test_reallocating_in_the_order_already_given_changes_nothing() -> None:
    corrections, refused = reallocation(book(allowance=120)).reprice(
        [usage("EARLY", "10:00", 60, "0.0000"), usage("LATE", "10:05", 120, "0.6000")],
        used={},
        taken={"EARLY": {"MIN": 60}, "LATE": {"MIN": 60}},
    )
    assert (corrections, refused) == ([], [])


def test_a_record_that_cannot_be_priced_again_keeps_its_free_units() -> None:
    tariffs = book(allowance=120)
    broken = usage("BROKEN", "10:00", 60, "0.0000")
    record = list(broken[1])
    record[3] = "VOICE_INT"  # no rate for it now
    corrections, refused = reallocation(tariffs).reprice(
        [("postpaid", tuple(record)), usage("LATE", "10:05", 120, "0.6000")],
        used={},
        taken={"BROKEN": {"MIN": 60}, "LATE": {"MIN": 60}},
    )
    assert [r[:2] for r in refused] == [["BROKEN", "no_rate"]]
    assert corrections == []  # LATE still gets the 60 s BROKEN left
