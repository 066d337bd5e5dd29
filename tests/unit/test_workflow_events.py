"""Workflow events on a subscription: raised, worked through, resolved, cancelled.

The builders here (``new_subscription``, ``raise_event``, ``create_items``…) are
shared by the other workflow, subscription and account tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4, uuid5

import pytest

from domain.catalogue.items import Kind
from domain.raising import (
    CatalogueView,
    RaisePlan,
    due_time,
    manual_action,
    plan_raise,
    resolve_action,
)
from domain.subscription import Subscription
from domain.workflow import (
    AWAITING,
    CANCELLED,
    COMPLETED,
    ERROR,
    OPEN,
    RESOLVED,
    SENT,
    UnknownActionedItem,
    UnknownWorkflowEvent,
    WorkflowError,
    WorkflowEventResolved,
    WorkflowLog,
)
from tests.unit.test_raising import view_without, workflow_view

RAISED_AT = datetime(2025, 1, 31, 9, 0, tzinfo=UTC)
CREATED_AT = RAISED_AT + timedelta(seconds=2)
LATER = RAISED_AT + timedelta(minutes=5)
AGENT = "agent-ann"


# --- builders -----------------------------------------------------------------


def new_subscription(
    *, payment_type: str = "prepaid", status: str = "active", currency: str = "GBP"
) -> Subscription:
    """A subscription whose creation event is already collected."""
    subscription = unsaved_subscription(
        payment_type=payment_type, status=status, currency=currency
    )
    subscription.collect_events()
    return subscription


def unsaved_subscription(
    *, payment_type: str = "prepaid", status: str = "active", currency: str = "GBP"
) -> Subscription:
    """A subscription whose creation event is still pending (to be saved)."""
    return Subscription(
        account_id=uuid4(),
        customer_id=uuid4(),
        msisdn="447700900123",
        imsi="234150000000123",
        payment_type=payment_type,
        rate_plan="SIMO10",
        currency=currency,
        status=status,
        created_by=AGENT,
    )


def raise_planned(
    owner: WorkflowLog, plan: RaisePlan, *, note: str = "", at: datetime = RAISED_AT
) -> UUID:
    """Record ``plan`` raised by an agent, as the customer-care service does."""
    workflow_event_id = uuid4()
    owner.raise_workflow_event(
        workflow_event_id=workflow_event_id,
        event_type=plan.event_type,
        event_code=plan.event_code,
        description=plan.description,
        note=note,
        source="agent",
        raised_by=AGENT,
        raised_at=at,
        initiating_event_id=None,
        depth=0,
        auto_resolve=plan.auto_resolve,
        actions=plan.actions,
        communications=plan.communications,
        linked_events=plan.linked_events,
        skipped_actions=plan.skipped_actions,
    )
    return workflow_event_id


def raise_event(
    owner: WorkflowLog,
    event_type: str,
    event_code: str,
    *,
    manual: Iterable[str] = (),
    view: CatalogueView | None = None,
    note: str = "",
) -> UUID:
    """Raise ``TYPE CODE`` on ``owner`` from the workflow catalogue."""
    plan = plan_raise(
        view or workflow_view(), owner.LEVEL, event_type, event_code, list(manual)
    )
    return raise_planned(owner, plan, note=note)


def item_specs(
    owner: WorkflowLog,
    workflow_event_id: UUID,
    stage: str = "raise",
    actions: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Items for the event's actions and communications of ``stage``.

    Shaped as the workflow processor (application/customer_care.py ``_items``)
    makes them, plus a ``stage`` field: the processor leaves it out, which
    test_items_made_as_the_workflow_processor_makes_them_know_their_stage
    shows to be a bug; adding it here keeps the other tests about themselves.
    """
    wf = owner.workflow_event(workflow_event_id)
    when = "resolve" if stage == "resolve" else "raise"
    base = wf["raised_at"]
    specs: list[dict[str, Any]] = []
    for action in sorted(actions or wf["actions"], key=lambda a: a["sequence"]):
        if action["when"] != when:
            continue
        specs.append(
            {
                "item_id": str(
                    uuid5(
                        workflow_event_id,
                        f"{stage}::{action['sequence']}:{action['action_code']}",
                    )
                ),
                "kind": "action",
                "when": when,
                "sequence": action["sequence"],
                "action_code": action["action_code"],
                "action_type": action["action_type"],
                "handler": action["handler"],
                "description": action["description"],
                "parameters": action["parameters"],
                "channel": None,
                "template": None,
                "due_at": due_time(action["schedule"], base),
                "max_attempts": action["max_attempts"],
                "ignore_network_errors": action["ignore_network_errors"],
                "stage": stage,
            }
        )
    if actions is None:
        for index, communication in enumerate(wf["communications"]):
            if communication["when"] != when:
                continue
            specs.append(
                {
                    "item_id": str(uuid5(workflow_event_id, f"{stage}::comm:{index}")),
                    "kind": "communication",
                    "when": when,
                    "sequence": 1_000_000 + index,
                    "action_code": None,
                    "action_type": None,
                    "handler": "communication",
                    "description": (
                        f"{communication['channel']} "
                        f"{communication['template']['code']}"
                    ),
                    "parameters": {},
                    "channel": communication["channel"],
                    "template": communication["template"],
                    "due_at": base,
                    "max_attempts": 3,
                    "ignore_network_errors": False,
                    "stage": stage,
                }
            )
    return specs


