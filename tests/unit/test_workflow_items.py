"""Actioned items: sent, completed, failed, retried, dead, cancelled."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest

from domain.subscription import Subscription
from domain.workflow import (
    AWAITING,
    CANCELLED,
    COMPLETED,
    DEAD,
    ERROR,
    OPEN,
    RESOLVED,
    SENT,
    ActionedItemErrored,
    WorkflowError,
)
from tests.unit.test_workflow_events import (
    AGENT,
    LATER,
    create_items,
    names,
    new_subscription,
    raise_event,
)

RETRY_AT = LATER + timedelta(minutes=2)


def one_item(event_code: str = "DBAR") -> tuple[Subscription, UUID, str]:
    """A subscription with one open BFEA event and its single raise item.

    BFEA DBAR's DBARA allows 5 attempts; BFEA HOLD carries the same action but
    is resolved by an agent.
    """
    subscription = new_subscription()
    workflow_event_id = raise_event(subscription, "BFEA", event_code)
    [item_id] = create_items(subscription, workflow_event_id)
    subscription.collect_events()
    return subscription, workflow_event_id, item_id


def clr_item() -> tuple[Subscription, UUID, str]:
    """A CRED CLR event's UNBOUT item, which allows 3 attempts (the default)."""
    subscription = new_subscription()
    workflow_event_id = raise_event(subscription, "CRED", "CLR")
    item_id, _ = create_items(subscription, workflow_event_id)
    subscription.collect_events()
    return subscription, workflow_event_id, item_id


def send_and_fail(subscription: Subscription, item_id: str, times: int) -> None:
    for _ in range(times):
        attempt = subscription.record_item_sent(item_id, f"{item_id}:n", LATER)
        subscription.fail_item(item_id, f"attempt {attempt} failed", LATER, RETRY_AT)


# --- sending --------------------------------------------------------------------


def test_the_first_send_is_attempt_one_and_keeps_the_request_id() -> None:
    subscription, _, item_id = one_item()

    attempt = subscription.record_item_sent(item_id, "req-0001", LATER)

    item = subscription.actioned_item(item_id)
    assert attempt == 1
    assert (item["status"], item["attempts"]) == (SENT, 1)
    assert (item["request_id"], item["sent_at"]) == ("req-0001", LATER)
    assert names(subscription.collect_events()) == ["ActionedItemSent"]


def test_each_send_after_an_error_is_the_next_attempt() -> None:
    subscription, _, item_id = one_item()
    subscription.record_item_sent(item_id, "req-1", LATER)
    subscription.fail_item(item_id, "busy", LATER, RETRY_AT)

    attempt = subscription.record_item_sent(item_id, "req-2", RETRY_AT)

    item = subscription.actioned_item(item_id)
    assert attempt == 2
    assert (item["attempts"], item["request_id"], item["retry_at"]) == (
        2,
        "req-2",
        None,
    )


def test_a_sent_item_cannot_be_sent_again() -> None:
    subscription, _, item_id = one_item()
    subscription.record_item_sent(item_id, "req-1", LATER)

    with pytest.raises(WorkflowError, match="is sent"):
        subscription.record_item_sent(item_id, "req-2", LATER)


def test_completing_an_item_never_sent_counts_as_one_attempt() -> None:
    subscription, _, item_id = one_item("HOLD")

    subscription.complete_item(item_id, LATER, "done by hand")

    item = subscription.actioned_item(item_id)
    assert (item["status"], item["attempts"], item["note"]) == (
        COMPLETED,
        1,
        "done by hand",
    )


def test_a_completed_item_cannot_be_completed_or_failed_again() -> None:
    subscription, _, item_id = one_item("HOLD")
    subscription.complete_item(item_id, LATER, "done")

    with pytest.raises(WorkflowError, match="is completed"):
        subscription.complete_item(item_id, LATER, "done twice")
    with pytest.raises(WorkflowError, match="is completed"):
        subscription.fail_item(item_id, "late failure", LATER, None)


# --- failing --------------------------------------------------------------------


def test_a_failure_below_max_attempts_errors_the_item_until_its_retry_time() -> None:
    subscription, _, item_id = clr_item()
    subscription.record_item_sent(item_id, "req-1", LATER)

    subscription.fail_item(item_id, "HLR timeout", LATER, RETRY_AT)

    item = subscription.actioned_item(item_id)
    assert item["status"] == ERROR
    assert (item["attempts"], item["last_error"], item["retry_at"]) == (
        1,
        "HLR timeout",
        RETRY_AT,
    )
    *_, errored = subscription.collect_events()
    assert isinstance(errored, ActionedItemErrored)
    assert (errored.attempt, errored.retry_at) == (1, RETRY_AT)


