"""Internal actions run on a subscription: bars, connection, services, top-ups."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import pytest

from domain.account import ActionNotApplicable
from domain.raising import plan_raise
from domain.subscription import ACTIVE, DISCONNECTED, PENDING, Subscription
from domain.workflow import AWAITING, COMPLETED, WorkflowError
from tests.unit.test_raising import workflow_view
from tests.unit.test_workflow_events import (
    LATER,
    create_items,
    item_of,
    names,
    new_subscription,
    raise_event,
    raise_planned,
)


def run(
    subscription: Subscription,
    event_type: str,
    event_code: str,
    action_code: str | None = None,
    manual: Iterable[str] = (),
) -> str:
    """Raise the event, create its items and run one action; returns its item id.

    Events recorded before the action runs are collected, so that the test sees
    only what running the action recorded.
    """
    workflow_event_id = raise_event(subscription, event_type, event_code, manual=manual)
    create_items(subscription, workflow_event_id)
    if action_code is None:
        [action] = subscription.workflow_event(workflow_event_id)["actions"]
        action_code = action["action_code"]
    item_id = item_of(subscription, workflow_event_id, action_code)
    subscription.collect_events()
    subscription.run_internal_action(item_id, LATER)
    return item_id


def note_of(subscription: Subscription, item_id: str) -> str:
    item = subscription.actioned_item(item_id)
    assert item["status"] == COMPLETED
    return str(item["note"])


# --- bars -----------------------------------------------------------------------


def test_a_data_bar_is_applied_and_its_item_completed() -> None:
    subscription = new_subscription()

    item_id = run(subscription, "BFEA", "DBAR")

    assert subscription.bars == ["DATA"]
    assert note_of(subscription, item_id) == "DATA bar applied"
    events = subscription.collect_events()
    assert names(events)[:2] == ["BarApplied", "ActionedItemCompleted"]
    assert (events[0].bar, events[0].item_id) == ("DATA", item_id)


def test_the_internal_action_reports_its_handler() -> None:
    subscription = new_subscription()
    workflow_event_id = raise_event(subscription, "BFEA", "DBAR")
    [item_id] = create_items(subscription, workflow_event_id)

    assert subscription.run_internal_action(item_id, LATER) == "bar"


def test_barring_twice_records_one_bar_and_says_it_was_already_applied() -> None:
    subscription = new_subscription()
    run(subscription, "BFEA", "DBAR")

    item_id = run(subscription, "BFEA", "DBAR")

    assert subscription.bars == ["DATA"]
    assert note_of(subscription, item_id) == "DATA bar was already applied"
    assert "BarApplied" not in names(subscription.collect_events())


def test_removing_a_data_bar_lifts_it() -> None:
    subscription = new_subscription()
    run(subscription, "BFEA", "DBAR")

    item_id = run(subscription, "BFEA", "DUNB")

    assert subscription.bars == []
    assert note_of(subscription, item_id) == "DATA bar removed"
    assert names(subscription.collect_events())[0] == "BarRemoved"


def test_removing_a_bar_that_is_not_there_records_no_change() -> None:
    subscription = new_subscription()

    item_id = run(subscription, "BFEA", "DUNB")

    assert subscription.bars == []
    assert note_of(subscription, item_id) == "no DATA bar to remove"
    assert "BarRemoved" not in names(subscription.collect_events())


# --- connection -----------------------------------------------------------------


def test_connecting_a_pending_subscription_makes_it_active() -> None:
    subscription = new_subscription(status=PENDING)

    item_id = run(subscription, "CONN", "NEW", "CONNCT")

    assert subscription.status == ACTIVE
    assert note_of(subscription, item_id) == "connected"
    events = subscription.collect_events()
    assert names(events)[0] == "Connected"
    assert events[0].item_id == item_id


def test_connecting_an_active_subscription_records_no_change() -> None:
    subscription = new_subscription(status=ACTIVE)

    item_id = run(subscription, "CONN", "NEW", "CONNCT")

    assert note_of(subscription, item_id) == "already active"
    assert "Connected" not in names(subscription.collect_events())


def test_disconnecting_records_the_reason() -> None:
    subscription = new_subscription()

    item_id = run(subscription, "CRED", "DISC")

    assert subscription.status == DISCONNECTED
    assert note_of(subscription, item_id) == "disconnected"
    [disconnected] = [
        e for e in subscription.collect_events() if type(e).__name__ == "Disconnected"
    ]
    assert (disconnected.reason, disconnected.item_id) == ("non-payment", item_id)


def test_a_disconnected_subscription_refuses_every_action_naming_why() -> None:
    subscription = new_subscription()
    run(subscription, "CRED", "DISC")
    workflow_event_id = raise_event(subscription, "BFEA", "DBAR")
    [item_id] = create_items(subscription, workflow_event_id)
    subscription.collect_events()

    with pytest.raises(ActionNotApplicable, match="disconnected") as refused:
        subscription.run_internal_action(item_id, LATER)

    assert str(refused.value) == "subscription 447700900123 is disconnected"
    assert subscription.bars == []
    assert subscription.actioned_item(item_id)["status"] == AWAITING
    assert subscription.collect_events() == []


@pytest.mark.parametrize(
    ("handler", "parameters"),
    [
        ("connect", {}),
        ("unbar", {"bar": "DATA"}),
        ("subscription_service", {"service": "DATA1GB"}),
        ("top_up", {"amount": "10.00"}),
    ],
)
def test_a_disconnected_subscription_says_why_for_any_handler(
    handler: str, parameters: dict[str, str]
) -> None:
    subscription = new_subscription(status=DISCONNECTED)

    assert subscription.why_not(handler, parameters) == (
        "subscription 447700900123 is disconnected"
    )


# --- subscription services ----------------------------------------------------------


def test_a_data_add_on_is_added_then_removed() -> None:
    subscription = new_subscription()

    added = run(subscription, "SERV", "ADDO")
    assert subscription.services == ["DATA1GB"]
    assert note_of(subscription, added) == "service DATA1GB added"
    assert names(subscription.collect_events())[0] == "ServiceAdded"

    removed = run(subscription, "SERV", "REMO")
    assert subscription.services == []
    assert note_of(subscription, removed) == "service DATA1GB removed"
    assert names(subscription.collect_events())[0] == "ServiceRemoved"


def test_adding_a_service_twice_or_removing_an_absent_one_records_no_change() -> None:
    subscription = new_subscription()
    run(subscription, "SERV", "ADDO")

    again = run(subscription, "SERV", "ADDO")
    assert note_of(subscription, again) == "service DATA1GB was already there"
    assert "ServiceAdded" not in names(subscription.collect_events())

    run(subscription, "SERV", "REMO")
    absent = run(subscription, "SERV", "REMO")
    assert note_of(subscription, absent) == "service DATA1GB was not there"
    assert "ServiceRemoved" not in names(subscription.collect_events())


# --- top-ups --------------------------------------------------------------------


def test_top_ups_add_up_exactly_in_decimal() -> None:
    subscription = new_subscription(payment_type="prepaid")
    workflow_event_id = raise_event(subscription, "TOPU", "AIRT", manual=["TOP005"])
    create_items(subscription, workflow_event_id)
    subscription.collect_events()

    subscription.run_internal_action(
        item_of(subscription, workflow_event_id, "TOP10"), LATER
    )
    small = item_of(subscription, workflow_event_id, "TOP005")
    subscription.run_internal_action(small, LATER)

    assert subscription.prepaid_balance == Decimal("10.05")
    assert str(subscription.prepaid_balance) == "10.05"
    assert note_of(subscription, small) == "topped up 0.05 GBP; balance 10.05"
    topped_up = [
        e for e in subscription.collect_events() if type(e).__name__ == "ToppedUp"
    ]
    assert [(e.amount, e.balance, e.currency) for e in topped_up] == [
        (Decimal("10.00"), Decimal("10.00"), "GBP"),
        (Decimal("0.05"), Decimal("10.05"), "GBP"),
    ]


def test_a_top_up_of_a_postpaid_subscription_is_refused() -> None:
    subscription = new_subscription(payment_type="postpaid")
    workflow_event_id = raise_event(subscription, "TOPU", "AIRT")
    [item_id] = create_items(subscription, workflow_event_id)
    subscription.collect_events()

    with pytest.raises(ActionNotApplicable, match="prepaid") as refused:
        subscription.run_internal_action(item_id, LATER)

    assert "postpaid" in str(refused.value)
    assert subscription.prepaid_balance == Decimal("0")
    assert subscription.actioned_item(item_id)["status"] == AWAITING
    assert subscription.collect_events() == []


def test_a_top_up_in_another_currency_is_refused() -> None:
    subscription = new_subscription(currency="EUR")
    workflow_event_id = raise_event(subscription, "TOPU", "AIRT")
    [item_id] = create_items(subscription, workflow_event_id)

    with pytest.raises(ActionNotApplicable) as refused:
        subscription.run_internal_action(item_id, LATER)

    assert str(refused.value) == "the top-up is in GBP, the subscription in EUR"


def test_running_the_action_of_a_completed_item_again_changes_nothing() -> None:
    subscription = new_subscription(payment_type="prepaid")
    item_id = run(subscription, "TOPU", "AIRT")
    subscription.collect_events()

    with pytest.raises(WorkflowError, match="completed"):
        subscription.run_internal_action(item_id, LATER)

    assert subscription.prepaid_balance == Decimal("10.00")
    assert subscription.collect_events() == []


# --- handlers of another level ---------------------------------------------


def test_an_account_handler_is_refused_on_a_subscription() -> None:
    subscription = new_subscription()
    account_plan = plan_raise(workflow_view(), "account", "ACCT", "BUSN", [])
    workflow_event_id = raise_planned(subscription, account_plan)
    [item_id] = create_items(subscription, workflow_event_id)

    with pytest.raises(ActionNotApplicable) as refused:
        subscription.run_internal_action(item_id, LATER)

    assert str(refused.value) == (
        "the account_type_movement handler acts on accounts, not subscriptions"
    )
