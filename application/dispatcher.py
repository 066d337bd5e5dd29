"""The action dispatcher: runs due actioned items through their handlers.

At most once per attempt: an item is recorded as sent before anything leaves
monetise (network request, message), and internal handlers change the
aggregate in the same save as the item's completion. Work is done in batches
(one save for many items) because the event store serialises saves.

Messages for the outbox are written a batch at a time, each file synced
before it is renamed into place and its directory synced once after the last.
A large batch is written by a helper process while the worker goes on; a
later round records the outcomes — only once every file is durable — in the
same save as the items it runs. E-mails to an SMTP server, which are mostly
waiting, go several at once.

The workflow processor hands over the items it created that are due at once,
so they need not wait for the queue read model. The queue read model is how
the dispatcher finds everything else: items scheduled for later, retries, and
items a stopped worker left. It is read every round when this process keeps
the read models up to date; when another process does (``views_apart``), it
is read twice a second, and the few views the dispatcher must not read stale
(the directory, for message templates; the queue, for a network answer to an
item it does not know) are caught up only when a lookup misses.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from application.channels import Channels, DeliveryError, Message
from application.clock import Clock
from application.customer_care import CustomerCare, Owner
from application.live import LiveAggregates
from application.network import NetworkPort, ProvisioningRequest, ProvisioningResponse
from domain.account import ActionNotApplicable
from domain.raising import INTERNAL_HANDLERS
from domain.subscription import Subscription
from domain.templates import TemplateError, choose_text, render
from domain.workflow import DEAD, ERROR, PENDING_STATES, SENT

# How to record what happened to an item, applied to its (re)loaded owner.
Outcome = Callable[[Owner], None]
_RETRIES = 20
# With the read models kept by another process: seconds between two reads of
# the queue for items that were not handed over (scheduled, retries, left).
QUEUE_READ_INTERVAL = 0.5
_SENT_REMEMBERED = 100_000  # network items whose owners are remembered, at most
log = logging.getLogger(__name__)
_SMTP_SENDERS = 8  # e-mails sent at once: each mostly waits on its server
# A batch of messages being written to the outbox: the future of the notes,
# when they were handed over, and per message the owner, item and attempts.
Writing = tuple[
    Future[list[str | DeliveryError]], datetime, list[tuple[UUID, str, int]]
]


class Queue(Protocol):
    """The actioned-item queue read model, as the dispatcher reads it."""

    def due(self, now: datetime, limit: int = 500) -> list[dict[str, Any]]: ...

    def sent_before(
        self, time: datetime, handler: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]: ...

    def owner_of_item(self, item_id: str) -> tuple[str, str] | None: ...


class Directory(Protocol):
    """Customers and accounts as templates show them (read models, by id)."""

    def customers_by_id(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...

    def accounts_by_id(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]: ...


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: the base, then twice it, four times… up to the cap."""

    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)

    def after(self, attempt: int, now: datetime) -> datetime:
        delay: timedelta = min(self.base * (2 ** max(attempt - 1, 0)), self.cap)
        return now + delay


