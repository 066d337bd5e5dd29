"""A finished workflow event leaves the working state of its subscription (its
stream and the read models keep it), so that a long history costs nothing per
command; what a refusal must say about it stays."""

from __future__ import annotations

from uuid import UUID

import pytest
from eventsourcing.domain import Snapshot

import domain.workflow
from domain.subscription import Subscription
from domain.workflow import CANCELLED, COMPLETED, DEAD, OPEN, RESOLVED, WorkflowError
from tests.unit.test_workflow_events import (
    AGENT,
    LATER,
    create_items,
    names,
    new_subscription,
    raise_event,
)


def paid_and_done(subscription: Subscription) -> tuple[str, str]:
    """``CRED PAID`` worked through: resolved on raise, its SMS sent on resolve.

    Returns the workflow event's id and the SMS item's id.
    """
    workflow_event_id = raise_event(subscription, "CRED", "PAID")
    create_items(subscription, workflow_event_id)  # nothing on raise: resolved
    [sms] = create_items(subscription, workflow_event_id, "resolve", at=LATER)
    subscription.complete_item(sms, LATER, "delivered")
    return str(workflow_event_id), sms


def test_a_resolved_event_leaves_the_working_state_once_its_items_are_done() -> None:
    subscription = new_subscription()
    workflow_event_id = raise_event(subscription, "CRED", "PAID")
    create_items(subscription, workflow_event_id)
    assert subscription.workflow_event(workflow_event_id)["status"] == RESOLVED
    assert str(workflow_event_id) in subscription.workflow_events  # SMS to make
    [sms] = create_items(subscription, workflow_event_id, "resolve", at=LATER)
    assert str(workflow_event_id) in subscription.workflow_events  # SMS to send

    subscription.complete_item(sms, LATER, "delivered")

    assert subscription.workflow_events == {}
    assert subscription.actioned_items == {}
    assert subscription.workflow_event(workflow_event_id) == {
        "id": str(workflow_event_id),
        "event_type": "CRED",
        "event_code": "PAID",
        "status": RESOLVED,
    }
    assert subscription.actioned_item(sms)["status"] == COMPLETED


def test_a_retired_event_and_its_items_are_refused_as_before() -> None:
    subscription = new_subscription()
    workflow_event_id, sms = paid_and_done(subscription)
    subscription.collect_events()

    with pytest.raises(WorkflowError, match="CRED PAID is already resolved"):
        subscription.resolve_workflow_event(UUID(workflow_event_id), AGENT, LATER)
    with pytest.raises(WorkflowError, match="already resolved"):
        subscription.cancel_workflow_event(
            UUID(workflow_event_id), AGENT, LATER, "late"
        )
    with pytest.raises(WorkflowError, match="this one is completed"):
        subscription.retry_item(sms, AGENT, LATER)
    with pytest.raises(WorkflowError, match=f"actioned item {sms} is completed"):
        subscription.cancel_item(sms, AGENT, LATER, "late")
    with pytest.raises(WorkflowError, match=f"actioned item {sms} is completed"):
        subscription.complete_item(sms, LATER, "again")
    assert subscription.collect_events() == []


def test_an_event_resolved_by_hand_waits_for_its_resolve_stage() -> None:
    subscription = new_subscription()
    workflow_event_id = raise_event(subscription, "BFEA", "HOLD")
    [bar] = create_items(subscription, workflow_event_id)
    subscription.complete_item(bar, LATER, "DATA bar applied")  # not auto-resolved
    subscription.resolve_workflow_event(workflow_event_id, AGENT, LATER)
    assert str(workflow_event_id) in subscription.workflow_events
    subscription.collect_events()

    # Nothing to do on resolve: the stage is recorded all the same.
    assert create_items(subscription, workflow_event_id, "resolve", at=LATER) == []

    assert names(subscription.collect_events()) == ["ActionedItemsCreated"]
    assert subscription.workflow_events == {}
    assert subscription.workflow_event(workflow_event_id)["status"] == RESOLVED


def test_a_dead_item_keeps_its_event_until_the_event_is_cancelled() -> None:
    subscription = new_subscription()
    workflow_event_id = raise_event(subscription, "BFEA", "DBAR")
    [bar] = create_items(subscription, workflow_event_id)
    subscription.record_item_sent(bar, "r1", LATER)
    subscription.fail_item(bar, "network down", LATER, None)
    assert subscription.actioned_item(bar)["status"] == DEAD
    assert subscription.workflow_event(workflow_event_id)["status"] == OPEN

    subscription.cancel_workflow_event(workflow_event_id, AGENT, LATER, "given up")

    assert subscription.workflow_events == {}
    assert subscription.workflow_event(workflow_event_id)["status"] == CANCELLED
    assert subscription.actioned_item(bar)["status"] == CANCELLED


def test_a_manual_action_not_yet_made_into_an_item_keeps_its_event_until_made() -> None:
    from domain.raising import manual_action, resolve_action
    from tests.unit.test_raising import workflow_view

    subscription = new_subscription()
    view = workflow_view()
    workflow_event_id = raise_event(subscription, "BFEA", "HOLD")
    create_items(subscription, workflow_event_id)
    action = resolve_action(
        view, manual_action(view, "subscription", "DBARA"), "raise", 30, manual=True
    )
    subscription.add_manual_action(workflow_event_id, action, AGENT, LATER)
    subscription.cancel_workflow_event(workflow_event_id, AGENT, LATER, "not needed")

    assert str(workflow_event_id) in subscription.workflow_events
    # Made after the cancellation: cancelled at once, and the event retired.
    [item] = create_items(subscription, workflow_event_id, "manual", [action])

    assert subscription.actioned_item(item)["status"] == "cancelled"
    assert subscription.workflow_events == {}


def test_many_finished_events_leave_only_their_refusals_behind() -> None:
    subscription = new_subscription()
    for _ in range(50):
        paid_and_done(subscription)
    open_one = raise_event(subscription, "BFEA", "HOLD")

    assert list(subscription.workflow_events) == [str(open_one)]
    assert subscription.actioned_items == {}
    assert len(subscription.retired_workflow_events) == 50
    assert len(subscription.retired_items) == 50


def test_a_snapshot_taken_before_events_were_retired_retires_the_finished_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    subscription = new_subscription()
    with monkeypatch.context() as patch:  # as version 2 kept every event
        patch.setattr(domain.workflow, "retire_if_finished", lambda *_: None)
        finished, sms = paid_and_done(subscription)
        open_one = raise_event(subscription, "BFEA", "DBAR")
        [bar] = create_items(subscription, open_one)
    assert set(subscription.workflow_events) == {finished, str(open_one)}
    snapshot = Snapshot.take(subscription)
    state = {
        k: v
        for k, v in snapshot.state.items()
        if k not in ("retired_workflow_events", "retired_items")
    }
    state["class_version"] = 2
    old = Snapshot(
        originator_id=snapshot.originator_id,
        originator_version=snapshot.originator_version,
        timestamp=snapshot.timestamp,
        topic=snapshot.topic,
        state=state,
    )

    restored = old.mutate(None)

    assert isinstance(restored, Subscription)
    assert list(restored.workflow_events) == [str(open_one)]
    assert list(restored.actioned_items) == [bar]
    assert restored.workflow_event(finished)["status"] == RESOLVED
    assert restored.actioned_item(sms)["status"] == COMPLETED
    restored.complete_item(bar, LATER, "DATA bar applied")
    assert restored.workflow_event(open_one)["status"] == RESOLVED
