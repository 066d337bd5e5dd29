"""Workflow read models on SQLite and PostgreSQL: queue, events, history, parties.

Given a customer with an account and subscriptions whose workflow went through
every lifecycle step, when the views catch up, then each view shows what an
agent (or the dispatcher) expects; and the views are the same whether they
were built incrementally, rebuilt from zero, or caught up by two runners at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4, uuid5

import pytest
from eventsourcing.application import Application

from application.persistence import Database, database
from application.settings import Settings
from domain.account import Account
from domain.customer import Customer
from domain.subscription import Subscription
from domain.workflow import WorkflowLog
from projections.store import utc_text
from projections.views import Views

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=1)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


class CustomerCareLog(Application[UUID]):
    """Stands in for the customer-care application: same name, same event log."""

    name = "customer_care"


# --- building a workflow history ------------------------------------------------


def action(
    code: str, action_type: str, handler: str, description: str
) -> dict[str, Any]:
    return {
        "sequence": 10,
        "action_code": code,
        "action_type": action_type,
        "handler": handler,
        "description": description,
        "when": "raise",
    }


def raise_event(
    owner: WorkflowLog,
    event_type: str,
    event_code: str,
    description: str,
    raised_at: datetime,
    actions: list[dict[str, Any]] | None = None,
    *,
    source: str = "agent",
    raised_by: str = "agent-1",
    initiating_event_id: UUID | None = None,
    depth: int = 0,
) -> UUID:
    workflow_event_id = uuid4()
    owner.raise_workflow_event(
        workflow_event_id=workflow_event_id,
        event_type=event_type,
        event_code=event_code,
        description=description,
        note=f"note on {event_code}",
        source=source,
        raised_by=raised_by,
        raised_at=raised_at,
        initiating_event_id=initiating_event_id,
        depth=depth,
        auto_resolve=True,
        actions=actions or [],
        communications=[],
        linked_events=[],
        skipped_actions=[],
    )
    return workflow_event_id


def item(
    workflow_event_id: UUID,
    name: str,
    handler: str,
    due_at: datetime,
    *,
    action_code: str = "",
    action_type: str = "",
    parameters: dict[str, Any] | None = None,
    max_attempts: int = 3,
    channel: str | None = None,
) -> dict[str, Any]:
    communication = handler == "communication"
    return {
        "item_id": str(uuid5(workflow_event_id, name)),
        "stage": "raise",
        "kind": "communication" if communication else "action",
        "when": "raise",
        "sequence": 1_000_000 if communication else 10,
        "action_code": None if communication else action_code,
        "action_type": None if communication else action_type,
        "handler": handler,
        "description": f"{channel} WELC" if communication else f"do {name}",
        "parameters": parameters or {},
        "channel": channel,
        "template": {"code": "WELC", "body": "Hi"} if communication else None,
        "due_at": due_at,
        "max_attempts": max_attempts,
        "ignore_network_errors": False,
    }


def network(workflow_event_id: UUID, name: str, due_at: datetime, **kw: Any) -> Any:
    return item(
        workflow_event_id,
        name,
        "network",
        due_at,
        action_code="NWPROV",
        action_type="NETW",
        parameters={"command": "PROVISION"},
        **kw,
    )


def external(workflow_event_id: UUID, name: str, due_at: datetime) -> Any:
    return item(
        workflow_event_id,
        name,
        "external",
        due_at,
        action_code="EXT1",
        action_type="EXTN",
    )


@dataclass
class Story:
    """A customer, an account, three subscriptions and their workflow."""

    app: Application[UUID]
    ids: dict[str, str] = field(default_factory=dict)
    customer: Any = None
    account: Any = None
    subs: dict[str, Any] = field(default_factory=dict)

    def save(self) -> None:
        self.app.save(self.customer, self.account, *self.subs.values())

    def keep(self, name: str, value: UUID | str) -> str:
        self.ids[name] = str(value)
        return self.ids[name]

    def part_one(self) -> None:
        self.customer = Customer(
            name="Ada Lovelace",
            email="ada@example.com",
            phone="447700900001",
            language="en",
            address="1 Analytical Way",
            registered_by="agent-1",
        )
        self.account = Account(
            customer_id=self.customer.id,
            number="ACC-0001",
            account_type="CONS",
            bill_cycle_day=1,
            currency="EUR",
            opened_by="agent-1",
        )
        for name, msisdn, payment_type, status in (
            ("old", "447700900102", "postpaid", "active"),
            ("one", "447700900101", "prepaid", "active"),
        ):
            self.subs[name] = Subscription(
                account_id=self.account.id,
                customer_id=self.customer.id,
                msisdn=msisdn,
                imsi=f"2341500{msisdn[-8:]}",
                payment_type=payment_type,
                rate_plan="PAYG" if payment_type == "prepaid" else "BIZ10",
                currency="EUR",
                status=status,
                created_by="agent-1",
            )
        for name, sub in self.subs.items():
            self.keep(f"sub_{name}", sub.id)
        self.keep("account", self.account.id)
        self.keep("customer", self.customer.id)
        self.save()

        # The old subscription is disconnected: its number goes to a new one.
        old = self.subs["old"]
        e0 = raise_event(old, "CEAS", "DISC", "Disconnect", at(-30))
        disc = item(e0, "disc", "disconnect", at(-30), action_code="DISC")
        disc["parameters"] = {"reason": "ported out"}
        old.create_actioned_items(e0, "raise", [disc], at(-30))
        old.run_internal_action(disc["item_id"], at(-29))

        # A data bar and a welcome SMS on subscription one.
        one = self.subs["one"]
        e1 = raise_event(
            one,
            "BFEA",
            "DBAR",
            "Add data bar",
            T0,
            [action("DBAR01", "BAR", "bar", "Apply data bar")],
        )
        bar = item(e1, "bar", "bar", T0, action_code="DBAR01", action_type="BAR")
        bar["parameters"] = {"bar": "DATA"}
        sms = item(e1, "sms", "communication", T0, channel="sms")
        one.create_actioned_items(e1, "raise", [bar, sms], T0)
        one.run_internal_action(bar["item_id"], at(1))
        one.record_item_sent(sms["item_id"], "req-sms", at(1))
        one.complete_item(sms["item_id"], at(2), "outbox sms")
        self.keep("e1", e1)
        self.keep("bar", bar["item_id"])
        self.keep("sms", sms["item_id"])

        # An airtime top-up.
        e2 = raise_event(one, "TOPU", "PAYG", "Airtime top-up", at(5))
        top_up = item(e2, "topup", "top_up", at(5), action_code="TOP10")
        top_up["parameters"] = {"amount": "10.00"}
        one.create_actioned_items(e2, "raise", [top_up], at(5))
        one.run_internal_action(top_up["item_id"], at(5))
        self.keep("e2", e2)
        self.save()

    def part_two(self) -> None:
        one = self.subs["one"]
        # A provisioning command that fails twice, dies, and an agent retries it.
        e3 = raise_event(one, "NETW", "PROV", "Provision data", at(10))
        prov = network(e3, "prov", at(10), max_attempts=2)
        one.create_actioned_items(e3, "raise", [prov], at(10))
        one.record_item_sent(prov["item_id"], "req-p1", at(10))
        one.fail_item(prov["item_id"], "network timeout", at(11), at(20))
        one.record_item_sent(prov["item_id"], "req-p2", at(20))
        one.fail_item(prov["item_id"], "network refused", at(21), at(30))
        one.retry_item(prov["item_id"], "agent-2", at(40))
        manual = external(e3, "manual", at(120))
        one.add_manual_action(
            e3, action("EXT1", "EXTN", "external", "Call partner"), "agent-2", at(41)
        )
        one.create_actioned_items(e3, "manual", [manual], at(41))
        self.keep("e3", e3)
        self.keep("prov", prov["item_id"])
        self.keep("manual", manual["item_id"])

        # On the account: a move to VIP, a later follow-up, a refused link.
        e4 = raise_event(self.account, "ACCT", "MOVE", "Move to VIP", at(12))
        move = item(
            e4,
            "move",
            "account_type_movement",
            at(12),
            action_code="MVVIP",
            action_type="ACTM",
        )
        move["parameters"] = {"account_type": "VIP"}
        follow = external(e4, "follow", at(180))
        self.account.create_actioned_items(e4, "raise", [move, follow], at(12))
        self.account.run_internal_action(move["item_id"], at(12))
        self.account.refuse_linked_event(
            e4, "CONN", "WELC", "event code CONN WELC is not in the catalogue", at(12)
        )
        self.keep("e4", e4)
        self.keep("move", move["item_id"])
        self.keep("follow", follow["item_id"])

        # A second subscription with items in every state, linked from e4.
        sub_two = Subscription(
            account_id=self.account.id,
            customer_id=self.customer.id,
            msisdn="447700900102",
            imsi="234150000900102",
            payment_type="postpaid",
            rate_plan="BIZ10",
            currency="EUR",
            status="pending",
            created_by="agent-1",
        )
        self.subs["two"] = sub_two
        self.keep("sub_two", sub_two.id)
        e5 = raise_event(
            sub_two,
            "CRED",
            "SUSP",
            "Credit suspension",
            at(13),
            source="linked",
            raised_by="system",
            initiating_event_id=e4,
            depth=1,
        )
        items = {
            "err_due": network(e5, "err_due", at(13)),
            "err_later": network(e5, "err_later", at(13)),
            "sent": network(e5, "sent", at(13)),
            "dead": network(e5, "dead", at(13), max_attempts=1),
            "await_due": external(e5, "await_due", at(50)),
            "await_later": external(e5, "await_later", at(300)),
            "cancel": external(e5, "cancel", at(240)),
        }
        sub_two.create_actioned_items(e5, "raise", list(items.values()), at(13))
        for name, spec in items.items():
            self.keep(name, spec["item_id"])
        for name in ("err_due", "err_later", "sent", "dead"):
            sub_two.record_item_sent(self.ids[name], f"req-{name}", at(14))
        sub_two.fail_item(self.ids["err_due"], "busy", at(15), at(30))
        sub_two.fail_item(self.ids["err_later"], "busy", at(15), at(120))
        sub_two.fail_item(self.ids["dead"], "unknown IMSI", at(15), at(30))
        sub_two.cancel_item(self.ids["cancel"], "agent-1", at(16), "customer paid")
        self.keep("e5", e5)

        # Connected, then the rest of the event cancelled by an agent.
        e6 = raise_event(sub_two, "CONN", "WELC", "Welcome", at(14))
        connect = item(e6, "connect", "connect", at(14), action_code="CONN")
        later = external(e6, "later", at(600))
        sub_two.create_actioned_items(e6, "raise", [connect, later], at(14))
        sub_two.run_internal_action(connect["item_id"], at(14))
        sub_two.cancel_workflow_event(e6, "agent-1", at(17), "raised by mistake")
        self.keep("e6", e6)
        self.keep("connect", connect["item_id"])
        self.keep("later", later["item_id"])

        self.save()
        # Last, in a save of its own: an event that only the customers view reads.
        self.customer.change_contact_details(
            {"email": "ada@lovelace.example"}, "agent-1"
        )
        self.app.save(self.customer)


# --- fixtures and helpers ---------------------------------------------------------


@pytest.fixture
def db(settings: Settings) -> Database:
    return database(settings)


def open_app(db: Database) -> CustomerCareLog:
    return CustomerCareLog(env=db.eventsourcing_env("customer_care"))


@pytest.fixture
def app(db: Database) -> Iterator[CustomerCareLog]:
    care = open_app(db)
    yield care
    care.close()


@pytest.fixture
def views(app: CustomerCareLog, db: Database) -> Iterator[Views]:
    opened = Views(app, db)
    yield opened
    opened.close()


@pytest.fixture
def story(app: CustomerCareLog) -> Story:
    story = Story(app)
    story.part_one()
    story.part_two()
    return story


def dump(views: Views) -> dict[str, list[dict[str, Any]]]:
    """Every row of every view table and of the tracking table, in key order."""
    tables = [t for p in views.projections for t in p.tables]
    contents = {}
    with views.db.read() as tx:
        for table in tables:
            contents[table.name] = tx.fetchall(
                f"SELECT * FROM {table.name} ORDER BY {', '.join(table.key)}"  # noqa: S608
            )
        contents["view_tracking"] = tx.fetchall(
            "SELECT * FROM view_tracking ORDER BY projection"
        )
    return contents


def status(row: dict[str, Any] | None) -> str:
    assert row is not None
    return str(row["status"])


def relevant(app: Application[UUID], topics: tuple[str, ...]) -> list[int]:
    """Notification ids of the events a projection reads."""
    notifications = app.recorder.select_notifications(
        start=None, limit=100_000, topics=list(topics)
    )
    return [n.id for n in notifications]


# --- what users see ---------------------------------------------------------------


def test_the_queue_shows_each_item_in_the_state_its_events_left_it(
    story: Story, views: Views
) -> None:
    views.catch_up()
    ids = story.ids
    queue = views.actioned_items

    expected = {
        "bar": "completed",
        "sms": "completed",
        "prov": "awaiting",
        "manual": "awaiting",
        "move": "completed",
        "follow": "awaiting",
        "err_due": "error",
        "err_later": "error",
        "sent": "sent",
        "dead": "dead",
        "await_due": "awaiting",
        "await_later": "awaiting",
        "cancel": "cancelled",
        "connect": "completed",
        "later": "cancelled",
    }
    assert {name: status(queue.get(ids[name])) for name in expected} == expected
    prov = queue.get(ids["prov"])
    assert prov is not None
    assert prov["attempts"] == 0
    assert prov["last_error"] == "network refused"
    assert prov["due_at"] == utc_text(at(40))
    assert prov["event_type"] == "NETW" and prov["event_code"] == "PROV"
    assert prov["owner_kind"] == "subscription"
    assert prov["subscription_id"] == ids["sub_one"]
    assert prov["parameters"] == {"command": "PROVISION"}
    err = queue.get(ids["err_due"])
    assert err is not None
    assert (err["attempts"], err["last_error"], err["retry_at"]) == (
        1,
        "busy",
        "2024-05-01T09:30:00.000000+00:00",
    )
    move = queue.get(ids["move"])
    assert move is not None
    assert move["owner_kind"] == "account" and move["account_id"] == ids["account"]
    assert move["subscription_id"] is None
    assert move["note"] == "account type moved from CONS to VIP"
    assert queue.owner_of_item(ids["move"]) == ("account", ids["account"])
    assert queue.owner_of_item(ids["sent"]) == ("subscription", ids["sub_two"])
    assert queue.owner_of_item("no-such-item") is None
    assert queue.counts() == {
        "awaiting": 5,
        "completed": 6,
        "error": 2,
        "sent": 1,
        "dead": 1,
        "cancelled": 2,
    }
    listed = queue.list(status="error", subscription_id=ids["sub_two"])
    assert {row["item_id"] for row in listed} == {ids["err_due"], ids["err_later"]}
    assert len(queue.list(due_before=at(13), action_type="NETW")) == 4
    assert queue.list(due_before=at(12), action_type="NETW") == []
    assert len(queue.list(limit=3)) == 3
    assert len(queue.list(limit=100, offset=15)) == 2


def test_due_returns_the_due_awaiting_items_and_the_errors_whose_retry_time_passed(
    story: Story, views: Views
) -> None:
    views.catch_up()
    queue = views.actioned_items
    ids = story.ids

    due = queue.due(NOW)

    # err_due retries at 09:30, the retried item is due at 09:40, await_due 09:50.
    assert [row["item_id"] for row in due] == [
        ids["err_due"],
        ids["prov"],
        ids["await_due"],
    ]
    assert [row["item_id"] for row in queue.due(NOW, limit=2)] == [
        ids["err_due"],
        ids["prov"],
    ]
    assert queue.due(at(29)) == []
    assert {row["item_id"] for row in queue.due(at(120))} == {
        ids["err_due"],
        ids["prov"],
        ids["await_due"],
        ids["manual"],
        ids["err_later"],
    }


def test_sent_before_finds_the_items_waiting_too_long_for_a_response(
    story: Story, views: Views
) -> None:
    views.catch_up()
    queue = views.actioned_items

    assert [r["item_id"] for r in queue.sent_before(at(20))] == [story.ids["sent"]]
    assert [r["item_id"] for r in queue.sent_before(at(20), "network")] == [
        story.ids["sent"]
    ]
    assert queue.sent_before(at(20), "communication") == []
    assert queue.sent_before(at(14)) == []


def test_workflow_events_show_their_status_items_and_linked_events(
    story: Story, views: Views
) -> None:
    views.catch_up()
    events = views.workflow_events
    ids = story.ids

    e1 = events.get(ids["e1"])
    assert e1 is not None
    assert (e1["status"], e1["resolved_by"], e1["resolved_automatically"]) == (
        "resolved",
        "system",
        True,
    )
    assert e1["owner_kind"] == "subscription" and e1["owner_id"] == ids["sub_one"]
    assert e1["actions"][0]["action_code"] == "DBAR01"
    assert [i["item_id"] for i in e1["items"]] == [ids["bar"], ids["sms"]]
    e4 = events.get(ids["e4"])
    assert e4 is not None
    assert e4["status"] == "open"
    assert [linked["id"] for linked in e4["linked_events"]] == [ids["e5"]]
    e5 = events.get(ids["e5"])
    assert e5 is not None
    assert (e5["initiating_event_id"], e5["depth"], e5["source"]) == (
        ids["e4"],
        1,
        "linked",
    )
    e6 = events.get(ids["e6"])
    assert e6 is not None
    assert (e6["status"], e6["cancelled_by"], e6["cancel_reason"]) == (
        "cancelled",
        "agent-1",
        "raised by mistake",
    )
    e3 = events.get(ids["e3"])
    assert e3 is not None
    assert [a["action_code"] for a in e3["actions"]] == ["EXT1"]
    assert events.owner_of(ids["e4"]) == ("account", ids["account"])
    assert events.owner_of(uuid4()) is None
    assert events.get(uuid4()) is None
    assert [e["event_code"] for e in events.for_owner(ids["sub_one"])] == [
        "DBAR",
        "PAYG",
        "PROV",
    ]
    assert [e["event_code"] for e in events.for_owner(ids["sub_one"], "open")] == [
        "PROV"
    ]
    assert {e["event_code"] for e in events.list(status="open")} == {
        "PROV",
        "MOVE",
        "SUSP",
    }


def test_the_history_tells_what_happened_to_a_subscription_in_order(
    story: Story, views: Views
) -> None:
    views.catch_up()

    history = views.workflow_events.history(story.ids["sub_one"], limit=1000)

    assert [entry["kind"] for entry in history] == [
        "event raised",
        "item created",
        "item created",
        "bar applied",
        "item completed",
        "item sent",
        "item completed",
        "event resolved",
        "event raised",
        "item created",
        "topped up",
        "item completed",
        "event resolved",
        "event raised",
        "item created",
        "item sent",
        "item error",
        "item sent",
        "item dead",
        "item retried",
        "action added",
        "item created",
    ]
    summaries = [entry["summary"] for entry in history]
    assert summaries[0] == "BFEA DBAR raised by agent-1: Add data bar"
    assert summaries[3] == "DATA bar applied"
    assert summaries[4] == (
        "BFEA DBAR: action DBAR01 (do bar) completed: DATA bar applied"
    )
    assert summaries[7] == "BFEA DBAR resolved automatically"
    assert summaries[10] == "topped up 10.00 EUR; balance 10.00"
    assert summaries[16] == (
        "NETW PROV: action NWPROV (do prov) failed on attempt 1: network timeout; "
        "retry at 2024-05-01T09:20:00.000000+00:00"
    )
    assert history[3]["workflow_event_id"] == story.ids["e1"]
    assert history[3]["item_id"] == story.ids["bar"]
    assert history[3]["detail"]["bar"] == "DATA"
    assert history[0]["at"] == "2024-05-01T09:00:00.000000+00:00"
    page = views.workflow_events.history(story.ids["sub_one"], limit=5, offset=3)
    assert page == history[3:8]

    account = views.workflow_events.history(story.ids["account"])
    assert [entry["kind"] for entry in account] == [
        "event raised",
        "item created",
        "item created",
        "account type moved",
        "item completed",
        "linked event refused",
    ]
    assert account[5]["summary"] == (
        "ACCT MOVE: linked event CONN WELC refused: "
        "event code CONN WELC is not in the catalogue"
    )
    kinds_two = [e["kind"] for e in views.workflow_events.history(story.ids["sub_two"])]
    assert kinds_two[-4:] == [
        "item created",
        "connected",
        "item completed",
        "event cancelled",
    ]
    assert "item cancelled" in kinds_two
    old = views.workflow_events.history(story.ids["sub_old"])
    assert "disconnected: ported out" in [e["summary"] for e in old]


def test_subscriptions_accounts_and_customers_are_listed_as_they_are_now(
    story: Story, views: Views
) -> None:
    views.catch_up()
    ids = story.ids

    one = views.subscriptions.get(ids["sub_one"])
    assert one is not None
    assert (one["bars"], one["services"], one["prepaid_balance"]) == (
        ["DATA"],
        [],
        "10.00",
    )
    assert (one["msisdn"], one["payment_type"], one["status"]) == (
        "447700900101",
        "prepaid",
        "active",
    )
    assert one["account_id"] == ids["account"]
    # The number of the disconnected subscription now belongs to the new one.
    reused = views.subscriptions.by_msisdn("447700900102")
    assert reused is not None and reused["id"] == ids["sub_two"]
    assert reused["status"] == "active"
    old = views.subscriptions.get(ids["sub_old"])
    assert old is not None and old["status"] == "disconnected"
    assert views.subscriptions.by_msisdn("447700900999") is None
    listed = views.subscriptions.list(account_id=ids["account"])
    assert {s["id"] for s in listed} == {ids["sub_old"], ids["sub_one"], ids["sub_two"]}

    account = views.accounts.get(ids["account"])
    assert account is not None
    assert (account["number"], account["account_type"], account["currency"]) == (
        "ACC-0001",
        "VIP",
        "EUR",
    )
    assert account["bill_cycle_day"] == 1
    assert views.accounts.by_number("ACC-0001") == account
    assert views.accounts.list(customer_id=ids["customer"]) == [account]

    customer = views.customers.get(ids["customer"])
    assert customer is not None
    assert (customer["name"], customer["email"], customer["language"]) == (
        "Ada Lovelace",
        "ada@lovelace.example",
        "en",
    )
    assert views.customers.list() == [customer]


# --- how the views are kept ---------------------------------------------------------


def test_catching_up_again_changes_nothing(story: Story, views: Views) -> None:
    assert views.catch_up() > 0
    before = dump(views)

    assert views.catch_up() == 0
    assert dump(views) == before


def test_the_tracking_position_is_the_last_notification_each_view_reads(
    story: Story, views: Views
) -> None:
    views.catch_up()

    status = views.status()

    last = story.app.recorder.max_notification_id()
    for name, runner in views.runners.items():
        assert runner.position() == relevant(story.app, runner.projection.topics)[-1]
        assert status[name]["position"] == runner.position()
        assert status[name]["lag"] == 0
        assert status[name]["max_notification_id"] == last
    # The last save ended with a contact change: only the customers view read it.
    assert views.runners["customers_v1"].position() == last
    assert views.runners["subscriptions_v1"].position() < last


def test_a_rebuild_gives_the_same_rows_as_incremental_processing(
    app: CustomerCareLog, views: Views
) -> None:
    # Small batches split the history of one item over several transactions.
    story = Story(app)
    story.part_one()
    views.catch_up(batch=5)
    story.part_two()
    views.catch_up(batch=7)
    incremental = dump(views)

    applied = views.rebuild()

    assert applied == sum(len(relevant(app, p.topics)) for p in views.projections)
    assert dump(views) == incremental
    views.rebuild("actioned_items")
    assert dump(views) == incremental


def test_two_runners_catching_up_at_once_apply_each_event_once(
    story: Story, views: Views, db: Database
) -> None:
    # Two processes (say the API and the worker): own apps, own connections.
    apps = [open_app(db), open_app(db)]
    runners = [Views(app, db) for app in apps]
    start = threading.Barrier(2)
    applied: list[int] = []

    def catch_up(views: Views) -> None:
        start.wait()
        applied.append(views.catch_up(batch=3))

    threads = [threading.Thread(target=catch_up, args=(v,)) for v in runners]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        concurrent = dump(views)
    finally:
        for opened in runners:
            opened.close()
        for care in apps:
            care.close()

    expected = {p.name: len(relevant(story.app, p.topics)) for p in views.projections}
    assert sum(applied) == sum(expected.values())
    history = concurrent["view_workflow_history"]
    assert len({(row["position"], row["seq"]) for row in history}) == len(history)
    views.rebuild()
    assert dump(views) == concurrent


def test_a_runner_overtaken_between_reading_the_log_and_locking_applies_nothing(
    story: Story, views: Views, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    other_app = open_app(db)
    other = Views(other_app, db)
    runner = views.runner("actioned_items")
    apply = runner._apply
    overtaken: list[int] = []

    def overtake(events: Any) -> Any:
        # The other process catches up after this runner read the log.
        if not overtaken:
            overtaken.append(other.runner("actioned_items").catch_up())
        return apply(events)

    monkeypatch.setattr(runner, "_apply", overtake)
    try:
        assert runner.catch_up() == 0
    finally:
        other.close()
        other_app.close()

    queue_events = relevant(story.app, runner.projection.topics)
    assert overtaken == [len(queue_events)]
    assert runner.position() == queue_events[-1]
    assert views.actioned_items.counts()["completed"] == 6


def test_a_batch_that_fails_leaves_neither_rows_nor_position_behind(
    story: Story, views: Views, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = views.actioned_items
    process_batch = queue.process_batch

    def crash(tx: Any, events: Any) -> None:
        process_batch(tx, events)  # rows written, then the process dies
        raise RuntimeError("power cut")

    monkeypatch.setattr(queue, "process_batch", crash)
    with pytest.raises(RuntimeError):
        views.runner("actioned_items").catch_up()

    assert views.runner("actioned_items").position() == 0
    assert queue.counts() == {}
    monkeypatch.undo()
    assert views.runner("actioned_items").catch_up() > 0
    assert sum(queue.counts().values()) == 17


def emails(views: Views) -> list[str]:
    return [customer["email"] for customer in views.customers.list()]


def test_a_polling_worker_keeps_the_views_up_to_date(
    app: CustomerCareLog, views: Views
) -> None:
    story = Story(app)
    stop = threading.Event()
    worker = threading.Thread(target=views.run_forever, args=(stop, 0.02))
    worker.start()
    try:
        story.part_one()
        story.part_two()
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        # The contact change is the last event saved.
        while emails(views) != ["ada@lovelace.example"]:
            assert datetime.now(UTC) < deadline, "the worker did not catch up"
            stop.wait(0.02)
    finally:
        stop.set()
        worker.join(timeout=30)

    assert all(s["up_to_date"] for s in views.status().values())
    assert sum(views.actioned_items.counts().values()) == 17


def test_a_runner_reads_again_the_rows_another_runner_changed_since_its_last_batch(
    app: CustomerCareLog, views: Views, db: Database
) -> None:
    # Given this runner applied the first part, keeping the rows it touched
    story = Story(app)
    story.part_one()
    views.catch_up()
    one = story.subs["one"]

    def bar_change(code: str, handler: str, bar: str, minute: int) -> None:
        workflow_event_id = raise_event(one, "BFEA", code, code, at(minute))
        change = item(workflow_event_id, code, handler, at(minute), action_code=code)
        change["parameters"] = {"bar": bar}
        one.create_actioned_items(workflow_event_id, "raise", [change], at(minute))
        one.run_internal_action(change["item_id"], at(minute))
        story.save()

    # When another process applies a change to the same subscription
    bar_change("DUNB", "unbar", "DATA", 50)
    other_app = open_app(db)
    other = Views(other_app, db)
    try:
        assert other.catch_up() > 0
    finally:
        other.close()
        other_app.close()
    # and this runner applies the next change
    bar_change("ABAR", "bar", "ALL", 51)
    views.catch_up()

    # Then its rows hold both changes, as a rebuild from the events gives them
    assert views.subscriptions.get(story.ids["sub_one"])["bars"] == ["ALL"]
    incremental = dump(views)
    views.rebuild()
    assert dump(views) == incremental


def test_a_row_added_again_for_a_key_already_stored_replaces_the_stored_one(
    views: Views,
) -> None:
    from projections.queue import ITEM_EVENTS
    from projections.runner import BatchRows

    def row(n: int, code: str) -> dict[str, Any]:
        return {
            "workflow_event_id": f"wf-{n}",
            "owner_kind": "subscription",
            "owner_id": "sub-1",
            "event_type": "BFEA",
            "event_code": code,
        }

    with views.db.transaction() as tx:
        first = BatchRows(tx, ITEM_EVENTS)
        first.add(row(7, "DBAR"))
        first.flush()
    # A batch of new rows (enough to be copied straight in) with one old key.
    with views.db.transaction() as tx:
        again = BatchRows(tx, ITEM_EVENTS)
        for n in range(40):
            again.add(row(n, "DUNB"))
        again.flush()

    with views.db.read() as tx:
        rows = tx.fetchall("SELECT * FROM view_actioned_item_events")
    assert len(rows) == 40
    assert {r["event_code"] for r in rows} == {"DUNB"}
