"""The Subscription aggregate: a SIM/MSISDN that incurs charges, and its workflow."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.account import ActionNotApplicable
from domain.workflow import WorkflowLog, retire_all_finished

PENDING, ACTIVE, SUSPENDED, DISCONNECTED = (
    "pending",
    "active",
    "suspended",
    "disconnected",
)
PAYMENT_TYPES = ("postpaid", "prepaid")
SUBSCRIPTION_HANDLERS = (
    "bar",
    "unbar",
    "connect",
    "disconnect",
    "subscription_service",
    "top_up",
)


class Subscription(WorkflowLog, Aggregate):
    TOPIC = "monetise.subscription:Subscription"
    class_version = 3  # v2: charged_batches (prepaid usage); v3: retired events
    LEVEL = "subscription"

    class Created(Aggregate.Created):
        TOPIC = "monetise.subscription:Subscription.Created"
        class_version = 1
        account_id: UUID
        customer_id: UUID
        msisdn: str
        imsi: str
        payment_type: str
        rate_plan: str
        currency: str
        status: str
        created_by: str

    class BarApplied(Aggregate.Event):
        TOPIC = "monetise.subscription:Subscription.BarApplied"
        class_version = 1
        bar: str
        item_id: str

    class BarRemoved(Aggregate.Event):
        TOPIC = "monetise.subscription:Subscription.BarRemoved"
        class_version = 1
        bar: str
        item_id: str

    class Connected(Aggregate.Event):
        TOPIC = "monetise.subscription:Subscription.Connected"
        class_version = 1
        item_id: str

    class Disconnected(Aggregate.Event):
        TOPIC = "monetise.subscription:Subscription.Disconnected"
        class_version = 1
        reason: str
        item_id: str

    class ServiceAdded(Aggregate.Event):
        TOPIC = "monetise.subscription:Subscription.ServiceAdded"
        class_version = 1
        service: str
        item_id: str

    class ServiceRemoved(Aggregate.Event):
        TOPIC = "monetise.subscription:Subscription.ServiceRemoved"
        class_version = 1
        service: str
        item_id: str

    class ToppedUp(Aggregate.Event):
        TOPIC = "monetise.subscription:Subscription.ToppedUp"
        class_version = 1
        amount: Decimal
        currency: str
        balance: Decimal
        item_id: str

    class PrepaidUsageCharged(Aggregate.Event):
        """Loaded prepaid usage of a usage batch was taken off the balance."""

        TOPIC = "monetise.subscription:Subscription.PrepaidUsageCharged"
        class_version = 1
        batch_id: UUID
        run: int
        amount: Decimal
        records: int
        balance: Decimal

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """Snapshots from before prepaid usage charging."""
        state["charged_batches"] = {}

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        """Snapshots from before finished workflow events were retired."""
        retire_all_finished(state)

    @event(Created)
    def __init__(
        self,
        account_id: UUID,
        customer_id: UUID,
        msisdn: str,
        imsi: str,
        payment_type: str,
        rate_plan: str,
        currency: str,
        status: str,
        created_by: str,
    ) -> None:
        self.account_id = account_id
        self.customer_id = customer_id
        self.msisdn = msisdn
        self.imsi = imsi
        self.payment_type = payment_type
        self.rate_plan = rate_plan
        self.currency = currency
        self.status = status
        self.bars: list[str] = []
        self.services: list[str] = []
        self.prepaid_balance = Decimal("0")
        # batch:run → records charged; a dict because snapshots store JSON.
        self.charged_batches: dict[str, int] = {}
        self.workflow_events: dict[str, dict[str, Any]] = {}
        self.actioned_items: dict[str, dict[str, Any]] = {}
        self.retired_workflow_events: dict[str, list[str]] = {}
        self.retired_items: dict[str, list[str]] = {}

    def fields(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "msisdn": self.msisdn,
            "imsi": self.imsi,
            "status": self.status,
            "payment_type": self.payment_type,
            "rate_plan": self.rate_plan,
            "prepaid_balance": self.prepaid_balance,
            "bars": list(self.bars),
            "services": list(self.services),
        }

    def why_not(self, handler: str, parameters: dict[str, Any]) -> str | None:
        """Why an internal action cannot apply now, or None when it can."""
        if handler not in SUBSCRIPTION_HANDLERS:
            return f"the {handler} handler acts on accounts, not subscriptions"
        if self.status == DISCONNECTED:
            return f"subscription {self.msisdn} is disconnected"
        if handler == "top_up":
            if self.payment_type != "prepaid":
                return (
                    f"subscription {self.msisdn} is {self.payment_type}: top-ups "
                    "are for prepaid subscriptions"
                )
            currency = parameters.get("currency", self.currency)
            if currency != self.currency:
                return (
                    f"the top-up is in {currency}, the subscription in {self.currency}"
                )
        return None

    def run_internal_action(self, item_id: str, at: datetime) -> str:
        """Apply an internal action and complete its item; returns the handler.

        Raises ActionNotApplicable when the subscription's state forbids it.
        """
        item = self.actioned_item(item_id)
        self.require_runnable(item)
        handler, parameters = item["handler"], item["parameters"]
        reason = self.why_not(handler, parameters)
        if reason:
            raise ActionNotApplicable(reason)
        note = getattr(self, f"_run_{handler}")(parameters, item_id)
        self.complete_item(item_id, at, note)
        return str(handler)

    def _run_bar(self, parameters: dict[str, Any], item_id: str) -> str:
        bar = str(parameters["bar"])
        if bar in self.bars:
            return f"{bar} bar was already applied"
        self._bar(bar=bar, item_id=item_id)
        return f"{bar} bar applied"

    def _run_unbar(self, parameters: dict[str, Any], item_id: str) -> str:
        bar = str(parameters["bar"])
        if bar not in self.bars:
            return f"no {bar} bar to remove"
        self._unbar(bar=bar, item_id=item_id)
        return f"{bar} bar removed"

    def _run_connect(self, parameters: dict[str, Any], item_id: str) -> str:
        if self.status == ACTIVE:
            return "already active"
        self._connect(item_id=item_id)
        return "connected"

    def _run_disconnect(self, parameters: dict[str, Any], item_id: str) -> str:
        self._disconnect(reason=str(parameters.get("reason", "")), item_id=item_id)
        return "disconnected"

    def _run_subscription_service(
        self, parameters: dict[str, Any], item_id: str
    ) -> str:
        service = str(parameters["service"])
        if parameters.get("operation", "add") == "remove":
            if service not in self.services:
                return f"service {service} was not there"
            self._remove_service(service=service, item_id=item_id)
            return f"service {service} removed"
        if service in self.services:
            return f"service {service} was already there"
        self._add_service(service=service, item_id=item_id)
        return f"service {service} added"

    def _run_top_up(self, parameters: dict[str, Any], item_id: str) -> str:
        amount = Decimal(str(parameters["amount"]))
        balance = self.prepaid_balance + amount
        self._top_up(
            amount=amount, currency=self.currency, balance=balance, item_id=item_id
        )
        return f"topped up {amount} {self.currency}; balance {balance}"

    def charge_prepaid_usage(
        self, batch_id: UUID, run: int, amount: Decimal, records: int
    ) -> bool:
        """Take a batch run's net prepaid usage off the balance, once per run."""
        if f"{batch_id}:{run}" in self.charged_batches:
            return False
        self._charge_prepaid_usage(
            batch_id=batch_id,
            run=run,
            amount=amount,
            records=records,
            balance=self.prepaid_balance - amount,
        )
        return True

    @event(PrepaidUsageCharged)
    def _charge_prepaid_usage(
        self, batch_id: UUID, run: int, amount: Decimal, records: int, balance: Decimal
    ) -> None:
        self.charged_batches[f"{batch_id}:{run}"] = records
        self.prepaid_balance = balance

    @event(BarApplied)
    def _bar(self, bar: str, item_id: str) -> None:
        self.bars.append(bar)

    @event(BarRemoved)
    def _unbar(self, bar: str, item_id: str) -> None:
        self.bars.remove(bar)

    @event(Connected)
    def _connect(self, item_id: str) -> None:
        self.status = ACTIVE

    @event(Disconnected)
    def _disconnect(self, reason: str, item_id: str) -> None:
        self.status = DISCONNECTED

    @event(ServiceAdded)
    def _add_service(self, service: str, item_id: str) -> None:
        self.services.append(service)

    @event(ServiceRemoved)
    def _remove_service(self, service: str, item_id: str) -> None:
        self.services.remove(service)

    @event(ToppedUp)
    def _top_up(
        self, amount: Decimal, currency: str, balance: Decimal, item_id: str
    ) -> None:
        self.prepaid_balance = balance
