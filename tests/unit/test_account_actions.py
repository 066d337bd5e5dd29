"""Internal actions run on an account: account type movements."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.account import Account, ActionNotApplicable
from domain.raising import plan_raise
from domain.workflow import AWAITING, COMPLETED, RESOLVED
from tests.unit.test_raising import workflow_view
from tests.unit.test_workflow_events import (
    AGENT,
    LATER,
    create_items,
    names,
    raise_event,
    raise_planned,
)


def new_account(account_type: str = "CONS") -> Account:
    account = Account(
        customer_id=uuid4(),
        number="ACC-000123",
        account_type=account_type,
        bill_cycle_day=1,
        currency="GBP",
        opened_by=AGENT,
    )
    account.collect_events()
    return account


def test_an_account_type_movement_moves_the_account_and_records_it() -> None:
    account = new_account("CONS")
    workflow_event_id = raise_event(account, "ACCT", "BUSN")
    [item_id] = create_items(account, workflow_event_id)
    account.collect_events()

    account.run_internal_action(item_id, LATER)

    assert account.account_type == "BUSN"
    item = account.actioned_item(item_id)
    assert (item["status"], item["note"]) == (
        COMPLETED,
        "account type moved from CONS to BUSN",
    )
    assert account.workflow_event(workflow_event_id)["status"] == RESOLVED
    moved, *_ = account.collect_events()
    assert type(moved).__name__ == "AccountTypeMoved"
    assert (moved.from_type, moved.to_type, moved.item_id) == ("CONS", "BUSN", item_id)


def test_moving_an_account_to_its_own_type_records_no_movement() -> None:
    account = new_account("BUSN")
    workflow_event_id = raise_event(account, "ACCT", "BUSN")
    [item_id] = create_items(account, workflow_event_id)
    account.collect_events()

    account.run_internal_action(item_id, LATER)

    assert account.account_type == "BUSN"
    assert account.actioned_item(item_id)["note"] == "account type is already BUSN"
    assert "AccountTypeMoved" not in names(account.collect_events())


def test_a_subscription_handler_is_refused_on_an_account() -> None:
    account = new_account()
    subscription_plan = plan_raise(workflow_view(), "subscription", "BFEA", "DBAR", [])
    workflow_event_id = raise_planned(account, subscription_plan)
    [item_id] = create_items(account, workflow_event_id)
    account.collect_events()

    with pytest.raises(ActionNotApplicable) as refused:
        account.run_internal_action(item_id, LATER)

    assert str(refused.value) == "the bar handler acts on subscriptions, not accounts"
    assert account.actioned_item(item_id)["status"] == AWAITING
    assert account.collect_events() == []


def test_an_account_keeps_its_own_workflow_log() -> None:
    account = new_account()

    workflow_event_id = raise_event(account, "ACCT", "CONS", note="back to consumer")

    wf = account.workflow_event(workflow_event_id)
    assert (wf["event_type"], wf["event_code"], wf["note"]) == (
        "ACCT",
        "CONS",
        "back to consumer",
    )
    [raised] = account.collect_events()
    assert raised.level == "account"
