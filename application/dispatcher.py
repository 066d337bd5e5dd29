"""The action dispatcher: runs due actioned items through their handlers.

At most once per attempt: an item is recorded as sent before anything leaves
monetise (network request, message), and internal handlers change the
aggregate in the same save as the item's completion. Work is done in batches
(one save for many items) because the event store serialises saves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from application.channels import Channels, DeliveryError, Message
from application.clock import Clock
from application.customer_care import CustomerCare, Owner
from application.network import (
    NetworkPort,
    ProvisioningRequest,
)
from domain.account import ActionNotApplicable
from domain.raising import INTERNAL_HANDLERS
from domain.subscription import Subscription
from domain.templates import TemplateError, choose_text, render
from domain.workflow import ERROR, PENDING_STATES, SENT

Outcome = Callable[[Owner], None]
_RETRIES = 20


class Queue(Protocol):
    """The actioned-item queue read model, as the dispatcher reads it."""

    def due(self, now: datetime, limit: int = 500) -> list[dict[str, Any]]: ...

    def sent_before(
        self, time: datetime, handler: str | None = None
    ) -> list[dict[str, Any]]: ...

    def owner_of_item(self, item_id: str) -> tuple[str, str] | None: ...


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
        queue: Queue,
        catch_up: Callable[[], object],
        network: NetworkPort,
        channels: Channels,
        clock: Clock,
        backoff: Backoff | None = None,
        network_timeout: timedelta = timedelta(minutes=10),
        recovery_grace: timedelta = timedelta(minutes=1),
    ):
        self.care = care
        self.queue = queue
        self.catch_up = catch_up
        self.network = network
        self.channels = channels
        self.clock = clock
        self.backoff = backoff or Backoff()
        self.network_timeout = network_timeout
        # A message "sent" for longer than this was interrupted, not in flight.
        self.recovery_grace = recovery_grace

    def dispatch_due(self, limit: int = 500) -> int:
        """Run the items due now; returns how many were taken."""
        self.catch_up()
        now = self.clock.now()
        rows = self.queue.due(now, limit)
        if not rows:
            return 0
        owners = self._owners(rows)
        ready = []
        for row in rows:
            owner = owners[row["owner_id"]]
            item = owner.actioned_items.get(row["item_id"])
            # The aggregate decides, not the view: the view may be behind.
            if item is None or not _due(item, now):
                continue
            ready.append((owner, item))
        outgoing: list[tuple[Owner, dict[str, Any], int]] = []
        extras: list[Any] = []
        for owner, item in ready:
            handler = item["handler"]
            if handler in INTERNAL_HANDLERS:
                extras += self._run_internal(owner, item, now)
            else:
                # Unique per send, even after an agent's retry resets attempts.
                request_id = f"{item['item_id']}:{owner.version + 1}"
                attempt = owner.record_item_sent(item["item_id"], request_id, now)
                outgoing.append((owner, item, attempt))
        # Sent is durable before anything leaves: at most once per attempt.
        if not self._save([*owners.values(), *extras]):
            return 0
        self._hand_over(outgoing, now)
        return len(ready)

    def collect_responses(self, limit: int = 500) -> int:
        """Record the network's responses to submitted requests."""
        now = self.clock.now()
        responses = self.network.responses(now, limit)
        if not responses:
            return 0
        self.catch_up()
        owners: dict[str, Owner] = {}
        for response in responses:
            found = self.queue.owner_of_item(response.item_id)
            if found is None:
                continue
            owner = owners.get(found[1]) or self.care.owner(UUID(found[1]))
            owners[found[1]] = owner
            item = owner.actioned_items[response.item_id]
            if item["status"] != SENT or item.get("request_id") != response.request_id:
                continue  # a late answer to an attempt already given up on
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
        if self._save(owners.values()):
            self.network.acknowledge([r.request_id for r in responses])
        return len(responses)

    def recover(self) -> int:
        """Settle items left in ``sent`` by a worker that stopped mid-dispatch."""
        self.catch_up()
        now = self.clock.now()
        settled = 0
        owners: dict[str, Owner] = {}
        for row in self.queue.sent_before(now - self.network_timeout, "network"):
            owner = owners.setdefault(
                row["owner_id"], self.care.owner(UUID(row["owner_id"]))
            )
            item = owner.actioned_items[row["item_id"]]
            if item["status"] == SENT:
                owner.fail_item(
                    item["item_id"],
                    f"no response from the network within {self.network_timeout}",
                    now,
                    self.backoff.after(int(item["attempts"]), now),
                )
                settled += 1
        for row in self.queue.sent_before(now - self.recovery_grace, "communication"):
            owner = owners.setdefault(
                row["owner_id"], self.care.owner(UUID(row["owner_id"]))
            )
            item = owner.actioned_items[row["item_id"]]
            if item["status"] != SENT:
                continue
            settled += 1
            if self.channels.already_delivered(item["item_id"], item["channel"]):
                owner.complete_item(item["item_id"], now, "found in the outbox")
            elif item["channel"] == "email" and self.channels.uses_smtp_for_email:
                owner.fail_item(
                    item["item_id"],
                    "interrupted while sending by SMTP; "
                    "delivery unknown, so not sent again",
                    now,
                    None,
                )
            else:
                self._send(owner, item, now)
        self._save(owners.values())
        return settled

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
        self, outgoing: list[tuple[Owner, dict[str, Any], int]], now: datetime
    ) -> None:
        changed: dict[UUID, Owner] = {}
        for owner, item, _ in outgoing:
            if item["handler"] == "network":
                self.network.submit(self._provisioning(owner, item, now))
            elif item["handler"] == "communication":
                self._send(owner, item, now)
                changed[owner.id] = owner
            # external items wait for the external system to report back
        self._save(changed.values())

    def _send(self, owner: Owner, item: dict[str, Any], now: datetime) -> None:
        try:
            note = self.channels.send(self._message(owner, item))
        except (DeliveryError, TemplateError) as error:
            reason = getattr(error, "reason", str(error))
            owner.fail_item(
                item["item_id"],
                reason,
                now,
                self.backoff.after(int(item["attempts"]), now),
            )
        else:
            owner.complete_item(item["item_id"], now, note)

    def _message(self, owner: Owner, item: dict[str, Any]) -> Message:
        fields = self.care.template_fields(owner, item)
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
        wf = owner.workflow_events[item["workflow_event_id"]]
        return Message(
            message_id=item["item_id"],
            channel=channel,
            receiver=str(receiver or ""),
            subject=render(subject, fields) if subject else None,
            body=render(body, fields),
            language=language,
            workflow_event=f"{wf['event_type']} {wf['event_code']}",
            created_at=self.clock.now(),
        )

    def _provisioning(
        self, owner: Owner, item: dict[str, Any], now: datetime
    ) -> ProvisioningRequest:
        parameters = dict(item["parameters"])
        command = str(parameters.pop("command"))
        is_subscription = isinstance(owner, Subscription)
        return ProvisioningRequest(
            request_id=item["request_id"],
            item_id=item["item_id"],
            command=command,
            parameters=parameters,
            msisdn=owner.msisdn if isinstance(owner, Subscription) else None,
            imsi=(owner.imsi or None) if is_subscription else None,  # type: ignore[union-attr]
            submitted_at=now,
        )

    # --- helpers -------------------------------------------------------------

    def _owners(self, rows: Iterable[dict[str, Any]]) -> dict[str, Owner]:
        return {
            owner_id: self.care.owner(UUID(owner_id))
            for owner_id in {row["owner_id"] for row in rows}
        }

    def _save(self, owners: Iterable[Owner]) -> bool:
        """Save every changed aggregate at once; False when another writer won.

        Nothing was handed over yet when this returns False, so the items stay
        due and are taken again on the next round.
        """
        changed = [o for o in owners if o.pending_events]
        if not changed:
            return True
        try:
            self.care.save(*changed)
        except IntegrityError:
            return False
        return True


def _completer(item_id: str, now: datetime, note: str) -> Outcome:
    return lambda owner: owner.complete_item(item_id, now, note)


def _killer(item_id: str, now: datetime, reason: str) -> Outcome:
    return lambda owner: owner.fail_item(item_id, reason, now, None)


def _due(item: dict[str, Any], now: datetime) -> bool:
    if item["status"] not in PENDING_STATES:
        return False
    if item["status"] == ERROR:
        return item["retry_at"] is not None and item["retry_at"] <= now
    return bool(item["due_at"] <= now)