def test_the_failure_of_the_last_allowed_attempt_makes_the_item_dead() -> None:
    subscription, workflow_event_id, item_id = clr_item()
    send_and_fail(subscription, item_id, 2)
    subscription.record_item_sent(item_id, "req-3", RETRY_AT)

    subscription.fail_item(item_id, "HLR timeout", RETRY_AT, RETRY_AT)

    item = subscription.actioned_item(item_id)
    assert (item["max_attempts"], item["attempts"]) == (3, 3)
    assert (item["status"], item["last_error"], item["retry_at"]) == (
        DEAD,
        "HLR timeout",
        None,
    )
    assert names(subscription.collect_events())[-1] == "ActionedItemDead"
    assert subscription.workflow_event(workflow_event_id)["status"] == OPEN


def test_a_failure_without_a_retry_time_makes_the_item_dead_at_once() -> None:
    subscription, _, item_id = one_item()
    subscription.record_item_sent(item_id, "req-1", LATER)

    subscription.fail_item(item_id, "subscriber unknown", LATER, None)

    item = subscription.actioned_item(item_id)
    assert (item["status"], item["attempts"], item["last_error"]) == (
        DEAD,
        1,
        "subscriber unknown",
    )


def test_a_failure_before_any_send_counts_as_the_first_attempt() -> None:
    subscription, _, item_id = one_item()

    subscription.fail_item(item_id, "not applicable", LATER, RETRY_AT)

    item = subscription.actioned_item(item_id)
    assert (item["status"], item["attempts"]) == (ERROR, 1)


def test_a_dead_item_cannot_fail_again() -> None:
    subscription, _, item_id = one_item()
    subscription.fail_item(item_id, "gone", LATER, None)

    with pytest.raises(WorkflowError, match="is dead"):
        subscription.fail_item(item_id, "gone again", LATER, None)


# --- retrying -------------------------------------------------------------------


def test_retrying_a_dead_item_makes_it_awaiting_and_due_at_the_retry() -> None:
    subscription, _, item_id = clr_item()
    send_and_fail(subscription, item_id, 3)
    assert subscription.actioned_item(item_id)["status"] == DEAD
    retried_at = RETRY_AT + timedelta(hours=1)

    subscription.retry_item(item_id, AGENT, retried_at)

    item = subscription.actioned_item(item_id)
    assert (item["status"], item["attempts"]) == (AWAITING, 0)
    assert (item["due_at"], item["retry_at"]) == (retried_at, None)
    assert subscription.record_item_sent(item_id, "req-again", retried_at) == 1


def test_retrying_an_errored_item_makes_it_due_now() -> None:
    subscription, _, item_id = one_item()
    subscription.record_item_sent(item_id, "req-1", LATER)
    subscription.fail_item(item_id, "busy", LATER, RETRY_AT + timedelta(hours=6))

    subscription.retry_item(item_id, AGENT, RETRY_AT)

    item = subscription.actioned_item(item_id)
    assert (item["status"], item["due_at"], item["retry_at"]) == (
        AWAITING,
        RETRY_AT,
        None,
    )


@pytest.mark.parametrize("state", [AWAITING, SENT, COMPLETED, CANCELLED])
def test_only_a_dead_or_errored_item_can_be_retried(state: str) -> None:
    subscription, _, item_id = one_item("HOLD")
    if state == SENT:
        subscription.record_item_sent(item_id, "req-1", LATER)
    elif state == COMPLETED:
        subscription.complete_item(item_id, LATER, "done")
    elif state == CANCELLED:
        subscription.cancel_item(item_id, AGENT, LATER, "not needed")
    subscription.collect_events()

    with pytest.raises(WorkflowError, match=f"only a dead or errored item.*{state}"):
        subscription.retry_item(item_id, AGENT, LATER)
    assert subscription.collect_events() == []


def test_a_dead_item_of_a_cancelled_event_cannot_be_retried() -> None:
    subscription, workflow_event_id, item_id = one_item()
    subscription.fail_item(item_id, "subscriber unknown", LATER, None)
    subscription.cancel_workflow_event(workflow_event_id, AGENT, LATER, "raised twice")

    with pytest.raises(WorkflowError):
        subscription.retry_item(item_id, AGENT, RETRY_AT)
    assert subscription.actioned_item(item_id)["status"] != AWAITING


# --- cancelling -----------------------------------------------------------------


def test_a_sent_item_cannot_be_cancelled() -> None:
    subscription, _, item_id = one_item()
    subscription.record_item_sent(item_id, "req-1", LATER)

    with pytest.raises(WorkflowError, match="only an item not yet sent"):
        subscription.cancel_item(item_id, AGENT, LATER, "too late")


def test_cancelling_a_dead_item_lets_the_event_resolve_itself() -> None:
    subscription, workflow_event_id, item_id = one_item()
    subscription.fail_item(item_id, "subscriber unknown", LATER, None)
    assert subscription.workflow_event(workflow_event_id)["status"] == OPEN

    subscription.cancel_item(item_id, AGENT, RETRY_AT, "given up")

    assert subscription.actioned_item(item_id)["status"] == CANCELLED
    assert subscription.workflow_event(workflow_event_id)["status"] == RESOLVED
