"""Customers, accounts, subscriptions and the workflow processor.

``CustomerCare`` is the command side for agents (register, open, create, raise,
resolve…) and, as a process application that follows its own notification log,
the workflow processor: it turns raised, extended and resolved workflow events
into actioned items and linked events, a batch of notifications per save.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from copy import deepcopy
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID, uuid4, uuid5

from eventsourcing.application import AggregateNotFoundError, ProcessingEvent
from eventsourcing.persistence import (
    IntegrityError,
    Mapper,
    Recording,
    StoredEvent,
    Tracking,
    Transcoder,
)
from eventsourcing.postgres import PostgresProcessRecorder
from eventsourcing.system import ProcessApplication
from eventsourcing.utils import get_topic
from psycopg.sql import SQL

from application.bulk_recorder import BinaryNotifications
from application.catalogue import CatalogueService
from application.clock import Clock, SystemClock
from application.live import (
    LiveAggregates,
    RememberingMapper,
    events_after,
    load_many,
    table_names,
)
from application.transcoding import CareTranscoder
from domain.account import Account, ActionNotApplicable
from domain.customer import Customer
from domain.numbers import MsisdnInUse, NumberAllocation, allocation_id
from domain.raising import (
    INTERNAL_HANDLERS,
    RaisePlan,
    RaiseRefused,
    due_time,
    manual_action,
    plan_raise,
    resolve_action,
)
from domain.subscription import ACTIVE, PAYMENT_TYPES, PENDING, Subscription
from domain.workflow import (
    MAX_LINK_DEPTH,
    OPEN,
    ActionedItemsCreated,
    ManualActionAdded,
    WorkflowEventRaised,
    WorkflowEventResolved,
    WorkflowLog,
)

T = TypeVar("T")
Owner = Account | Subscription

MSISDN = re.compile(r"[1-9]\d{5,14}")
IMSI = re.compile(r"\d{14,15}")
CURRENCY = re.compile(r"[A-Z]{3}")
ACCOUNT_TYPE = re.compile(r"[A-Z0-9]{3,4}")
LANGUAGE = re.compile(r"[a-z]{2}(-[A-Z]{2})?")
_RETRIES = 20
_BULK_RETRIES = 5  # then in halves (raise_workflow_events)
_SAVE_TRIES = 3  # saves of the rest after a collision (save_each)
PROCESSED_TOPICS = [
    get_topic(cls)
    for cls in (WorkflowEventRaised, ManualActionAdded, WorkflowEventResolved)
]


class InvalidRequest(ValueError):
    """A field of a command is invalid (HTTP 422): ``field`` names it."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


class NotFound(LookupError):
    pass


class Conflict(Exception):
    """The request is understood but the current state refuses it (HTTP 409)."""


