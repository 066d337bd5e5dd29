"""A worker that leaves the read models to another process (`monetise worker
--no-views` beside `monetise projections follow`), on SQLite and PostgreSQL.

The worker here never catches up the views itself, except the few it must not
read stale; "the other process" is a second platform on the same database.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from application.customer_care import Owner
from application.network import SimulatorRule
from application.platform import Platform
from tests.application.workflow_fixtures import Line, Operator


@pytest.fixture
def follower(operator: Operator) -> Iterator[Platform]:
    """The process that keeps the read models up to date."""
    platform = Platform(operator.platform.settings, clock=operator.clock)
    try:
        yield platform
    finally:
        platform.close()


def work_apart(operator: Operator, rounds: int = 50) -> None:
    """Background rounds of a worker without the read models, until idle."""
    platform = operator.platform
    platform.dispatcher.views_apart = True
    for _ in range(rounds):
        if not platform.work():
            return
    raise AssertionError(f"still busy after {rounds} rounds")


def positions(platform: Platform) -> dict[str, int]:
    return {name: r.position() for name, r in platform.views.runners.items()}


def workflow_status(operator: Operator, line: Line, workflow_event_id: UUID) -> str:
    subscription = operator.care.subscription(line.subscription_id)
    return str(subscription.workflow_event(workflow_event_id)["status"])


def test_new_items_are_done_before_any_read_model_shows_them(
    operator: Operator, follower: Platform
) -> None:
    line = operator.new_line(status="pending")
    before = positions(operator.platform)

    connection = operator.raise_on(line, "CONN NEW")
    work_apart(operator)

    # Done, as the subscription's own events tell: connected, the event
    # resolved, the linked welcome raised and its SMS written...
    subscription = operator.care.subscription(line.subscription_id)
    assert subscription.status == "active"
    assert workflow_status(operator, line, connection) == "resolved"
    [message_file] = (operator.platform.settings.home / "outbox" / "sms").iterdir()
    message = json.loads(message_file.read_text())
    # ...with the customer's name, though the customer was registered a moment
    # ago: the directory views were caught up for the template, no others.
    assert message["content"] == (
        f"Welcome to monetise mobile, Ada Lovelace! Your number is {line.msisdn}."
    )
    after = positions(operator.platform)
    for name in ("actioned_items_v1", "workflow_events_v1", "subscriptions_v1"):
        assert after[name] == before[name], name
    # The other process shows it all once it catches up.
    follower.views.catch_up()
    event = follower.views.workflow_events.get(str(connection))
    assert event is not None and event["status"] == "resolved"
    assert {item["status"] for item in event["items"]} == {"completed"}
    [welcome] = event["linked_events"]
    welcome_event = follower.views.workflow_events.get(welcome["id"])
    assert welcome_event is not None and welcome_event["status"] == "resolved"
    shown = follower.views.subscriptions.get(str(line.subscription_id))
    assert shown is not None and shown["status"] == "active"


def test_a_scheduled_top_up_is_found_in_the_queue_the_other_process_keeps(
    operator: Operator, follower: Platform
) -> None:
    line = operator.new_line(payment_type="prepaid")
    top_up = operator.raise_on(line, "TOPU SCHD")
    work_apart(operator)
    follower.views.catch_up()

    operator.clock.advance(timedelta(days=2, hours=23))
    work_apart(operator)
    waiting = workflow_status(operator, line, top_up)
    operator.clock.advance(timedelta(hours=1))
    work_apart(operator)

    assert waiting == "open"
    assert workflow_status(operator, line, top_up) == "resolved"
    balance = operator.care.subscription(line.subscription_id).prepaid_balance
    assert balance == Decimal("10.00")


def test_a_dead_item_retried_by_an_agent_is_dispatched_again(
    operator: Operator, follower: Platform
) -> None:
    line = operator.new_line()
    network = operator.platform.network
    network.set_rules(
        [SimulatorRule(command="PORT_IN", outcomes=("error",), reason="not portable")]
    )
    port_in = operator.raise_on(line, "CONN PORT")
    work_apart(operator)
    for minutes in (1, 2, 4, 8):
        follower.views.catch_up()
        operator.clock.advance(timedelta(minutes=minutes))
        work_apart(operator)
    follower.views.catch_up()
    [dead] = follower.views.actioned_items.list(status="dead")

    network.set_rules([])
    # An agent's retry, saved by the API's process (here: the other platform).
    follower.care.retry_item(
        owner_id=line.subscription_id, item_id=dead["item_id"], actor="agent-2"
    )
    follower.views.catch_up()
    work_apart(operator)

    assert dead["attempts"] == 5
    assert workflow_status(operator, line, port_in) == "resolved"
    follower.views.catch_up()
    event = follower.views.workflow_events.get(str(port_in))
    assert event is not None
    assert [(i["status"], i["attempts"]) for i in event["items"]] == [("completed", 1)]


def test_a_network_answer_to_an_item_sent_before_a_restart_is_recorded(
    operator: Operator, follower: Platform
) -> None:
    line = operator.new_line()
    operator.platform.network.set_rules(
        [SimulatorRule(command="PORT_IN", delay=timedelta(minutes=5))]
    )
    port_in = operator.raise_on(line, "CONN PORT")
    work_apart(operator)  # sent; the answer comes in five minutes
    settings, clock = operator.platform.settings, operator.clock
    operator.platform.close()

    restarted = Operator(Platform(settings, clock=clock), clock)
    try:
        clock.advance(timedelta(minutes=5))
        # Neither the restarted worker nor the queue view knew the item yet:
        # the queue view is caught up for the answer's owner.
        work_apart(restarted)
        status = workflow_status(restarted, line, port_in)
    finally:
        restarted.platform.close()

    assert status == "resolved"
    follower.views.catch_up()
    event = follower.views.workflow_events.get(str(port_in))
    assert event is not None
    assert [(i["status"], i["attempts"]) for i in event["items"]] == [("completed", 1)]


def take_new_items(platform: Platform) -> Callable[[list[tuple[UUID, str]]], None]:
    platform.dispatcher.views_apart = True
    return platform.dispatcher.take_new_items


def outpaced_once(
    monkeypatch: pytest.MonkeyPatch, platform: Platform, other: Platform, line: Line
) -> list[UUID]:
    """An agent's raise on ``line`` (by the other process) lands just after
    the worker's next read of its working copies; returns its id, once raised."""
    live = platform.live
    reads = live.current
    raised: list[UUID] = []

    def read_then_outpaced(owner_ids: Iterable[UUID]) -> dict[UUID, Owner]:
        copies = reads(owner_ids)
        if not raised:
            raised.append(
                other.care.raise_workflow_event(
                    owner_id=line.subscription_id,
                    level="subscription",
                    event_type="BFEA",
                    event_code="DUNB",
                    note="",
                    manual_actions=(),
                    actor="agent-2",
                )
            )
        return copies

    monkeypatch.setattr(live, "current", read_then_outpaced)
    return raised