class ActionDispatcher:
    """Takes due items from the queue and runs each through its handler."""

    def __init__(
        self,
        care: CustomerCare,
        live: LiveAggregates,
        queue: Queue,
        directory: Directory,
        catch_up: Callable[[], object],
        network: NetworkPort,
        channels: Channels,
        clock: Clock,
        backoff: Backoff | None = None,
        network_timeout: timedelta = timedelta(minutes=10),
        recovery_grace: timedelta = timedelta(minutes=1),
        catch_up_only: Callable[..., object] | None = None,
    ):
        self.care = care
        self._senders = ThreadPoolExecutor(
            _SMTP_SENDERS, thread_name_prefix="monetise-smtp"
        )
        self._writing: list[Writing] = []  # oldest first
        self.live = live
        self.queue = queue
        self.directory = directory
        self.catch_up = catch_up
        self.network = network
        self.channels = channels
        self.clock = clock
        self.backoff = backoff or Backoff()
        self.network_timeout = network_timeout
        # A message "sent" for longer than this was interrupted, not in flight.
        self.recovery_grace = recovery_grace
        # Some views by name (``Views.catch_up_only``); all of them without it.
        self.catch_up_only = catch_up_only or (lambda *names: catch_up())
        # True when another process keeps the read models up to date
        # (``monetise worker --no-views`` beside ``monetise projections follow``).
        self.views_apart = False
        self._new_items: list[tuple[UUID, str]] = []  # handed over, oldest first
        self._next_queue_read = 0.0  # monotonic seconds
        # Network items this process sent, by item id: their owners, so that
        # an answer need not wait for the queue view (views apart).
        self._sent_to_network: dict[str, UUID] = {}

    def take_new_items(self, items: Iterable[tuple[UUID, str]]) -> None:
        """Items the workflow processor just created (saved) that are due now,
        as (owner id, item id): dispatched without waiting for the queue view.

        Kept in memory only: if the worker stops first, the queue view has them.
        """
        self._new_items.extend(items)

    def dispatch_due(self, limit: int = 500) -> int:
        """Run the items due now, and record the messages written to the outbox
        since the last round; returns how many items were taken or recorded.

        With nothing due, it waits for the messages still being written.
        """
        now = self.clock.now()
        rows = self._due_rows(now, limit)
        written = self._written(wait_for_all=not rows)
        if not rows and not written:
            return 0
        # Read afresh where another process changed them since: one query
        # instead of a save that fails.
        copies = self.live.current(
            [*(UUID(row["owner_id"]) for row in rows), *(o for o, _ in written)]
        )
        owners = {str(owner_id): owner for owner_id, owner in copies.items()}
        # The view says due; a working copy that holds the item as dead or
        # waiting for its retry may be behind an agent's retry: read those
        # owners afresh once. (Any other item the copy does not hold as due
        # is done, or the view is behind: the worker's own view lags by design
        # when another process keeps it.)
        behind = {
            UUID(row["owner_id"])
            for row in rows
            if (item := owners[row["owner_id"]].actioned_items.get(row["item_id"]))
            is not None
            and item["status"] in (DEAD, ERROR)
            and not _due(item, now)
        }
        self.live.forget(behind)
        owners.update({str(i): o for i, o in self.live.get_many(behind).items()})
        try:
            for owner_id, outcome in written:
                outcome(owners[str(owner_id)])
            ready, outgoing, extras = self._take(rows, owners, now)
        except BaseException:
            # Half-changed copies must not be saved by a later round; the
            # messages written stay "sent" for recovery to find in the outbox.
            self.live.forget(UUID(owner_id) for owner_id in owners)
            raise
        # Sent is durable before anything leaves: at most once per attempt.
        unsaved = self._save(owners.values(), extras)
        if unsaved:
            # Nothing of these owners' items has left, and they are taken
            # again next round, first; the messages written have left, and
            # are recorded on the owners read afresh.
            self._new_items[:0] = [
                (owner_id, row["item_id"])
                for row in rows
                if (owner_id := UUID(row["owner_id"])) in unsaved
            ]
            self._record_outcomes([w for w in written if w[0] in unsaved])
            outgoing = [(o, item) for o, item in outgoing if o.id not in unsaved]
        self._hand_over(outgoing, now)
        return len(ready) + len(written)

    def _save(self, owners: Iterable[Owner], extras: list[Any]) -> set[UUID]:
        """Save the round's changes; returns the owners not saved (another
        writer changed them first), read afresh next time."""
        owners = list(owners)
        if extras:
            # A disconnection releases its number in the same save: all or none.
            if self.live.save([*owners, *extras]):
                return set()
            return {owner.id for owner in owners}
        return self.live.save_each(owners)

    def _due_rows(self, now: datetime, limit: int) -> list[dict[str, Any]]:
        """The items to look at this round: those handed over by the workflow
        processor, then those the queue view holds as due (each item once)."""
        rows = [
            {"owner_id": str(owner_id), "item_id": item_id}
            for owner_id, item_id in self._new_items[:limit]
        ]
        del self._new_items[:limit]
        if self.views_apart:
            # The view is behind by design here: read it only now and then.
            if rows and time.monotonic() < self._next_queue_read:
                return rows
            self._next_queue_read = time.monotonic() + QUEUE_READ_INTERVAL
        else:
            self.catch_up()
        taken = {row["item_id"] for row in rows}
        rows += [r for r in self.queue.due(now, limit) if r["item_id"] not in taken]
        return rows

    def _remember_sent(self, item_id: str, owner_id: UUID) -> None:
        known = self._sent_to_network
        known[item_id] = owner_id
        if len(known) > _SENT_REMEMBERED:
            # Answers that never came: recovery finds those by the queue view.
            for old in list(itertools.islice(known, len(known) // 2)):
                del known[old]

    def finish_writing(self) -> int:
        """Wait for the messages still being written to the outbox and record
        what became of them (before stopping); returns how many."""
        written = self._written(wait_for_all=True)
        self._record_outcomes(written)
        return len(written)

    def _take(
        self, rows: list[dict[str, Any]], owners: dict[str, Owner], now: datetime
    ) -> tuple[list[Any], list[tuple[Owner, dict[str, Any]]], list[Any]]:
        """Run the due items' internal handlers and record the others as sent.

        Returns the items taken, those to hand over, and other aggregates that
        the handlers changed.
        """
        ready = []
        for row in rows:
            owner = owners[row["owner_id"]]
            item = owner.actioned_items.get(row["item_id"])
            # The aggregate decides, not the view: the view may be behind too.
            if item is not None and _due(item, now):
                ready.append((owner, item))
        outgoing: list[tuple[Owner, dict[str, Any]]] = []
        extras: list[Any] = []
        for owner, item in ready:
            if item["handler"] in INTERNAL_HANDLERS:
                extras += self._run_internal(owner, item, now)
            else:
                # Unique per send, even after an agent's retry resets attempts.
                request_id = f"{item['item_id']}:{owner.version + 1}"
                owner.record_item_sent(item["item_id"], request_id, now)
                outgoing.append((owner, item))
                if item["handler"] == "network" and self.views_apart:
                    self._remember_sent(item["item_id"], owner.id)
        return ready, outgoing, extras

    def collect_responses(self, limit: int = 500) -> int:
        """Record the network's responses to submitted requests."""
        now = self.clock.now()
        responses = self.network.responses(now, limit)
        if not responses:
            return 0
        if not self.views_apart:
            self.catch_up()
        owners = {
            r.item_id: self._sent_to_network.pop(r.item_id, None) for r in responses
        }
        if self.views_apart and any(o is None for o in owners.values()):
            # Sent before this process started, or the answer came twice.
            self.catch_up_only("actioned_items")
        outcomes: list[tuple[UUID, Outcome]] = []
        for response in responses:
            owner_id = owners[response.item_id]
            if owner_id is None:
                found = self.queue.owner_of_item(response.item_id)
                owner_id = UUID(found[1]) if found is not None else None
            if owner_id is not None:
                outcomes.append((owner_id, self._answer(response, now)))
        self._record_outcomes(outcomes)
        self.network.acknowledge([r.request_id for r in responses])
        return len(responses)

    def recover(self) -> int:
        """Settle items left in ``sent`` by a worker that stopped mid-dispatch.

        Answers the network already gave are recorded first: an item is given
        up on (and tried again) only when its answer never came.
        """
        self.collect_responses()
        if not self.views_apart:  # else items "sent" minutes ago: the view has them
            self.catch_up()
        now = self.clock.now()
        outcomes: list[tuple[UUID, Outcome]] = []
        reason = f"no response from the network within {self.network_timeout}"
        for row in self.queue.sent_before(now - self.network_timeout, "network"):
            outcomes.append(
                (UUID(row["owner_id"]), self._give_up(row["item_id"], reason, now))
            )
        for row in self.queue.sent_before(now - self.recovery_grace, "communication"):
            owner = self.live.get(UUID(row["owner_id"]))
            # (A finished item's event may be retired: the view was behind.)
            item = owner.actioned_items.get(row["item_id"])
            if (
                item is None
                or item["status"] != SENT
                or self._being_written(item["item_id"])
            ):
                continue
            if self.channels.already_delivered(item["item_id"], item["channel"]):
                outcome = _completion(item["item_id"], now, "found in the outbox")
            elif item["channel"] == "email" and self.channels.uses_smtp_for_email:
                outcome = _death(
                    item["item_id"],
                    now,
                    "interrupted while sending by "
                    "SMTP; delivery unknown, so not sent again",
                )
            else:
                outcome = self._send(owner, item, now, self._fields([owner]))
            outcomes.append((owner.id, outcome))
        self._record_outcomes(outcomes)
        return len(outcomes)

    # --- handlers ------------------------------------------------------------

    def _run_internal(
        self, owner: Owner, item: dict[str, Any], now: datetime
    ) -> list[Any]:
        """Run an internal handler; returns other aggregates it changed."""
        try:
            owner.run_internal_action(item["item_id"], now)
        except ActionNotApplicable as error:
            # Retrying cannot change the subscription's state: dead at once.
            owner.fail_item(item["item_id"], str(error), now, None)
            return []
        if item["handler"] == "disconnect" and isinstance(owner, Subscription):
            return [self.care.released_number(owner)]
        return []

    def _hand_over(
        self, outgoing: list[tuple[Owner, dict[str, Any]]], now: datetime
    ) -> None:
        fields = self._fields(
            owner for owner, item in outgoing if item["handler"] == "communication"
        )
        outcomes: list[tuple[Owner, Outcome]] = []
        emails: list[tuple[Owner, Message, int]] = []
        messages: list[Message] = []
        writing: list[tuple[Owner, int]] = []
        for owner, item in outgoing:
            if item["handler"] == "network":
                self.network.submit(self._provisioning(owner, item, now))
            elif item["handler"] == "communication":
                attempts = int(item["attempts"])
                try:
                    message = self._message(owner, item, fields)
                except TemplateError as error:
                    failure = self._failure(item["item_id"], attempts, str(error), now)
                    outcomes.append((owner, failure))
                    continue
                if self.channels.goes_to_outbox(message):
                    messages.append(message)
                    writing.append((owner, attempts))
                else:
                    emails.append((owner, message, attempts))
            # external items wait for the external system to report back
        if messages:
            batch = self.channels.write_to_outbox(messages)
            self._writing.append(
                (
                    batch,
                    now,
                    [
                        (owner.id, message.message_id, attempts)
                        for (owner, attempts), message in zip(
                            writing, messages, strict=True
                        )
                    ],
                )
            )
        # An SMTP conversation is mostly waiting: several at once.
        sent = self._senders.map(lambda e: self._deliver(e[1], e[2], now), emails)
        outcomes += [
            (owner, outcome)
            for (owner, _, _), outcome in zip(emails, sent, strict=True)
        ]
        # A small batch is written at once: recorded with the e-mails.
        outcomes += [(self.live.get(o), outcome) for o, outcome in self._written()]
        # The owners were saved a moment ago: record on them, reload on conflict.
        for owner, outcome in outcomes:
            outcome(owner)
        unsaved = self.live.save_each(owner for owner, _ in outcomes)
        if unsaved:
            self._record_outcomes(
                [
                    (owner.id, outcome)
                    for owner, outcome in outcomes
                    if owner.id in unsaved
                ]
            )

    def _deliver(self, message: Message, attempts: int, now: datetime) -> Outcome:
        """Send an e-mail by SMTP; returns how to record what happened."""
        try:
            note = self.channels.send(message)
        except DeliveryError as error:
            return self._failure(message.message_id, attempts, error.reason, now)
        return _completion(message.message_id, now, note)

    def _written(self, wait_for_all: bool = False) -> list[tuple[UUID, Outcome]]:
        """Outcomes of the outbox batches written (every file durable), oldest
        first; ``wait_for_all``: wait for those still being written."""
        if wait_for_all and self._writing:
            wait([batch for batch, _, _ in self._writing])
        outcomes: list[tuple[UUID, Outcome]] = []
        while self._writing and self._writing[0][0].done():
            batch, now, items = self._writing.pop(0)
            try:
                notes = batch.result()
            except Exception:
                # Left "sent": recovery finds the messages in the outbox, or
                # writes them again, once the recovery grace has passed.
                log.exception("writing %d messages to the outbox failed", len(items))
                continue
            for (owner_id, item_id, attempts), note in zip(items, notes, strict=True):
                if isinstance(note, DeliveryError):
                    failure = self._failure(item_id, attempts, note.reason, now)
                    outcomes.append((owner_id, failure))
                else:
                    outcomes.append((owner_id, _completion(item_id, now, note)))
        return outcomes

    def _being_written(self, item_id: str) -> bool:
        return any(item_id == i for *_, items in self._writing for _, i, _ in items)

    def _failure(
        self, item_id: str, attempts: int, reason: str, now: datetime
    ) -> Outcome:
        """An attempt failed: tried again after the backoff (or dead)."""
        retry_at = self.backoff.after(attempts, now)
        return lambda owner: owner.fail_item(item_id, reason, now, retry_at)

    def _send(
        self,
        owner: Owner,
        item: dict[str, Any],
        now: datetime,
        fields: dict[UUID, dict[str, Any]],
    ) -> Outcome:
        """Send a communication; returns how to record what happened."""
        item_id, attempts = item["item_id"], int(item["attempts"])
        try:
            note = self.channels.send(self._message(owner, item, fields))
        except (DeliveryError, TemplateError) as error:
            reason = getattr(error, "reason", str(error))
            return self._failure(item_id, attempts, reason, now)
        return _completion(item_id, now, note)

    def _fields(self, owners: Iterable[Owner]) -> dict[UUID, dict[str, Any]]:
        """Template fields of several owners, with two read-model queries."""
        found = {owner.id: owner for owner in owners}
        account_ids = {
            str(o.account_id) if isinstance(o, Subscription) else str(o.id)
            for o in found.values()
        }
        accounts = self.directory.accounts_by_id(account_ids)
        if self.views_apart and not account_ids <= accounts.keys():
            # Opened a moment ago: the other process has not shown it yet.
            self.catch_up_only("accounts", "customers")
            accounts = self.directory.accounts_by_id(account_ids)
        customer_ids = {a["customer_id"] for a in accounts.values()}
        customers = self.directory.customers_by_id(customer_ids)
        if self.views_apart and not customer_ids <= customers.keys():
            self.catch_up_only("customers")
            customers = self.directory.customers_by_id(customer_ids)
        fields = {}
        for owner in found.values():
            account_id = str(
                owner.account_id if isinstance(owner, Subscription) else owner.id
            )
            account = accounts.get(account_id, {})
            fields[owner.id] = {
                "customer": customers.get(account.get("customer_id", ""), {}),
                "account": account,
                "subscription": (
                    owner.fields() if isinstance(owner, Subscription) else {}
                ),
            }
        return fields

    def _message(
        self, owner: Owner, item: dict[str, Any], fields_of: dict[UUID, dict[str, Any]]
    ) -> Message:
        fields = {**fields_of[owner.id], **self.care.item_fields(owner, item)}
        template = item["template"]
        language = str(fields["customer"].get("language") or "en")
        body = choose_text(template["body"], template.get("translations", {}), language)
        subject = template.get("subject")
        channel = item["channel"]
        receiver = {
            "email": fields["customer"].get("email", ""),
            "sms": fields["subscription"].get("msisdn")
            or fields["customer"].get("phone", ""),
            "push": fields["subscription"].get("msisdn", ""),
            "letter": fields["customer"].get("address")
            or fields["customer"].get("name", ""),
        }[channel]
        return Message(
            message_id=item["item_id"],
            channel=channel,
            receiver=str(receiver or ""),
            subject=render(subject, fields) if subject else None,
            body=render(body, fields),
            language=language,
            workflow_event=f"{fields['event']['type']} {fields['event']['code']}",
            created_at=self.clock.now(),
        )

    def _provisioning(
        self, owner: Owner, item: dict[str, Any], now: datetime
    ) -> ProvisioningRequest:
        parameters = dict(item["parameters"])
        command = str(parameters.pop("command"))
        subscription = owner if isinstance(owner, Subscription) else None
        return ProvisioningRequest(
            request_id=item["request_id"],
            item_id=item["item_id"],
            command=command,
            parameters=parameters,
            msisdn=subscription.msisdn if subscription else None,
            imsi=(subscription.imsi or None) if subscription else None,
            submitted_at=now,
        )

    def _answer(self, response: ProvisioningResponse, now: datetime) -> Outcome:
        def record(owner: Owner) -> None:
            item = owner.actioned_items.get(response.item_id)  # None: retired
            if (
                item is None
                or item["status"] != SENT
                or item.get("request_id") != response.request_id
            ):
                return  # a late answer to an attempt already given up on
            if response.outcome == "success":
                owner.complete_item(item["item_id"], now, response.reason)
            elif item["ignore_network_errors"]:
                owner.complete_item(
                    item["item_id"],
                    now,
                    "network error ignored as configured",
                    ignored_error=response.reason,
                )
            else:
                owner.fail_item(
                    item["item_id"],
                    response.reason,
                    now,
                    self.backoff.after(int(item["attempts"]), now),
                )

        return record

    def _give_up(self, item_id: str, reason: str, now: datetime) -> Outcome:
        def record(owner: Owner) -> None:
            item = owner.actioned_items.get(item_id)  # None: retired
            if item is not None and item["status"] == SENT:
                owner.fail_item(
                    item_id, reason, now, self.backoff.after(int(item["attempts"]), now)
                )

        return record

    # --- saving --------------------------------------------------------------

    def _record_outcomes(self, outcomes: list[tuple[UUID, Outcome]]) -> None:
        """Record outcomes of work already done, reloading on a conflict.

        The work has left monetise, so its outcome must not be lost to an
        agent's concurrent change of the same subscription.
        """
        for _ in range(_RETRIES):
            if not outcomes:
                return
            # All read afresh in one query (one by one, they took a third of
            # the worker's time while a bulk raise kept colliding with it).
            owners = self.live.current(owner_id for owner_id, _ in outcomes)
            for owner_id, outcome in outcomes:
                outcome(owners[owner_id])
            unsaved = self.live.save_each(owners.values())
            outcomes = [(i, outcome) for i, outcome in outcomes if i in unsaved]
        if not outcomes:
            return
        raise RuntimeError("could not record outcomes: too many conflicting writes")


def _completion(item_id: str, now: datetime, note: str) -> Outcome:
    return lambda owner: owner.complete_item(item_id, now, note)


def _death(item_id: str, now: datetime, reason: str) -> Outcome:
    return lambda owner: owner.fail_item(item_id, reason, now, None)


def _due(item: dict[str, Any] | None, now: datetime) -> bool:
    if item is None or item["status"] not in PENDING_STATES:
        return False
    if item["status"] == ERROR:
        return item["retry_at"] is not None and item["retry_at"] <= now
    return bool(item["due_at"] <= now)