class BulkProcessRecorder(BinaryNotifications, PostgresProcessRecorder):
    """PostgreSQL: the process recorder, inserting a save's events as four
    binary arrays (ids, versions, topics, states) unnested by one prepared
    ``INSERT``.

    The workflow processor and the dispatcher save hundreds of events at a
    time; the library sends them as an array of a composite type written as
    text, each state as hex quoted by a regular expression (measured: saves
    take more than twice as long that way). The rows, the table lock, the
    notification and the tracking record are the same.
    """

    def __init__(self, datastore: Any, **kwargs: Any):
        super().__init__(datastore, **kwargs)
        self._insert_arrays = SQL(
            "INSERT INTO {schema}.{table}"
            " (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(%b::{kind}[], %b::bigint[], %b::text[], %b::bytea[])"
            " RETURNING notification_id"
        ).format(**table_names(datastore, self.events_table_name))

    def _insert_stored_events(
        self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        columns = (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
        )
        curs.execute(self._insert_arrays, columns, prepare=True)


class CustomerCare(ProcessApplication[UUID]):
    """Agents' commands and the workflow processor, over one event store."""

    name = "customer_care"
    snapshotting_intervals = {Subscription: 100, Account: 100}

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        catalogue: CatalogueService,
        clock: Clock | None = None,
    ):
        env = dict(env or {})
        if env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
            env.setdefault("PROCESS_RECORDER_TOPIC", get_topic(BulkProcessRecorder))
        super().__init__(env)
        self.catalogue = catalogue
        self.clock: Clock = clock or SystemClock()

    def construct_transcoder(self) -> Transcoder:
        # The library's JSON, written with orjson (see CareTranscoder).
        transcoder = CareTranscoder()
        self.register_transcodings(transcoder)
        return transcoder

    def construct_mapper(self) -> Mapper[UUID]:
        """Each stored event decoded once per process (``RememberingMapper``)."""
        return self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=RememberingMapper
        )

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        recordings = super()._record(processing_event)
        if isinstance(self.mapper, RememberingMapper):
            self.mapper.remember(recordings)  # committed: read back as saved
        return recordings

    def save_changes(
        self, aggregates: Iterable[Any], tracking: Tracking | None = None
    ) -> None:
        """Save the pending events of ``aggregates`` in one go, as ``save()``
        does (with ``tracking``, as a process application's policy does).

        For the worker's batches of hundreds of aggregates: ``save()`` checks
        each of them against two run-time protocols first, which cost more
        than encoding its events.
        """
        processing = ProcessingEvent[UUID](tracking)
        for aggregate in aggregates:
            processing.events += aggregate.collect_events()
            processing.aggregates[aggregate.id] = aggregate
        self.save_processing(processing)

    def save_each(self, aggregates: Iterable[Any]) -> set[UUID]:
        """Save the pending events of ``aggregates`` at once, except those of
        aggregates another writer changed since they were read: returns the
        ids of those, whose events are dropped (their copies are stale).

        For aggregates whose changes stand alone. A save that fails is not the
        end of the others: those found behind the store are left out and the
        rest saved again (a bulk raise collides with one or two of the
        hundreds the worker saves at once, and reading them all afresh cost
        more than the work).
        """
        changed = {a.id: a for a in aggregates if a.pending_events}
        events = {owner_id: a.collect_events() for owner_id, a in changed.items()}
        left_out: set[UUID] = set()
        for _ in range(_SAVE_TRIES):
            todo = [owner_id for owner_id in events if owner_id not in left_out]
            if not todo:
                return left_out
            processing = ProcessingEvent[UUID]()
            for owner_id in todo:
                processing.events += events[owner_id]
                processing.aggregates[owner_id] = changed[owner_id]
            try:
                self.save_processing(processing)
            except IntegrityError:
                # Nothing was saved: events after the first one's version
                # are another writer's.
                read = {i: events[i][0].originator_version - 1 for i in todo}
                behind = set(events_after(self, read))
                left_out |= behind or set(todo)  # none found: give all up
            else:
                return left_out
        return set(events)

    def save_processing(self, processing: ProcessingEvent[UUID]) -> None:
        """Save events already collected from their aggregates (which are in
        ``processing.aggregates``, as they are after those events)."""
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """Snapshot each aggregate just saved whose version passed a multiple of
        its interval, as it is in hand, at its latest version.

        The library reads the aggregate back from the store instead (every
        event since its last snapshot, decoded and applied again, under a
        hundred of them): once lines had a history, that was a sixth of what
        raising workflow events cost (py-spy, benchmarks/workflow.py
        --rounds 2). The aggregate in hand has just had exactly those events
        saved, so it holds the same state.
        """
        if not (self.snapshots and self.snapshotting_intervals):
            return
        due: dict[UUID, Any] = {}
        intervals: dict[type, int] = dict(self.snapshotting_intervals)
        for event in processing_event.events:
            aggregate = processing_event.aggregates.get(event.originator_id)
            interval = intervals.get(type(aggregate))
            if interval and event.originator_version % interval == 0:
                due[event.originator_id] = aggregate
        snapshots = []
        for aggregate in due.values():
            kind = getattr(type(aggregate), "Snapshot", None) or self.snapshot_class
            assert kind is not None  # the library's default class, at least
            snapshots.append(kind.take(aggregate))
        if snapshots:
            self.snapshots.put(snapshots)

    # --- customers, accounts, subscriptions --------------------------------

    def register_customer(
        self,
        *,
        name: str,
        email: str = "",
        phone: str = "",
        language: str = "en",
        address: str = "",
        actor: str,
    ) -> UUID:
        if not name.strip():
            raise InvalidRequest("name", "must not be empty")
        if email and "@" not in email:
            raise InvalidRequest("email", f"{email!r} is not an e-mail address")
        if not LANGUAGE.fullmatch(language):
            raise InvalidRequest("language", f"{language!r} is not a language code")
        customer = Customer(
            name=name.strip(),
            email=email,
            phone=phone,
            language=language,
            address=address,
            registered_by=actor,
        )
        self.save(customer)
        return customer.id

    def open_account(
        self,
        *,
        customer_id: UUID,
        account_type: str = "CONS",
        bill_cycle_day: int = 1,
        currency: str = "GBP",
        number: str = "",
        actor: str,
    ) -> UUID:
        self._get(customer_id, Customer, "customer_id")
        if not ACCOUNT_TYPE.fullmatch(account_type):
            raise InvalidRequest(
                "account_type",
                f"{account_type!r} is not 3 to 4 upper-case letters or digits",
            )
        if not 1 <= bill_cycle_day <= 28:
            raise InvalidRequest("bill_cycle_day", "must be between 1 and 28")
        if not CURRENCY.fullmatch(currency):
            raise InvalidRequest("currency", f"{currency!r} is not an ISO 4217 code")
        account = Account(
            customer_id=customer_id,
            number=number or f"A{uuid4().hex[:10].upper()}",
            account_type=account_type,
            bill_cycle_day=bill_cycle_day,
            currency=currency,
            opened_by=actor,
        )
        self.save(account)
        return account.id

    def create_subscription(
        self,
        *,
        account_id: UUID,
        msisdn: str,
        imsi: str = "",
        payment_type: str = "postpaid",
        rate_plan: str = "STD",
        status: str = PENDING,
        actor: str,
    ) -> UUID:
        account: Account = self._get(account_id, Account, "account_id")
        if not MSISDN.fullmatch(msisdn):
            raise InvalidRequest(
                "msisdn",
                f"{msisdn!r} is not an MSISDN (6 to 15 "
                "digits in international format, no +)",
            )
        if imsi and not IMSI.fullmatch(imsi):
            raise InvalidRequest("imsi", f"{imsi!r} is not an IMSI (14 or 15 digits)")
        if payment_type not in PAYMENT_TYPES:
            raise InvalidRequest(
                "payment_type",
                f"{payment_type!r} is not one of: " + ", ".join(PAYMENT_TYPES),
            )
        if status not in (PENDING, ACTIVE):
            raise InvalidRequest("status", "a new subscription is pending or active")

        def create() -> UUID:
            subscription = Subscription(
                account_id=account_id,
                customer_id=account.customer_id,
                msisdn=msisdn,
                imsi=imsi,
                payment_type=payment_type,
                rate_plan=rate_plan,
                currency=account.currency,
                status=status,
                created_by=actor,
            )
            try:
                allocation: NumberAllocation = self.repository.get(
                    allocation_id(msisdn)
                )
            except AggregateNotFoundError:
                allocation = NumberAllocation(
                    msisdn=msisdn, subscription_id=subscription.id
                )
            else:
                try:
                    allocation.allocate(subscription.id)
                except MsisdnInUse as error:
                    raise Conflict(str(error)) from None
            self.save(subscription, allocation)
            return subscription.id

        return self._retrying(create)

    # --- reading the write model --------------------------------------------

    def subscription(self, subscription_id: UUID) -> Subscription:
        subscription: Subscription = self._get(
            subscription_id, Subscription, "subscription_id"
        )
        return subscription

    def account(self, account_id: UUID) -> Account:
        account: Account = self._get(account_id, Account, "account_id")
        return account

    def customer(self, customer_id: UUID) -> Customer:
        customer: Customer = self._get(customer_id, Customer, "customer_id")
        return customer

    def owner(self, owner_id: UUID) -> Owner:
        aggregate = self._get(owner_id, object, "owner")
        if not isinstance(aggregate, Account | Subscription):
            raise NotFound(f"no account or subscription {owner_id}")
        return aggregate

    def owners(self, owner_ids: Iterable[UUID]) -> dict[UUID, Owner]:
        """Several accounts and subscriptions, as current as the store, at once.

        Like ``owner()`` for each (fresh copies to change and save), but with
        one query for all of them instead of one each. Ids of anything else
        are left out.
        """
        cache = self.repository.cache
        copies: dict[UUID, Any] = {}
        missing: list[UUID] = []
        for owner_id in dict.fromkeys(owner_ids):
            try:
                if cache is None:
                    raise KeyError(owner_id)
                copies[owner_id] = deepcopy(cache.get(owner_id))
            except KeyError:
                missing.append(owner_id)
        newer = events_after(self, {i: copy.version for i, copy in copies.items()})
        for owner_id, events in newer.items():
            copy = copies[owner_id]
            for event in events:
                copy = event.mutate(copy)
            if cache is not None:
                # The cached one is left as it was: the library fast-forwards
                # it under its own lock; a copy of this one takes its place.
                cache.put(owner_id, deepcopy(copy))
        for owner_id, aggregate in load_many(self, missing).items():
            if cache is not None:
                cache.put(owner_id, aggregate)
                aggregate = deepcopy(aggregate)
            copies[owner_id] = aggregate
        return {
            i: o for i, o in copies.items() if isinstance(o, Account | Subscription)
        }

    def template_fields(self, owner: Owner) -> dict[str, Any]:
        """What a template may show of the customer, account and subscription."""
        subscription: dict[str, Any] = {}
        if isinstance(owner, Subscription):
            subscription = owner.fields()
            account = self.account(owner.account_id)
        else:
            account = owner
        return {
            "customer": self.customer(account.customer_id).fields(),
            "account": account.fields(),
            "subscription": subscription,
        }

    @staticmethod
    def item_fields(owner: Owner, item: dict[str, Any]) -> dict[str, Any]:
        """What a template may show of the workflow event and action."""
        wf = owner.workflow_events[item["workflow_event_id"]]
        return {
            "event": {
                "id": wf["id"],
                "type": wf["event_type"],
                "code": wf["event_code"],
                "description": wf["description"],
                "note": wf.get("note", ""),
                "raised_at": wf["raised_at"],
            },
            "action": {
                "code": item.get("action_code") or "",
                "description": item.get("description", ""),
                **item.get("parameters", {}),
            },
        }

    def released_number(self, subscription: Subscription) -> NumberAllocation:
        """The subscription's number allocation, released (to save with it)."""
        allocation: NumberAllocation = self.repository.get(
            allocation_id(subscription.msisdn)
        )
        allocation.release(subscription.id)
        return allocation

    # --- workflow commands (agents) ------------------------------------------

    def raise_workflow_event(
        self,
        *,
        owner_id: UUID,
        level: str,
        event_type: str,
        event_code: str,
        note: str = "",
        manual_actions: Iterable[str] = (),
        actor: str,
        source: str = "agent",
    ) -> UUID:
        """Raise ``TYPE CODE`` on an account or subscription; returns its id."""
        manual = list(manual_actions)
        workflow_event_id = uuid4()

        def raise_it() -> UUID:
            owner = self.owner(owner_id)
            if level != owner.LEVEL:
                raise NotFound(f"no {level} {owner_id}")
            try:
                plan = plan_raise(
                    self.catalogue.view(), level, event_type, event_code, manual
                )
            except RaiseRefused as error:
                raise Conflict(str(error)) from None
            self._refuse_inapplicable(owner, plan.actions)
            self._record_raise(
                owner,
                workflow_event_id,
                plan,
                note=note,
                source=source,
                raised_by=actor,
                initiating_event_id=None,
                depth=0,
            )
            self.save(owner)
            return workflow_event_id

        return self._retrying(raise_it)

    def raise_workflow_events(
        self, requests: list[dict[str, Any]], *, actor: str, source: str = "system"
    ) -> list[UUID | str]:
        """Raise many workflow events in one save (credit-control runs, bulk jobs).

        Each request has ``owner_id``, ``level``, ``event_type``, ``event_code``
        and optionally ``note``. Returns, per request, the new workflow event's
        id or the reason it was refused; refused requests record nothing.

        When other writers (the worker) keep changing some of the owners
        before the save, the requests are raised in two halves, and so on: a
        save of hundreds of owners may otherwise never find them all unchanged
        (measured: 20 tries in a row collided with a busy worker).
        """
        attempts = _BULK_RETRIES if len(requests) > 1 else _RETRIES
        try:
            return self._retrying(
                lambda: self._raise_all(requests, actor, source), attempts
            )
        except IntegrityError:
            if len(requests) < 2:
                raise
        half = len(requests) // 2
        return [
            *self.raise_workflow_events(requests[:half], actor=actor, source=source),
            *self.raise_workflow_events(requests[half:], actor=actor, source=source),
        ]

    def _raise_all(
        self, requests: list[dict[str, Any]], actor: str, source: str
    ) -> list[UUID | str]:
        """One try at raising every request in one save."""
        catalogue = self.catalogue.view()
        found = self.owners(UUID(str(r["owner_id"])) for r in requests)
        # A plan depends on the catalogue, level and code only: one each.
        plans: dict[tuple[str, str, str], RaisePlan | RaiseRefused] = {}
        owners: dict[UUID, Owner] = {}
        results: list[UUID | str] = []
        for request in requests:
            owner_id = UUID(str(request["owner_id"]))
            try:
                owner = found.get(owner_id)
                if owner is None:
                    owner = found[owner_id] = self.owner(owner_id)
                if request["level"] != owner.LEVEL:
                    raise NotFound(f"no {request['level']} {owner_id}")
                key = (owner.LEVEL, request["event_type"], request["event_code"])
                if key not in plans:
                    try:
                        plans[key] = plan_raise(catalogue, *key, [])
                    except RaiseRefused as refused:
                        plans[key] = refused
                plan = plans[key]
                if isinstance(plan, RaiseRefused):
                    raise plan
                self._refuse_inapplicable(owner, plan.actions)
            except (NotFound, RaiseRefused, Conflict) as error:
                results.append(str(error))
                continue
            owners[owner_id] = owner
            workflow_event_id = uuid4()
            self._record_raise(
                owner,
                workflow_event_id,
                plan,
                note=str(request.get("note", "")),
                source=source,
                raised_by=actor,
                initiating_event_id=None,
                depth=0,
            )
            results.append(workflow_event_id)
        left_out = self.save_each(owners.values())
        if left_out and left_out == owners.keys():
            raise IntegrityError("every owner was changed by another writer")
        if left_out:
            # Raised afresh on those owners as they are now (refusals too).
            again = [
                k
                for k, request in enumerate(requests)
                if UUID(str(request["owner_id"])) in left_out
            ]
            redone = self.raise_workflow_events(
                [requests[k] for k in again], actor=actor, source=source
            )
            for k, result in zip(again, redone, strict=True):
                results[k] = result
        return results

    def add_manual_action(
        self, *, owner_id: UUID, workflow_event_id: UUID, action_code: str, actor: str
    ) -> None:
        def add() -> None:
            owner = self.owner(owner_id)
            wf = self._open(owner, workflow_event_id)
            try:
                action = manual_action(self.catalogue.view(), owner.LEVEL, action_code)
            except RaiseRefused as error:
                raise Conflict(str(error)) from None
            sequence = 10 + max((a["sequence"] for a in wf["actions"]), default=0)
            resolved = resolve_action(
                self.catalogue.view(), action, "raise", sequence, manual=True
            )
            self._refuse_inapplicable(owner, [resolved])
            owner.add_manual_action(
                workflow_event_id, resolved, actor, self.clock.now()
            )
            self.save(owner)

        self._retrying(add)

    def resolve_workflow_event(
        self, *, owner_id: UUID, workflow_event_id: UUID, actor: str
    ) -> None:
        def resolve() -> None:
            owner = self.owner(owner_id)
            self._open(owner, workflow_event_id)
            owner.resolve_workflow_event(workflow_event_id, actor, self.clock.now())
            self.save(owner)

        self._retrying(resolve)

    def cancel_workflow_event(
        self, *, owner_id: UUID, workflow_event_id: UUID, actor: str, reason: str = ""
    ) -> list[str]:
        def cancel() -> list[str]:
            owner = self.owner(owner_id)
            self._open(owner, workflow_event_id)
            cancelled = owner.cancel_workflow_event(
                workflow_event_id, actor, self.clock.now(), reason or "cancelled"
            )
            self.save(owner)
            return cancelled

        return self._retrying(cancel)

    def retry_item(self, *, owner_id: UUID, item_id: str, actor: str) -> None:
        self._item_command(
            owner_id, item_id, lambda o: o.retry_item(item_id, actor, self.clock.now())
        )

    def cancel_item(
        self, *, owner_id: UUID, item_id: str, actor: str, reason: str = ""
    ) -> None:
        self._item_command(
            owner_id,
            item_id,
            lambda o: o.cancel_item(
                item_id, actor, self.clock.now(), reason or "cancelled by " + actor
            ),
        )

    def complete_external_item(
        self, *, owner_id: UUID, item_id: str, actor: str, note: str = ""
    ) -> None:
        """An external system (or agent) reports an external action as done."""

        def complete(owner: Owner) -> None:
            item = owner.actioned_item(item_id)
            if item["handler"] != "external":
                raise Conflict(
                    f"only external actions are completed by hand; this "
                    f"one is run by the {item['handler']} handler"
                )
            owner.complete_item(
                item_id,
                self.clock.now(),
                f"completed by {actor}" + (f": {note}" if note else ""),
            )

        self._item_command(owner_id, item_id, complete)

    # --- the workflow processor ----------------------------------------------

    def process_pending(
        self,
        limit: int = 500,
        live: LiveAggregates | None = None,
        on_new_items: Callable[[list[tuple[UUID, str]]], object] | None = None,
    ) -> int:
        """Process up to ``limit`` new workflow notifications in one save.

        Returns how many were processed. New events and the tracking position
        commit together; a concurrent write to one of the aggregates makes the
        whole batch start again from the stored position. ``on_new_items``
        is given the items created (and saved) that are due now, as (owner id,
        item id): the dispatcher takes them without waiting for a read model.
        """
        for attempt in range(_RETRIES):
            unit = live or LiveAggregates(self)
            start = (self.recorder.max_tracking_id(self.name) or 0) + 1
            notifications = self.recorder.select_notifications(
                start=start, limit=limit, topics=PROCESSED_TOPICS
            )
            if not notifications:
                return 0
            events = [self.mapper.to_domain_event(n) for n in notifications]
            newest: dict[UUID, int] = {}
            for event in events:
                newest[event.originator_id] = event.originator_version
            # Every copy must already hold every event of the batch (several
            # may concern one subscription) before the first one is processed.
            try:
                # The batch's own events (an agent's raise, say) need no query.
                touched = unit.at_least_many(newest, events)
                if attempt:
                    # Collided: another writer (a bulk raise, say) is ahead on
                    # these owners. Reading them afresh took a while, so they
                    # are brought up to the store once more, with one query,
                    # just before processing (measured: without it, a raise of
                    # 500 events every quarter second beat every try for as
                    # long as it lasted, each try reading all 500 afresh).
                    touched = unit.current(newest)
            except BaseException:
                unit.forget(newest)
                raise
            try:
                for event in events:
                    self._process(event, touched[event.originator_id])
                due_now = _due_now(touched.values(), self.clock.now())
                self.save_changes(
                    touched.values(), Tracking(self.name, notifications[-1].id)
                )
            except IntegrityError:
                unit.forget(touched)
                continue
            except BaseException:
                unit.forget(touched)  # half-changed copies must not be reused
                raise
            if on_new_items is not None and due_now:
                on_new_items(due_now)
            return len(notifications)
        raise RuntimeError("workflow processor kept colliding with other writers")

    def _process(self, event: Any, owner: Owner) -> None:
        if owner.is_retired(event.workflow_event_id):
            return  # finished: its stages were done before it was retired
        now = self.clock.now()
        if isinstance(event, WorkflowEventRaised):
            wf = owner.workflow_event(event.workflow_event_id)
            items = self._items(
                event.workflow_event_id,
                "raise",
                wf["actions"],
                wf["communications"],
                "raise",
                event.raised_at,
            )
            owner.create_actioned_items(event.workflow_event_id, "raise", items, now)
        elif isinstance(event, ManualActionAdded):
            items = self._items(
                event.workflow_event_id,
                "manual",
                [event.action],
                [],
                "raise",
                event.added_at,
                salt=str(event.originator_version),
            )
            owner.create_actioned_items(event.workflow_event_id, "manual", items, now)
        elif isinstance(event, WorkflowEventResolved):
            wf = owner.workflow_event(event.workflow_event_id)
            items = self._items(
                event.workflow_event_id,
                "resolve",
                wf["actions"],
                wf["communications"],
                "resolve",
                event.resolved_at,
            )
            owner.create_actioned_items(event.workflow_event_id, "resolve", items, now)
            for link in sorted(wf["linked_events"], key=lambda x: x["sequence"]):
                self._raise_linked(owner, wf, link, now)

    def _raise_linked(
        self, owner: Owner, wf: dict[str, Any], link: dict[str, Any], now: datetime
    ) -> None:
        initiating = UUID(wf["id"])
        if wf["depth"] + 1 > MAX_LINK_DEPTH:
            owner.refuse_linked_event(
                initiating,
                link["type"],
                link["code"],
                f"linked events are more than {MAX_LINK_DEPTH} levels deep",
                now,
            )
            return
        try:
            plan = plan_raise(
                self.catalogue.view(), owner.LEVEL, link["type"], link["code"], []
            )
            self._refuse_inapplicable(owner, plan.actions)
        except (RaiseRefused, Conflict) as error:
            owner.refuse_linked_event(
                initiating, link["type"], link["code"], str(error), now
            )
            return
        linked_id = uuid5(
            initiating, f"linked:{link['type']} {link['code']}:{link['sequence']}"
        )
        self._record_raise(
            owner,
            linked_id,
            plan,
            note="",
            source="linked",
            raised_by="system",
            initiating_event_id=initiating,
            depth=wf["depth"] + 1,
        )

    def _items(
        self,
        workflow_event_id: UUID,
        stage: str,
        actions: list[dict[str, Any]],
        communications: list[dict[str, Any]],
        when: str,
        base: datetime,
        salt: str = "",
    ) -> list[dict[str, Any]]:
        """One actioned item per action and communication of ``when``, in order."""
        items = []
        for action in sorted(actions, key=lambda a: a["sequence"]):
            if action["when"] != when:
                continue
            items.append(
                {
                    "item_id": str(
                        uuid5(
                            workflow_event_id,
                            f"{stage}:{salt}:"
                            f"{action['sequence']}:{action['action_code']}",
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
                }
            )
        for index, communication in enumerate(communications):
            if communication["when"] != when:
                continue
            template = communication["template"]
            items.append(
                {
                    "item_id": str(
                        uuid5(workflow_event_id, f"{stage}:{salt}:comm:{index}")
                    ),
                    "kind": "communication",
                    "when": when,
                    "sequence": 1_000_000 + index,
                    "action_code": None,
                    "action_type": None,
                    "handler": "communication",
                    "description": f"{communication['channel']} {template['code']}",
                    "parameters": {},
                    "channel": communication["channel"],
                    "template": template,
                    "due_at": base,
                    "max_attempts": 3,
                    "ignore_network_errors": False,
                }
            )
        return items

    # --- helpers -------------------------------------------------------------

    def _record_raise(
        self,
        owner: Owner,
        workflow_event_id: UUID,
        plan: RaisePlan,
        *,
        note: str,
        source: str,
        raised_by: str,
        initiating_event_id: UUID | None,
        depth: int,
    ) -> None:
        now = self.clock.now()
        clearing = f"cancelled: {plan.event_type} {plan.event_code} was raised"
        for wf in list(owner.workflow_events.values()):
            if wf["status"] == OPEN and f"{wf['event_type']} {wf['event_code']}" in (
                plan.cancels
            ):
                owner.cancel_workflow_event(UUID(wf["id"]), raised_by, now, clearing)
        owner.raise_workflow_event(
            workflow_event_id=workflow_event_id,
            event_type=plan.event_type,
            event_code=plan.event_code,
            description=plan.description,
            note=note,
            source=source,
            raised_by=raised_by,
            raised_at=self.clock.now(),
            initiating_event_id=initiating_event_id,
            depth=depth,
            auto_resolve=plan.auto_resolve,
            actions=plan.actions,
            communications=plan.communications,
            linked_events=plan.linked_events,
            skipped_actions=plan.skipped_actions,
        )

    @staticmethod
    def _refuse_inapplicable(owner: Owner, actions: list[dict[str, Any]]) -> None:
        for action in actions:
            if action["handler"] in INTERNAL_HANDLERS and action["when"] == "raise":
                reason = owner.why_not(action["handler"], action["parameters"])
                if reason:
                    raise Conflict(f"{action['action_code']}: {reason}")

    @staticmethod
    def _open(owner: WorkflowLog, workflow_event_id: UUID) -> dict[str, Any]:
        try:
            return owner.open_workflow_event(workflow_event_id)
        except LookupError as error:
            raise NotFound(str(error)) from None
        except Exception as error:
            raise Conflict(str(error)) from None

    def _item_command(
        self, owner_id: UUID, item_id: str, command: Callable[[Owner], None]
    ) -> None:
        def run() -> None:
            owner = self.owner(owner_id)
            try:
                owner.actioned_item(item_id)
                command(owner)
            except LookupError as error:
                raise NotFound(str(error)) from None
            except (Conflict, NotFound):
                raise
            except Exception as error:
                if type(error).__name__ == "WorkflowError":
                    raise Conflict(str(error)) from None
                raise
            self.save(owner)

        self._retrying(run)

    def _get(self, aggregate_id: UUID, kind: type[Any], field: str) -> Any:
        try:
            aggregate: Any = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(f"no {field.removesuffix('_id')} {aggregate_id}") from None
        if kind is not object and not isinstance(aggregate, kind):
            raise NotFound(f"no {field.removesuffix('_id')} {aggregate_id}")
        return aggregate

    def charge_prepaid_usage(
        self, batch_id: UUID, run: int, charges: dict[str, tuple[Decimal, int]]
    ) -> int:
        """Take each subscription's net prepaid usage of a batch run off its
        balance; idempotent per batch and run. Returns how many were charged."""
        charged = 0
        pending = sorted(charges.items())
        # Many subscriptions per save while nobody else writes them; one at a
        # time, retried, for a group that met a concurrent change.
        for start in range(0, len(pending), 500):
            group = pending[start : start + 500]
            changed = []
            for subscription_id, (amount, records) in group:
                subscription = self.subscription(UUID(subscription_id))
                if subscription.charge_prepaid_usage(batch_id, run, amount, records):
                    changed.append(subscription)
            try:
                self.save(*changed)
            except IntegrityError:
                charged += self._charge_one_by_one(batch_id, run, group)
            else:
                charged += len(changed)
        return charged

    def _charge_one_by_one(
        self,
        batch_id: UUID,
        run: int,
        charges: list[tuple[str, tuple[Decimal, int]]],
    ) -> int:
        charged = 0
        for subscription_id, (amount, records) in charges:

            def charge(
                subscription_id: str = subscription_id,
                amount: Decimal = amount,
                records: int = records,
            ) -> bool:
                subscription = self.subscription(UUID(subscription_id))
                done = subscription.charge_prepaid_usage(batch_id, run, amount, records)
                if done:
                    self.save(subscription)
                return done

            charged += self._retrying(charge)
        return charged

    def _retrying(self, command: Callable[[], T], attempts: int = _RETRIES) -> T:
        """Run a command again when another writer changed the aggregate first."""
        for attempt in range(attempts):
            try:
                return command()
            except IntegrityError:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")


__all__ = [
    "ActionNotApplicable",
    "Conflict",
    "CustomerCare",
    "InvalidRequest",
    "NotFound",
]


def _due_now(owners: Iterable[Owner], now: datetime) -> list[tuple[UUID, str]]:
    """The items that the owners' unsaved events create due by ``now``."""
    return [
        (owner.id, item["item_id"])
        for owner in owners
        for event in owner.pending_events
        if isinstance(event, ActionedItemsCreated)
        for item in event.items
        if item["due_at"] <= now
    ]
