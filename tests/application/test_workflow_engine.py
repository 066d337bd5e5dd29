"""The workflow engine end to end on SQLite and PostgreSQL: raise → items → done."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

import application.live
from application.customer_care import Conflict, CustomerCare, Owner
from application.network import SimulatorRule
from application.platform import Platform
from tests.application.workflow_fixtures import Line, Operator


def statuses(event: dict) -> list[str]:
    return [item["status"] for item in event["items"]]


def test_a_data_bar_is_applied_and_removed(operator: Operator) -> None:
    line = operator.new_line()

    barred = operator.raise_on(line, "BFEA DBAR", note="customer asked")
    operator.settle()
    after_bar = operator.subscription(line)
    unbarred = operator.raise_on(line, "BFEA DUNB")
    operator.settle()

    bar_event = operator.event(barred)
    assert bar_event["status"] == "resolved"
    assert [i["action_code"] for i in bar_event["items"] if i["kind"] == "action"] == [
        "DBARA"
    ]
    assert set(statuses(bar_event)) == {"completed"}
    assert after_bar["bars"] == ["DATA"]
    assert operator.event(unbarred)["status"] == "resolved"
    assert operator.subscription(line)["bars"] == []


def test_an_event_cancelled_before_the_worker_got_to_it_runs_nothing(
    operator: Operator,
) -> None:
    line = operator.new_line()
    barred = operator.raise_on(line, "BFEA DBAR", "ADD1GB")
    operator.care.cancel_workflow_event(
        owner_id=line.subscription_id,
        workflow_event_id=barred,
        actor="agent-1",
        reason="raised on the wrong line",
    )

    operator.settle()

    event = operator.event(barred)
    assert event["status"] == "cancelled"
    assert sorted(i["action_code"] for i in event["items"]) == ["ADD1GB", "DBARA"]
    assert set(statuses(event)) == {"cancelled"}
    subscription = operator.subscription(line)
    assert (subscription["bars"], subscription["services"]) == ([], [])
    assert not (operator.platform.settings.home / "outbox").exists() or not any(
        (operator.platform.settings.home / "outbox").rglob("*.json")
    )


def test_the_queue_hands_out_an_event_s_items_in_the_order_of_its_actions(
    operator: Operator,
) -> None:
    # Eight events, so that item ids in the order of the actions by chance
    # (each a random uuid) would pass one time in 6**8.
    raised = [
        operator.raise_on(operator.new_line(), "CRED CLR", "ADD1GB") for _ in range(8)
    ]
    operator.care.process_pending(500)  # the items made, none dispatched yet
    operator.platform.views.catch_up()

    due = operator.platform.views.actioned_items.due(operator.clock.now())

    for workflow_event_id in raised:
        codes = [
            row["action_code"]
            for row in due
            if row["workflow_event_id"] == str(workflow_event_id)
        ]
        assert codes == ["UNBOUT", "UNBALL", "ADD1GB"]


def test_a_top_up_after_three_days_waits_for_the_clock(operator: Operator) -> None:
    line = operator.new_line(payment_type="prepaid")

    top_up = operator.raise_on(line, "TOPU SCHD")
    operator.settle()
    operator.later(timedelta(days=2, hours=23))
    waiting = operator.event(top_up)
    operator.later(timedelta(hours=1))

    assert statuses(waiting) == ["awaiting"]
    assert operator.event(top_up)["status"] == "resolved"
    assert operator.subscription(line)["prepaid_balance"] == "10.00"


def test_a_scheduled_top_up_survives_a_worker_restart(operator: Operator) -> None:
    line = operator.new_line(payment_type="prepaid")
    top_up = operator.raise_on(line, "TOPU SCHD")
    operator.settle()
    settings, clock = operator.platform.settings, operator.clock
    operator.platform.close()

    restarted = Platform(settings, clock=clock)
    try:
        clock.advance(timedelta(days=3))
        restarted.work_until_idle()
        restarted.views.catch_up()
        event = restarted.views.workflow_events.get(str(top_up))
        subscription = restarted.views.subscriptions.get(str(line.subscription_id))
    finally:
        restarted.close()

    assert event is not None and event["status"] == "resolved"
    assert subscription is not None and subscription["prepaid_balance"] == "10.00"


def test_a_new_connection_welcomes_the_customer_by_sms(operator: Operator) -> None:
    line = operator.new_line(status="pending")

    connection = operator.raise_on(line, "CONN NEW")
    operator.settle()

    event = operator.event(connection)
    assert event["status"] == "resolved"
    assert operator.subscription(line)["status"] == "active"
    [welcome] = event["linked_events"]
    welcome_event = operator.event(welcome["id"])
    assert (welcome_event["event_type"], welcome_event["event_code"]) == (
        "CONN",
        "WELC",
    )
    assert welcome_event["source"] == "linked"
    assert welcome_event["initiating_event_id"] == str(connection)
    sms_items = [i for i in welcome_event["items"] if i["channel"] == "sms"]
    outbox = operator.platform.settings.home / "outbox" / "sms"
    message = json.loads((outbox / f"{sms_items[0]['item_id']}.json").read_text())
    assert message["content"] == (
        f"Welcome to monetise mobile, Ada Lovelace! Your number is {line.msisdn}."
    )
    assert message["receiver"] == [{"phoneNumber": line.msisdn}] or message[
        "receiver"
    ] == {"phoneNumber": line.msisdn}


def test_a_network_action_failing_twice_completes_on_the_third_attempt(
    operator: Operator,
) -> None:
    line = operator.new_line()
    operator.platform.network.set_rules(
        [
            SimulatorRule(
                command="PORT_IN",
                msisdn=line.msisdn,
                outcomes=("error", "error", "success"),
                reason="donor operator busy",
            ),
        ]
    )

    port_in = operator.raise_on(line, "CONN PORT")
    operator.settle()
    first = operator.event(port_in)["items"][0]
    operator.later(timedelta(minutes=1))
    operator.later(timedelta(minutes=2))

    assert (first["status"], first["attempts"]) == ("error", 1)
    assert first["last_error"] == "donor operator busy"
    item = operator.event(port_in)["items"][0]
    assert (item["status"], item["attempts"]) == ("completed", 3)


def test_a_network_action_that_always_fails_is_dead_then_retried_by_an_agent(
    operator: Operator,
) -> None:
    line = operator.new_line()
    network = operator.platform.network
    network.set_rules(
        [
            SimulatorRule(
                command="PORT_IN", outcomes=("error",), reason="number not portable"
            )
        ]
    )
    port_in = operator.raise_on(line, "CONN PORT")
    operator.settle()
    for minutes in (1, 2, 4, 8):
        operator.later(timedelta(minutes=minutes))

    dead = operator.platform.views.actioned_items.list(status="dead")
    network.set_rules([])
    operator.care.retry_item(
        owner_id=line.subscription_id, item_id=dead[0]["item_id"], actor="agent-2"
    )
    operator.settle()

    assert [(i["action_code"], i["attempts"], i["last_error"]) for i in dead] == [
        ("PORTIN", 5, "number not portable")
    ]
    item = operator.event(port_in)["items"][0]
    assert item["status"] == "completed"
    assert operator.event(port_in)["status"] == "resolved"


def test_barring_a_disconnected_subscription_is_refused_and_nothing_recorded(
    operator: Operator,
) -> None:
    line = operator.new_line()
    operator.care.raise_workflow_event(
        owner_id=line.subscription_id,
        level="subscription",
        event_type="CRED",
        event_code="DISC",
        actor="agent-1",
    )
    operator.later(timedelta(days=14))
    assert operator.subscription(line)["status"] == "disconnected"
    recorded = operator.care.subscription(line.subscription_id).version

    with pytest.raises(Conflict, match="disconnected"):
        operator.raise_on(line, "BFEA DBAR")

    assert operator.care.subscription(line.subscription_id).version == recorded


def test_the_msisdn_of_a_disconnected_subscription_can_be_reused(
    operator: Operator,
) -> None:
    line = operator.new_line()
    with pytest.raises(Conflict, match=line.msisdn):
        operator.care.create_subscription(
            account_id=line.account_id, msisdn=line.msisdn, actor="agent-1"
        )
    operator.care.raise_workflow_event(
        owner_id=line.subscription_id,
        level="subscription",
        event_type="CRED",
        event_code="DISC",
        actor="agent-1",
    )
    operator.later(timedelta(days=14))

    reused = operator.care.create_subscription(
        account_id=line.account_id, msisdn=line.msisdn, actor="agent-1"
    )
    operator.platform.views.catch_up()

    assert operator.platform.views.subscriptions.by_msisdn(line.msisdn)["id"] == str(
        reused
    )


def test_credit_control_warns_bars_then_disconnects_and_clearing_removes_bars(
    operator: Operator,
) -> None:
    line = operator.new_line()

    operator.raise_on(line, "CRED WARN")
    operator.settle()
    operator.later(timedelta(days=7))
    barred = operator.subscription(line)
    operator.raise_on(line, "CRED CLR")
    operator.settle()

    operator.later(timedelta(days=30))

    assert barred["bars"] == ["OUTGOING"]
    cleared = operator.subscription(line)
    assert (cleared["bars"], cleared["status"]) == ([], "active")
    pending_disconnection = operator.platform.views.workflow_events.list(
        event_type="CRED", event_code="DISC"
    )
    assert [e["status"] for e in pending_disconnection] == ["cancelled"]
    sms = sorted((operator.platform.settings.home / "outbox" / "sms").glob("*.json"))
    texts = [json.loads(p.read_text())["content"] for p in sms]
    assert any("overdue" in text for text in texts)
    assert any("barred" in text for text in texts)


def test_the_processor_outpaced_by_another_writer_catches_up_before_it_retries(
    operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bulk raise elsewhere keeps writing to the subscriptions the processor
    is working on: after one collision, the processor brings its copies up to
    the store just before processing again, instead of losing every try."""
    line = operator.new_line()
    first = operator.raise_on(line, "BFEA DBAR")
    live = operator.platform.live
    reads, catches_up = live.at_least_many, live.current
    others: list[UUID] = []
    checking: list[bool] = []

    def read_then_outpaced(
        versions: Mapping[UUID, int], known: Sequence[Any] = ()
    ) -> dict[UUID, Owner]:
        copies = reads(versions, known)
        if not checking and len(others) < 5:
            # Another writer saves after each read of the owners.
            others.append(operator.raise_on(line, "BFEA DUNB"))
        return copies

    def current(owner_ids: Iterable[UUID]) -> dict[UUID, Owner]:
        checking.append(True)  # its query is the last before processing
        try:
            return catches_up(owner_ids)
        finally:
            checking.pop()

    monkeypatch.setattr(live, "at_least_many", read_then_outpaced)
    monkeypatch.setattr(live, "current", current)
    assert operator.care.process_pending(1, live) == 1
    monkeypatch.undo()

    # One collision (the first read was outpaced), then the retry succeeded.
    assert len(others) == 2
    operator.settle()
    for workflow_event in [first, *others]:
        event = operator.event(workflow_event)
        assert event["status"] == "resolved"
        assert set(statuses(event)) == {"completed"}
    assert [i["kind"] for i in operator.event(first)["items"]].count("action") == 1