def create_items(
    owner: WorkflowLog,
    workflow_event_id: UUID,
    stage: str = "raise",
    actions: list[dict[str, Any]] | None = None,
    at: datetime = CREATED_AT,
) -> list[str]:
    """Create the event's items of ``stage``; returns their ids in order."""
    specs = item_specs(owner, workflow_event_id, stage, actions)
    owner.create_actioned_items(workflow_event_id, stage, specs, at)
    return [spec["item_id"] for spec in specs]


def item_of(owner: WorkflowLog, workflow_event_id: UUID, action_code: str) -> str:
    """The id of the event's item for ``action_code``."""
    wf = owner.workflow_event(workflow_event_id)
    [item_id] = [
        i for i in wf["items"] if owner.actioned_items[i]["action_code"] == action_code
    ]
    return item_id


def names(events: Iterable[Any]) -> list[str]:
    return [type(e).__name__ for e in events]


def statuses(owner: WorkflowLog, workflow_event_id: UUID) -> dict[str, str]:
    """Action code (or channel) -> status of each of the event's items."""
    wf = owner.workflow_event(workflow_event_id)
    return {
        owner.actioned_items[i]["action_code"] or owner.actioned_items[i]["channel"]: (
            owner.actioned_items[i]["status"]
        )
        for i in wf["items"]
    }


# --- raising ------------------------------------------------------------------


def test_a_raised_event_is_open_and_keeps_what_was_resolved_when_raised() -> None:
    subscription = new_subscription()

    workflow_event_id = raise_event(
        subscription, "BFEA", "DBAR", note="customer asked for a data bar"
    )

    wf = subscription.workflow_event(workflow_event_id)
    assert wf["status"] == OPEN
    assert (wf["event_type"], wf["event_code"]) == ("BFEA", "DBAR")
    assert wf["description"] == "Add data bar"
    assert wf["note"] == "customer asked for a data bar"
    assert (wf["source"], wf["raised_by"], wf["raised_at"]) == (
        "agent",
        AGENT,
        RAISED_AT,
    )
    assert wf["auto_resolve"] is True
    [action] = wf["actions"]
    assert (action["action_code"], action["handler"], action["parameters"]) == (
        "DBARA",
        "bar",
        {"bar": "DATA"},
    )
    assert [c["template"]["code"] for c in wf["communications"]] == ["DBARSMS"]
    assert wf["items"] == []
    assert wf["raise_items_created"] is False
    assert names(subscription.collect_events()) == ["WorkflowEventRaised"]


def test_a_raised_event_keeps_its_actions_when_the_catalogue_changes_later() -> None:
    subscription = new_subscription()
    workflow_event_id = raise_event(subscription, "CRED", "CLR")

    later_plan = plan_raise(
        view_without((Kind.ACTION_CODES, "UNBALL")), "subscription", "CRED", "CLR", []
    )

    actions = subscription.workflow_event(workflow_event_id)["actions"]
    assert [a["action_code"] for a in later_plan.actions] == ["UNBOUT"]
    assert [a["action_code"] for a in actions] == ["UNBOUT", "UNBALL"]


