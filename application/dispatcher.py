"""The action dispatcher: runs due actioned items through their handlers.

At most once per attempt: an item is recorded as sent before anything leaves
monetise (network request, message), and internal handlers change the
aggregate in the same save as the item's completion. Work is done in batches
(one save for many items) because the event store serialises saves.

A batch of messages for the outbox is written by one thread, file after file,
each synced before it is renamed into place; their directories are synced
once, after the last of them, and only then is any recorded as completed.
E-mails to an SMTP server, which are mostly waiting, go several at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
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
from domain.workflow import ERROR, PENDING_STATES, SENT

# How to record what happened to an item, applied to its (re)loaded owner.
Outcome = Callable[[Owner], None]
_RETRIES = 20
_SMTP_SENDERS = 8  # e-mails sent at once: each mostly waits on its server


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
    ):
        self.care = care
        self._senders = ThreadPoolExecutor(
            _SMTP_SENDERS, thread_name_prefix="monetise-smtp"
        )
        self.live = live
        self.queue = queue
        self.directory = directory
        self.catch_up = catch_up
        # False while another thread keeps the read models current (the
        # worker's): the queue is then read as it is, without waiting for it.
        self.catch_up_first = True
        self.network = network
        self.channels = channels
        self.clock = clock
        self.backoff = backoff or Backoff()
        self.network_timeout = network_timeout
        # A message "sent" for longer than this was interrupted, not in flight.
        self.recovery_grace = recovery_grace

    def dispatch_due(self, limit: int = 500) -> int:
        """Run the items due now; returns how many were taken."""
        self._catch_up()
        now = self.clock.now()
        rows = self.queue.due(now, limit)
        if not rows:
            return 0
        # Read afresh where another process changed them since: one query
        # instead of a save that fails.
        copies = self.live.current(UUID(row["owner_id"]) for row in rows)
        owners = {str(owner_id): owner for owner_id, owner in copies.items()}
        # The view says due; a working copy that disagrees may be behind an
        # agent's change (a retry, say): read those owners afresh once.
        behind = {
            UUID(row["owner_id"])
            for row in rows
            if not _due(owners[row["owner_id"]].actioned_items.get(row["item_id"]), now)
        }
        self.live.forget(behind)
        owners.update({str(i): o for i, o in self.live.get_many(behind).items()})
        try:
            ready, outgoing, extras = self._take(rows, owners, now)
        except BaseException:
            # Half-changed copies must not be saved by a later round.
            self.live.forget(UUID(owner_id) for owner_id in owners)
            raise
        # Sent is durable before anything leaves: at most once per attempt.
        if not self.live.save([*owners.values(), *extras]):
            return 0
        self._hand_over(outgoing, now)
        return len(ready)

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
        return ready, outgoing, extras

    def collect_responses(self, limit: int = 500) -> int:
        """Record the network's responses to submitted requests."""
        now = self.clock.now()
        responses = self.network.responses(now, limit)
        if not responses:
            return 0
        self._catch_up()
        outcomes: list[tuple[UUID, Outcome]] = []
        for response in responses:
            found = self.queue.owner_of_item(response.item_id)
            if found is not None:
                outcomes.append((UUID(found[1]), self._answer(response, now)))
        self._record_outcomes(outcomes)
        self.network.acknowledge([r.request_id for r in responses])
        return len(responses)

    def recover(self) -> int:
        """Settle items left in ``sent`` by a worker that stopped mid-dispatch.

        Answers the network already gave are recorded first: an item is given
        up on (and tried again) only when its answer never came.
        """
        self.collect_responses()
        self._catch_up()
        now = self.clock.now()
        outcomes: list[tuple[UUID, Outcome]] = []
        reason = f"no response from the network within {self.network_timeout}"
        for row in self.queue.sent_before(now - self.network_timeout, "network"):
            outcomes.append(
                (UUID(row["owner_id"]), self._give_up(row["item_id"], reason, now))
            )
        for row in self.queue.sent_before(now - self.recovery_grace, "communication"):
            owner = self.live.get(UUID(row["owner_id"]))
            item = owner.actioned_items[row["item_id"]]
            if item["status"] != SENT:
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

    def _catch_up(self) -> None:
        if self.catch_up_first:
            self.catch_up()

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
                if message.channel == "email" and self.channels.uses_smtp_for_email:
                    emails.append((owner, message, attempts))
                else:
                    outcomes.append((owner, self._deliver(message, attempts, now)))
            # external items wait for the external system to report back
        # An SMTP conversation is mostly waiting: several at once. Outbox files
        # are written above one after the other: more threads only contend
        # for the file system's journal (measured: twice the CPU per file).
        sent = self._senders.map(lambda e: self._deliver(e[1], e[2], now), emails)
        outcomes += [
            (owner, outcome)
            for (owner, _, _), outcome in zip(emails, sent, strict=True)
        ]
        # Every outbox file is durable before any completion is recorded.
        self.channels.sync()
        # The owners were saved a moment ago: record on them, reload on conflict.
        for owner, outcome in outcomes:
            outcome(owner)
        if not self.live.save(owner for owner, _ in outcomes):
            self._record_outcomes([(owner.id, outcome) for owner, outcome in outcomes])

    def _deliver(self, message: Message, attempts: int, now: datetime) -> Outcome:
        """Hand a message over; returns how to record what happened.

        An outbox file written here is durable after ``channels.sync()``.
        """
        try:
            note = self.channels.send(message, defer_sync=True)
        except DeliveryError as error:
            return self._failure(message.message_id, attempts, error.reason, now)
        return _completion(message.message_id, now, note)

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
        customers = self.directory.customers_by_id(
            a["customer_id"] for a in accounts.values()
        )
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
            item = owner.actioned_items[response.item_id]
            if item["status"] != SENT or item.get("request_id") != response.request_id:
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
            item = owner.actioned_items[item_id]
            if item["status"] == SENT:
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
            owners: dict[UUID, Owner] = {}
            for owner_id, outcome in outcomes:
                owner = owners.get(owner_id) or self.live.get(owner_id)
                owners[owner_id] = owner
                outcome(owner)
            if self.live.save(owners.values()):
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