def test_the_processor_continues_its_copies_with_the_events_it_processes(
    operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The events of the processor's batch bring its working copies up to
    date without a query; the store is read only when something else
    happened to a subscription in between (an agent's cancellation, say)."""
    line = operator.new_line(payment_type="prepaid")
    top_up = operator.raise_on(line, "TOPU SCHD")  # an item due in three days
    operator.settle()
    live = operator.platform.live
    read_for: list[set[UUID]] = []
    reads = application.live.events_after

    def events_after(app: Any, versions: Mapping[UUID, int]) -> Any:
        read_for.append(set(versions))
        return reads(app, versions)

    monkeypatch.setattr(application.live, "events_after", events_after)

    barred = operator.raise_on(line, "BFEA DBAR")
    assert operator.care.process_pending(500, live) == 1
    continued = [ids for ids in read_for if line.subscription_id in ids]
    [scheduled] = operator.event(top_up)["items"]
    operator.care.cancel_item(
        owner_id=line.subscription_id, item_id=scheduled["item_id"], actor="agent-1"
    )
    operator.clock.advance(timedelta(seconds=1))  # the bar is due first
    unbarred = operator.raise_on(line, "BFEA DUNB")
    read_for.clear()
    assert operator.care.process_pending(500, live) >= 1
    behind = [ids for ids in read_for if line.subscription_id in ids]
    monkeypatch.undo()
    operator.settle()

    assert continued == []
    assert len(behind) == 1
    for workflow_event in (top_up, barred, unbarred):
        assert operator.event(workflow_event)["status"] == "resolved"
    assert statuses(operator.event(top_up)) == ["cancelled"]
    assert operator.subscription(line)["bars"] == []


def bar_in_bulk(care: CustomerCare, lines: list[Line]) -> list[UUID | str]:
    """A credit-control run: BFEA DBAR raised on every line in one save."""
    return care.raise_workflow_events(
        [
            {
                "owner_id": line.subscription_id,
                "level": "subscription",
                "event_type": "BFEA",
                "event_code": "DBAR",
            }
            for line in lines
        ],
        actor="credit-control",
    )


def outpaced_when_read_with_others(
    operator: Operator, monkeypatch: pytest.MonkeyPatch, busy: list[Line]
) -> list[UUID]:
    """Another writer raises BFEA DUNB on each busy line just after every
    read of it with other owners; returns the ids it raised."""
    care = operator.care
    reads = care.owners
    interruptions: list[UUID] = []

    def read_then_outpaced(owner_ids: Iterable[UUID]) -> dict[UUID, Owner]:
        ids = set(owner_ids)
        copies = reads(ids)
        if len(ids) > 1:
            for line in busy:
                if line.subscription_id in ids:
                    interruptions.append(operator.raise_on(line, "BFEA DUNB"))
        return copies

    monkeypatch.setattr(care, "owners", read_then_outpaced)
    return interruptions


def assert_raised_and_open(
    care: CustomerCare, lines: list[Line], results: list[UUID | str]
) -> None:
    for line, raised in zip(lines, results, strict=True):
        assert isinstance(raised, UUID)
        event = care.owner(line.subscription_id).workflow_event(raised)
        assert (event["event_code"], event["status"]) == ("DBAR", "open")


def test_a_bulk_raise_colliding_on_one_line_saves_the_others_then_that_one(
    operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer changes one subscription after every read of it with
    others: the others are saved at once, and that one is raised again on
    its own."""
    lines = [operator.new_line() for _ in range(4)]
    care = operator.care
    interruptions = outpaced_when_read_with_others(operator, monkeypatch, lines[:1])
    results = bar_in_bulk(care, lines)
    monkeypatch.undo()

    assert len(interruptions) == 1
    assert_raised_and_open(care, lines, results)


def test_a_bulk_raise_that_keeps_colliding_everywhere_is_saved_in_halves(
    operator: Operator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer changes every subscription after every read of several:
    nothing of the bulk can be saved at once, so after five tries it goes in
    halves, down to each subscription alone, and loses nothing."""
    lines = [operator.new_line() for _ in range(2)]
    care = operator.care
    interruptions = outpaced_when_read_with_others(operator, monkeypatch, lines)
    results = bar_in_bulk(care, lines)
    monkeypatch.undo()

    assert len(interruptions) == 10  # 5 tries of both, each changing both
    assert_raised_and_open(care, lines, results)
