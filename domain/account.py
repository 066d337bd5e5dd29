"""The Account aggregate: the billing entity of a customer, with its workflow log."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.workflow import WorkflowLog, retire_all_finished


class ActionNotApplicable(Exception):
    """An action cannot apply to the account or subscription as it is now."""


ACCOUNT_HANDLERS = ("account_type_movement",)


class Account(WorkflowLog, Aggregate):
    TOPIC = "monetise.account:Account"
    class_version = 2  # v2: finished workflow events retired
    LEVEL = "account"

    class Created(Aggregate.Created):
        """The account was opened."""

        TOPIC = "monetise.account:Account.Created"
        class_version = 1
        customer_id: UUID
        number: str
        account_type: str
        bill_cycle_day: int
        currency: str
        opened_by: str

    class AccountTypeMoved(Aggregate.Event):
        TOPIC = "monetise.account:Account.AccountTypeMoved"
        class_version = 1
        from_type: str
        to_type: str
        item_id: str

    @event(Created)
    def __init__(
        self,
        customer_id: UUID,
        number: str,
        account_type: str,
        bill_cycle_day: int,
        currency: str,
        opened_by: str,
    ) -> None:
        self.customer_id = customer_id
        self.number = number
        self.account_type = account_type
        self.bill_cycle_day = bill_cycle_day
        self.currency = currency
        self.balance = Decimal("0")
        self.credit_status = "normal"
        self.workflow_events: dict[str, dict[str, Any]] = {}
        self.actioned_items: dict[str, dict[str, Any]] = {}
        self.retired_workflow_events: dict[str, list[str]] = {}
        self.retired_items: dict[str, list[str]] = {}

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """Snapshots from before finished workflow events were retired."""
        retire_all_finished(state)

    def fields(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "number": self.number,
            "account_type": self.account_type,
            "currency": self.currency,
            "balance": self.balance,
            "bill_cycle_day": self.bill_cycle_day,
            "credit_status": self.credit_status,
        }

    def why_not(self, handler: str, parameters: dict[str, Any]) -> str | None:
        """Why an internal action cannot apply now, or None when it can."""
        if handler not in ACCOUNT_HANDLERS:
            return f"the {handler} handler acts on subscriptions, not accounts"
        return None

    def run_internal_action(self, item_id: str, at: datetime) -> None:
        """Apply an internal action to this account and complete its item."""
        item = self.actioned_item(item_id)
        self.require_runnable(item)
        reason = self.why_not(item["handler"], item["parameters"])
        if reason:
            raise ActionNotApplicable(reason)
        target = str(item["parameters"]["account_type"])
        note = f"account type is already {target}"
        if target != self.account_type:
            note = f"account type moved from {self.account_type} to {target}"
            self._move(from_type=self.account_type, to_type=target, item_id=item_id)
        self.complete_item(item_id, at, note)

    @event(AccountTypeMoved)
    def _move(self, from_type: str, to_type: str, item_id: str) -> None:
        self.account_type = to_type