def test_an_unknown_workflow_event_or_item_is_a_lookup_error() -> None:
    subscription = new_subscription()

    with pytest.raises(UnknownWorkflowEvent):
        subscription.workflow_event(uuid4())
    with pytest.raises(UnknownActionedItem):
        subscription.actioned_item("no-such-item")


# --- actioned items and auto-resolve ---------------------------------------------


def test_creating_the_raise_items_makes_each_one_awaiting_and_due() -> None:
    subscription = new_subscription()
    workflow_event_id = raise_event(subscription, "TOPU", "SCHD")

    [item_id] = create_items(subscription, workflow_event_id)

    item = subscription.actioned_item(item_id)
    assert item["status"] == AWAITING
    assert (item["attempts"], item["last_error"], item["retry_at"]) == (0, "", None)
    assert item["workflow_event_id"] == str(workflow_event_id)
    assert item["due_at"] == RAISED_AT + timedelta(days=3)
    wf = subscription.workflow_event(workflow_event_id)
    assert wf["items"] == [item_id]
    assert wf["raise_items_created"] is True
    assert wf["status"] == OPEN


def test_resolve_communications_wait_for_the_resolve_stage() -> None:
    subscription = new_subscription()
    workflow_event_id = raise_event(subscription, "BFEA", "DBAR")

    create_items(subscription, workflow_event_id)

    assert statuses(subscription, workflow_event_id) == {"DBARA": AWAITING}


def test_completing_every_raise_item_resolves_an_auto_resolve_event() -> None:
    subscription = new_subscription()
    workflow_event_id = raise_event(subscription, "CRED", "CLR")
    first, second = create_items(subscription, workflow_event_id)
    subscription.complete_item(first, LATER, "no OUTGOING bar to remove")
    assert subscription.workflow_event(workflow_event_id)["status"] == OPEN
    subscription.collect_events()

    subscription.complete_item(second, LATER, "no ALL bar to remove")

    wf = subscription.workflow_event(workflow_event_id)
    assert wf["status"] == RESOLVED
    assert (wf["resolved_by"], wf["resolved_at"]) == ("system", LATER)
    completed, resolved = subscription.collect_events()
    assert names([completed]) == ["ActionedItemCompleted"]
    assert isinstance(resolved, WorkflowEventResolved)
    assert resolved.automatically is True


def test_completing_every_raise_item_leaves_an_event_without_auto_resolve_open() -> (
    None
):
    subscription = new_subscription()
    workflow_event_id = raise_event(subscription, "BFEA", "HOLD")
    [item_id] = create_items(subscription, workflow_event_id)

    subscription.complete_item(item_id, LATER, "DATA bar applied")

    assert subscription.workflow_event(workflow_event_id)["status"] == OPEN


def test_an_agent_resolves_an_open_event_by_hand() -> None:
    subscription = new_subscription()
    workflow_event_id = raise_event(subscription, "BFEA", "HOLD")
    subscription.collect_events()

    subscription.resolve_workflow_event(workflow_event_id, AGENT, LATER)

    wf = subscription.workflow_event(workflow_event_id)
    assert (wf["status"], wf["resolved_by"], wf["resolved_at"]) == (
        RESOLVED,
        AGENT,
        LATER,
    )
    [resolved] = subscription.collect_events()
    assert isinstance(resolved, WorkflowEventResolved)
    assert resolved.automatically is False


def test_an_event_with_nothing_to_do_on_raise_resolves_once_its_items_are_made() -> (
    None
):
    subscription = new_subscription()
    workflow_event_id = raise_event(subscription, "CRED", "PAID")
    assert subscription.workflow_event(workflow_event_id)["status"] == OPEN
    subscription.collect_events()

    created = create_items(subscription, workflow_event_id)

    assert created == []
    wf = subscription.workflow_event(workflow_event_id)
    assert wf["status"] == RESOLVED
    assert wf["resolved_at"] == CREATED_AT
    assert names(subscription.collect_events()) == [
        "ActionedItemsCreated",
        "WorkflowEventResolved",
    ]


def test_items_of_the_resolve_stage_do_not_reopen_or_re_resolve_the_event() -> None:
    subscription = new_subscription()
    workflow_event_id = raise_event(subscription, "CRED", "PAID")
    create_items(subscription, workflow_event_id)
    subscription.collect_events()

    [sms] = create_items(subscription, workflow_event_id, "resolve", at=LATER)
    subscription.complete_item(sms, LATER, "delivered")

    assert subscription.workflow_event(workflow_event_id)["status"] == RESOLVED
    assert names(subscription.collect_events()) == [
        "ActionedItemsCreated",
        "ActionedItemCompleted",
    ]


