"""Every stored event keeps a stable topic and version, and survives storage."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.utils import get_topic, resolve_topic

import domain.workflow
from domain.account import Account
from domain.catalogue.aggregate import Catalogue
from domain.customer import Customer
from domain.numbers import NumberAllocation
from domain.raising import manual_action, resolve_action
from domain.rating.book import TariffCatalogue
from domain.rerating import RerateRun
from domain.subscription import PENDING, Subscription
from domain.usage_batch import UsageBatch
from domain.workflow import WORKFLOW_EVENT_CLASSES, WorkflowLog
from tests.unit.test_event_topics import declared_by
from tests.unit.test_raising import workflow_view
from tests.unit.test_workflow_events import (
    AGENT,
    LATER,
    create_items,
    item_of,
    raise_event,
    unsaved_subscription,
)

AGGREGATES: tuple[type[Aggregate], ...] = (
    Subscription,
    Account,
    Customer,
    NumberAllocation,
    UsageBatch,
    TariffCatalogue,
    RerateRun,
)


def nested_event_classes(aggregate: type[Aggregate]) -> list[type]:
    """The event classes an aggregate declares (as its metaclass re-made them)."""
    return [
        value
        for name, value in vars(aggregate).items()
        if isinstance(value, type)
        and issubclass(value, CanMutateAggregate)
        and name != "Event"  # the base class: never stored itself
    ]


def stored_event_classes(aggregate: type[Aggregate]) -> list[type]:
    shared = list(WORKFLOW_EVENT_CLASSES) if issubclass(aggregate, WorkflowLog) else []
    return nested_event_classes(aggregate) + shared


def every_stored_event_class() -> list[type]:
    classes: list[type] = []
    for aggregate in AGGREGATES:
        classes += [c for c in stored_event_classes(aggregate) if c not in classes]
    return classes


def in_memory_application() -> Application[Any]:
    return Application(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


# --- a history using every command ----------------------------------------------------


def subscription_with_every_kind_of_event() -> Subscription:
    """A prepaid subscription's life, touching every event it can record.

    Nothing is collected: the whole history is still pending, ready to save.
    """
    subscription = unsaved_subscription(status=PENDING)
    new = raise_event(subscription, "CONN", "NEW", note="new line")
    create_items(subscription, new)
    provision = item_of(subscription, new, "PROV")
    subscription.record_item_sent(provision, f"{provision}:1", LATER)
    subscription.fail_item(provision, "busy", LATER, LATER + timedelta(minutes=1))
    subscription.retry_item(provision, AGENT, LATER + timedelta(minutes=1))
    subscription.record_item_sent(provision, f"{provision}:1b", LATER)
    subscription.fail_item(provision, "subscriber exists", LATER, None)
    subscription.cancel_item(provision, AGENT, LATER, "provisioned by hand")
    subscription.run_internal_action(item_of(subscription, new, "CONNCT"), LATER)
    subscription.refuse_linked_event(new, "CONN", "WELC", "template missing", LATER)

    for event_type, event_code in (
        ("BFEA", "DBAR"),
        ("BFEA", "DUNB"),
        ("SERV", "ADDO"),
        ("SERV", "REMO"),
    ):
        workflow_event_id = raise_event(subscription, event_type, event_code)
        [item_id] = create_items(subscription, workflow_event_id)
        subscription.run_internal_action(item_id, LATER)

    top_up = raise_event(subscription, "TOPU", "AIRT", manual=["TOP005"])
    for item_id in create_items(subscription, top_up):
        subscription.run_internal_action(item_id, LATER)
    batch_id = uuid4()
    subscription.charge_prepaid_usage(batch_id, 0, Decimal("0.25"), 2)
    assert not subscription.charge_prepaid_usage(batch_id, 0, Decimal("0.25"), 2)
    subscription.charge_prepaid_usage(batch_id, 1, Decimal("0.25"), 1)

    view = workflow_view()
    hold = raise_event(subscription, "BFEA", "HOLD")
    create_items(subscription, hold)
    extra = resolve_action(
        view, manual_action(view, "subscription", "ADD1GB"), "raise", 20, manual=True
    )
    subscription.add_manual_action(hold, extra, AGENT, LATER)
    subscription.cancel_workflow_event(hold, AGENT, LATER, "raised by mistake")

    disconnect = raise_event(subscription, "CRED", "DISC")
    [item_id] = create_items(subscription, disconnect)
    subscription.run_internal_action(item_id, LATER)
    return subscription


def account_with_every_kind_of_event() -> Account:
    account = Account(
        customer_id=uuid4(),
        number="ACC-000123",
        account_type="CONS",
        bill_cycle_day=28,
        currency="GBP",
        opened_by=AGENT,
    )
    move = raise_event(account, "ACCT", "BUSN")
    [item_id] = create_items(account, move)
    account.run_internal_action(item_id, LATER)
    create_items(account, move, "resolve")
    return account


def customer_with_every_kind_of_event() -> Customer:
    customer = Customer(
        name="Ada Lovelace",
        email="ada@example.org",
        phone="+447700900123",
        language="en",
        address="12 St James's Square, London",
        registered_by=AGENT,
    )
    customer.change_contact_details({"email": "ada@example.com"}, AGENT)
    return customer


def batches_with_every_kind_of_event() -> UsageBatch:
    """A rated batch loaded, completed and reprocessed (and one failed)."""
    batch = UsageBatch(
        file_name="OCS1-1.json",
        sha256="ab" * 32,
        size=100,
        kind="rated",
        directory="rated",
        key_id=None,
        received_by="load-rated-usage",
    )
    chunk = batch.stage(['{"record_id": "R1"}'])
    rejection = [0, "R1", "configuration", "unknown_msisdn", "no", "/records/0/msisdn"]
    batch.record_outcomes(chunk, [], [], [rejection])
    batch.complete("OCS1-1", "OCS1", LATER, 1)
    run = batch.start_reprocessing()
    batch.record_outcomes(chunk, [0], [], [rejection], run=run)
    batch.finish_reprocessing(run, AGENT)
    batch.fail("not_json", "only to record the event", "")
    return batch


def rerate_run_with_every_kind_of_event() -> RerateRun:
    """A rerate that corrected one record and refused another."""
    run = RerateRun(
        usage_class="VOICE_NAT", period_from=LATER, period_to=None, requested_by="ops"
    )
    correction = ["R1", "B1", "postpaid", "S1", "0.2583", "0.4667", "0.2084"]
    run.correct([[*correction, None, None, '{"charge": "0.4667"}']], 2)
    run.refuse("R2", "no_rate", "no rate for usage class VOICE_NAT at home")
    run.complete()
    died = RerateRun(
        usage_class="VOICE_NAT", period_from=None, period_to=None, requested_by="ops"
    )
    died.correct([[*correction, None, None, '{"charge": "0.4667"}']], 2)
    died.interrupt(prepaid_charged=0)
    return _Runs(run, died)  # type: ignore[return-value]


class _Runs:
    """Runs whose events together are every kind (a run completes or is
    interrupted, never both)."""

    def __init__(self, *runs: RerateRun):
        self.runs = runs

    def collect_events(self) -> list[Any]:
        return [event for run in self.runs for event in run.collect_events()]


def allocation_with_every_kind_of_event() -> NumberAllocation:
    first = uuid4()
    allocation = NumberAllocation(msisdn="447700900123", subscription_id=first)
    allocation.release(first)
    allocation.allocate(uuid4())
    return allocation


# --- topics and versions ------------------------------------------------------------


def test_the_shared_workflow_events_listed_are_all_the_module_declares() -> None:
    declared = {
        value
        for value in vars(domain.workflow).values()
        if isinstance(value, type)
        and issubclass(value, CanMutateAggregate)
        and value.__module__ == domain.workflow.__name__
    }

    assert declared == set(WORKFLOW_EVENT_CLASSES)
    assert len(WORKFLOW_EVENT_CLASSES) == 12


@pytest.mark.parametrize(
    ("aggregate", "history"),
    [
        (Subscription, subscription_with_every_kind_of_event),
        (Account, account_with_every_kind_of_event),
        (Customer, customer_with_every_kind_of_event),
        (NumberAllocation, allocation_with_every_kind_of_event),
        (UsageBatch, batches_with_every_kind_of_event),
        (RerateRun, rerate_run_with_every_kind_of_event),
    ],
    ids=lambda value: getattr(value, "__name__", str(value)),
)
def test_every_event_recorded_is_of_a_known_stored_class(
    aggregate: type[Aggregate], history: Any
) -> None:
    recorded = {type(event) for event in history().collect_events()}

    assert recorded <= set(stored_event_classes(aggregate))
    assert set(nested_event_classes(aggregate)) <= recorded


def test_a_subscription_history_records_every_shared_workflow_event() -> None:
    history = subscription_with_every_kind_of_event().collect_events()

    recorded = {type(event) for event in history}

    assert set(WORKFLOW_EVENT_CLASSES) <= recorded


def test_every_stored_event_class_declares_its_own_monetise_topic() -> None:
    for cls in every_stored_event_class():
        owner = declared_by(cls, "TOPIC")
        topic = vars(owner)["TOPIC"]

        assert owner.__qualname__ == cls.__qualname__, cls
        assert topic.startswith("monetise."), cls
        assert topic.endswith(f":{cls.__qualname__}"), cls


def test_every_stored_event_class_declares_its_own_integer_class_version() -> None:
    for cls in every_stored_event_class():
        owner = declared_by(cls, "class_version")

        assert owner.__qualname__ == cls.__qualname__, cls
        assert type(vars(owner)["class_version"]) is int, cls


def test_every_aggregate_declares_its_own_monetise_topic_and_version() -> None:
    for aggregate in (*AGGREGATES, Catalogue):
        assert vars(aggregate)["TOPIC"].startswith("monetise."), aggregate
        assert type(vars(aggregate)["class_version"]) is int, aggregate


def test_topics_are_unique_across_the_whole_domain() -> None:
    catalogue_events = nested_event_classes(Catalogue)
    classes = [*AGGREGATES, Catalogue, *every_stored_event_class(), *catalogue_events]

    topics = [cls.TOPIC for cls in classes]  # type: ignore[attr-defined]

    assert len(topics) == len(set(topics))


def test_every_topic_resolves_to_its_class() -> None:
    for cls in (*AGGREGATES, *every_stored_event_class()):
        topic = cls.TOPIC  # type: ignore[attr-defined]

        assert resolve_topic(topic) is cls, topic
        assert get_topic(cls) == topic, cls


# --- storing and reading back ------------------------------------------------------


def test_a_subscription_with_its_workflow_reads_back_as_it_was_saved() -> None:
    subscription = subscription_with_every_kind_of_event()
    application = in_memory_application()

    application.save(subscription)
    stored = application.repository.get(subscription.id)

    assert stored.version == subscription.version
    assert stored.workflow_events == subscription.workflow_events
    assert stored.actioned_items == subscription.actioned_items
    assert stored.bars == subscription.bars
    assert stored.services == subscription.services
    assert stored.status == subscription.status == "disconnected"
    assert stored.prepaid_balance == subscription.prepaid_balance == Decimal("9.55")
    assert isinstance(stored.prepaid_balance, Decimal)


def test_datetimes_and_decimals_inside_the_workflow_read_back_as_such() -> None:
    subscription = subscription_with_every_kind_of_event()
    application = in_memory_application()
    application.save(subscription)

    stored = application.repository.get(subscription.id)

    for item_id, item in subscription.actioned_items.items():
        assert type(stored.actioned_items[item_id]["due_at"]) is type(item["due_at"])
    for wf in stored.workflow_events.values():
        assert wf["raised_at"].tzinfo is not None
    topped_up = [
        e
        for e in application.repository.event_store.get(subscription.id)
        if type(e).__name__ == "ToppedUp"
    ]
    assert [e.balance for e in topped_up] == [Decimal("10.00"), Decimal("10.05")]


@pytest.mark.parametrize(
    "history",
    [
        account_with_every_kind_of_event,
        customer_with_every_kind_of_event,
        allocation_with_every_kind_of_event,
        batches_with_every_kind_of_event,
    ],
    ids=lambda f: f.__name__,
)
def test_accounts_customers_and_allocations_read_back_as_they_were_saved(
    history: Any,
) -> None:
    aggregate = history()
    application = in_memory_application()

    application.save(aggregate)
    stored = application.repository.get(aggregate.id)

    assert stored.version == aggregate.version
    assert vars(stored) == vars(aggregate)


def test_usage_batch_events_read_back_alike_through_either_transcoder() -> None:
    from eventsourcing.persistence import JSONTranscoder

    from application.transcoding import OrjsonTranscoder
    from application.usage import UsageBatches

    batches = UsageBatches(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    standard = JSONTranscoder()
    batches.register_transcodings(standard)
    history = batches_with_every_kind_of_event()
    expected = [dict(vars(event)) for event in history._pending_events]

    batches.save(history)
    stored = list(batches.events.get(history.id))
    assert isinstance(batches.mapper.transcoder, OrjsonTranscoder)
    assert [dict(vars(event)) for event in stored] == expected
    for event in stored:
        state = dict(vars(event))
        del state["originator_id"], state["originator_version"]  # as the mapper does
        written = batches.mapper.transcoder.encode(state)
        assert standard.decode(written) == state
        assert batches.mapper.transcoder.decode(standard.encode(state)) == state


def test_records_loaded_before_breakdowns_were_text_read_back_with_text() -> None:
    """v1 RecordsLoaded carried each offline-rated breakdown as an object;
    read back, it is the compact JSON text the views store."""
    from eventsourcing.persistence import StoredEvent

    from application.usage import UsageBatches
    from domain.usage_batch import BREAKDOWN_COLUMN, LOADED_COLUMNS

    batches = UsageBatches(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    batch = UsageBatch(
        file_name="U-1.json",
        sha256="cd" * 32,
        size=100,
        kind="unrated",
        directory="unrated",
        key_id=None,
        received_by="load-unrated-usage",
    )
    chunk = batch.stage(['{"record_id": "R1"}'])
    breakdown = {"charge": "0.2583", "allowances": [], "breakdown": [{"band": "Ö"}]}
    row: list[Any] = [None] * len(LOADED_COLUMNS)
    row[LOADED_COLUMNS.index("payment_type")] = "postpaid"
    row[BREAKDOWN_COLUMN] = "placeholder"
    batch.record_outcomes(chunk, [0], [row], [])
    loaded = batch.collect_events()[-1]
    stored = batches.mapper.to_stored_event(loaded)
    state = batches.mapper.transcoder.decode(stored.state)
    assert state.pop("class_version") == 2
    state["loaded"][0][BREAKDOWN_COLUMN] = breakdown  # as version 1 wrote it
    v1 = StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=batches.mapper.transcoder.encode(state),
    )

    read = batches.mapper.to_domain_event(v1)

    assert read.loaded[0][BREAKDOWN_COLUMN] == (
        '{"charge":"0.2583","allowances":[],"breakdown":[{"band":"\\u00d6"}]}'
    )


def test_a_rerate_run_created_before_reasons_reads_as_an_operators_rerate() -> None:
    from eventsourcing.persistence import StoredEvent

    from application.usage import UsageBatches
    from domain.rerating import REQUESTED

    batches = UsageBatches(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    run = RerateRun(
        usage_class="VOICE_NAT", period_from=LATER, period_to=None, requested_by="ops"
    )
    stored = batches.mapper.to_stored_event(run.collect_events()[0])
    state = batches.mapper.transcoder.decode(stored.state)
    assert state.pop("class_version") == 2
    del state["reason"], state["batch_id"]  # as version 1 wrote it
    v1 = StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=batches.mapper.transcoder.encode(state),
    )

    read = batches.mapper.to_domain_event(v1)

    assert (read.reason, read.batch_id) == (REQUESTED, None)
    assert read.usage_class == "VOICE_NAT"
    assert read.mutate(None).reason == REQUESTED