def test_a_collision_sends_back_only_the_items_of_the_subscription_changed(
    operator: Operator, follower: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer saves to one subscription between the dispatcher's read
    and its save: the other subscriptions' items are done, and that one's
    item is taken again next round (handed over again: nobody has caught up
    the queue view)."""
    lines = [operator.new_line() for _ in range(3)]
    barred = [operator.raise_on(line, "BFEA DBAR") for line in lines]
    platform = operator.platform
    assert platform.care.process_pending(500, platform.live, take_new_items(platform))
    notes = outpaced_once(monkeypatch, platform, follower, lines[0])
    collided = platform.dispatcher.dispatch_due()
    after_collision = [
        workflow_status(operator, line, event)
        for line, event in zip(lines, barred, strict=True)
    ]
    taken = platform.dispatcher.dispatch_due()
    monkeypatch.undo()
    work_apart(operator)

    assert (collided, taken) == (3, 1)
    assert after_collision == ["open", "resolved", "resolved"]
    for line, event in zip(lines, barred, strict=True):
        assert workflow_status(operator, line, event) == "resolved"
    follower.views.catch_up()
    assert [
        follower.views.workflow_events.get(str(e))["status"]  # type: ignore[index]
        for e in (*barred, *notes)
    ] == ["resolved"] * 4


def test_a_network_request_leaves_once_and_only_once_its_sending_is_saved(
    operator: Operator, follower: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [operator.new_line() for _ in range(3)]
    port_ins = [operator.raise_on(line, "CONN PORT") for line in lines]
    platform = operator.platform
    network = platform.network
    assert platform.care.process_pending(500, platform.live, take_new_items(platform))
    outpaced_once(monkeypatch, platform, follower, lines[0])
    platform.dispatcher.dispatch_due()
    submitted_in_the_collision = network.submission_counts()
    monkeypatch.undo()
    work_apart(operator)

    # The colliding line's request did not leave with the others...
    follower.views.catch_up()
    colliding = follower.views.workflow_events.get(str(port_ins[0]))
    assert colliding is not None
    [item] = colliding["items"]
    assert sorted(submitted_in_the_collision.values()) == [1, 1]
    assert not [r for r in submitted_in_the_collision if item["item_id"] in r]
    # ...and each left once in the end, every port-in done.
    assert sorted(network.submission_counts().values()) == [1, 1, 1]
    for line, event in zip(lines, port_ins, strict=True):
        assert workflow_status(operator, line, event) == "resolved"