def test_cancelling_the_last_unfinished_item_resolves_the_event() -> None:
    subscription = new_subscription()
    workflow_event_id = raise_event(subscription, "CRED", "CLR")
    unbar_outgoing, unbar_all = create_items(subscription, workflow_event_id)
    subscription.complete_item(unbar_outgoing, LATER, "OUTGOING bar removed")

    subscription.cancel_item(unbar_all, AGENT, LATER, "no full bar on this line")

    assert statuses(subscription, workflow_event_id) == {
        "UNBOUT": COMPLETED,
        "UNBALL": CANCELLED,
    }
    assert subscription.workflow_event(workflow_event_id)["status"] == RESOLVED


def test_cancelling_an_item_while_another_awaits_leaves_the_event_open() -> None:
    subscription = new_subscription()
    workflow_event_id = raise_event(subscription, "CRED", "CLR")
    unbar_outgoing, _ = create_items(subscription, workflow_event_id)

    subscription.cancel_item(unbar_outgoing, AGENT, LATER, "not needed")

    assert subscription.workflow_event(workflow_event_id)["status"] == OPEN


def test_manual_action_items_must_finish_before_the_event_resolves_itself() -> None:
    subscription = new_subscription()
    view = workflow_view()
    workflow_event_id = raise_event(subscription, "CRED", "CLR")
    raise_items = create_items(subscription, workflow_event_id)
    action = resolve_action(
        view, manual_action(view, "subscription", "DBARA"), "raise", 30, manual=True
    )
    subscription.add_manual_action(workflow_event_id, action, AGENT, LATER)
    [manual_item] = create_items(subscription, workflow_event_id, "manual", [action])

    for item_id in raise_items:
        subscription.complete_item(item_id, LATER, "bar removed")
    assert subscription.workflow_event(workflow_event_id)["status"] == OPEN
    subscription.complete_item(manual_item, LATER, "DATA bar applied")

    wf = subscription.workflow_event(workflow_event_id)
    assert [a["action_code"] for a in wf["actions"]] == ["UNBOUT", "UNBALL", "DBARA"]
    assert wf["status"] == RESOLVED


def test_a_manual_action_cannot_be_added_to_a_resolved_event() -> None:
    subscription = new_subscription()
    view = workflow_view()
    workflow_event_id = raise_event(subscription, "BFEA", "HOLD")
    subscription.resolve_workflow_event(workflow_event_id, AGENT, LATER)
    action = resolve_action(
        view, manual_action(view, "subscription", "DUNBA"), "raise", 20, manual=True
    )

    with pytest.raises(WorkflowError, match="already resolved"):
        subscription.add_manual_action(workflow_event_id, action, AGENT, LATER)


# --- resolving and cancelling by hand ---------------------------------------------


def test_resolving_a_resolved_event_is_refused() -> None:
    subscription = new_subscription()
    workflow_event_id = raise_event(subscription, "BFEA", "HOLD")
    subscription.resolve_workflow_event(workflow_event_id, AGENT, LATER)
    subscription.collect_events()

    with pytest.raises(WorkflowError, match="BFEA HOLD is already resolved"):
        subscription.resolve_workflow_event(workflow_event_id, AGENT, LATER)
    assert subscription.collect_events() == []


def test_a_cancelled_event_can_be_neither_resolved_nor_cancelled_again() -> None:
    subscription = new_subscription()
    workflow_event_id = raise_event(subscription, "BFEA", "HOLD")
    subscription.cancel_workflow_event(workflow_event_id, AGENT, LATER, "raised twice")

    with pytest.raises(WorkflowError, match="already cancelled"):
        subscription.resolve_workflow_event(workflow_event_id, AGENT, LATER)
    with pytest.raises(WorkflowError, match="already cancelled"):
        subscription.cancel_workflow_event(workflow_event_id, AGENT, LATER, "again")


def test_cancelling_an_event_cancels_only_its_items_not_yet_sent() -> None:
    subscription = new_subscription()
    workflow_event_id = raise_event(
        subscription, "CRED", "CLR", manual=["DBARA", "ADD1GB"]
    )
    create_items(subscription, workflow_event_id)
    done, sent, errored, awaiting = (
        item_of(subscription, workflow_event_id, code)
        for code in ("UNBOUT", "UNBALL", "DBARA", "ADD1GB")
    )
    subscription.complete_item(done, LATER, "OUTGOING bar removed")
    subscription.record_item_sent(sent, f"{sent}:1", LATER)
    subscription.record_item_sent(errored, f"{errored}:1", LATER)
    subscription.fail_item(errored, "network busy", LATER, LATER + timedelta(minutes=1))

    cancelled = subscription.cancel_workflow_event(
        workflow_event_id, AGENT, LATER, "customer changed their mind"
    )

    assert sorted(cancelled) == sorted([errored, awaiting])
    assert statuses(subscription, workflow_event_id) == {
        "UNBOUT": COMPLETED,
        "UNBALL": SENT,
        "DBARA": CANCELLED,
        "ADD1GB": CANCELLED,
    }
    assert subscription.actioned_item(errored)["retry_at"] is None
    wf = subscription.workflow_event(workflow_event_id)
    assert (wf["status"], wf["cancelled_at"]) == (CANCELLED, LATER)


def test_an_errored_item_waits_for_its_retry_time() -> None:
    subscription = new_subscription()
    workflow_event_id = raise_event(subscription, "BFEA", "DBAR")
    [item_id] = create_items(subscription, workflow_event_id)
    subscription.record_item_sent(item_id, f"{item_id}:1", LATER)

    subscription.fail_item(item_id, "timeout", LATER, LATER + timedelta(minutes=2))

    assert subscription.actioned_item(item_id)["status"] == ERROR
    assert subscription.workflow_event(workflow_event_id)["status"] == OPEN


# --- items as the workflow processor makes them ------------------------------------


def processor_specs(
    owner: WorkflowLog, workflow_event_id: UUID
) -> list[dict[str, Any]]:
    """The raise items exactly as application/customer_care.py ``_items`` makes
    them: with ``when`` but no ``stage`` (the event carries the stage)."""
    return [
        {k: v for k, v in spec.items() if k != "stage"}
        for spec in item_specs(owner, workflow_event_id)
    ]


def test_items_made_as_the_workflow_processor_makes_them_know_their_stage() -> None:
    subscription = new_subscription()
    workflow_event_id = raise_event(subscription, "CRED", "CLR")
    specs = processor_specs(subscription, workflow_event_id)

    subscription.create_actioned_items(workflow_event_id, "raise", specs, CREATED_AT)

    wf = subscription.workflow_event(workflow_event_id)
    assert [subscription.actioned_items[i]["stage"] for i in wf["items"]] == [
        "raise",
        "raise",
    ]
    assert wf["status"] == OPEN


def test_completing_items_made_by_the_workflow_processor_resolves_the_event() -> None:
    subscription = new_subscription()
    workflow_event_id = raise_event(subscription, "BFEA", "DBAR")
    [spec] = processor_specs(subscription, workflow_event_id)
    subscription.create_actioned_items(workflow_event_id, "raise", [spec], CREATED_AT)

    subscription.run_internal_action(spec["item_id"], LATER)

    assert subscription.bars == ["DATA"]
    assert subscription.workflow_event(workflow_event_id)["status"] == RESOLVED


def test_items_made_after_their_event_was_cancelled_are_cancelled_at_once() -> None:
    subscription = new_subscription()
    workflow_event_id = raise_event(subscription, "BFEA", "DBAR", manual=["ADD1GB"])
    subscription.cancel_workflow_event(workflow_event_id, AGENT, LATER, "raised twice")
    subscription.collect_events()

    made = create_items(subscription, workflow_event_id, at=LATER)

    events = subscription.collect_events()
    assert names(events) == ["ActionedItemsCreated"] + ["ActionedItemCancelled"] * 2
    assert {e.item_id for e in events[1:]} == set(made)
    assert {(e.cancelled_by, e.reason) for e in events[1:]} == {
        ("system", "the workflow event was cancelled before this item was made")
    }
    # Nothing is left to run: the event and its items are finished.
    assert subscription.is_retired(workflow_event_id)
    assert {subscription.actioned_item(i)["status"] for i in made} == {CANCELLED}
