"""Read models of customers, accounts and subscriptions: what agents list and find."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, ClassVar
from uuid import UUID

from domain.account import Account
from domain.customer import Customer
from domain.subscription import ACTIVE, DISCONNECTED, Subscription
from projections.runner import Batch, BatchRows, Projection, topics_of
from projections.store import Row, Rows, Table, Transaction, utc_text

Change = Callable[[Row, Any], None]

COMMON_COLUMNS = (
    ("created_at", "TEXT"),
    ("updated_at", "TEXT"),
    ("position", "BIGINT NOT NULL"),
)


class AggregateView(Projection):
    """One row per aggregate of one kind, keyed by the aggregate's id.

    Subclasses give the row of the ``Created`` event (``new_row``) and what
    each later event changes (``changes``); a batch loads the rows it touches
    with one query and writes them back with one batched write.
    """

    table: ClassVar[Table]
    created: ClassVar[type]
    changes: ClassVar[dict[type, Change]] = {}
    json_columns: ClassVar[tuple[str, ...]] = ()

    def new_row(self, event: Any) -> Row:
        raise NotImplementedError

    def process(self, tx: Transaction, notification_id: int, domain_event: Any) -> None:
        self.process_batch(tx, [(notification_id, domain_event)])

    def process_batch(self, tx: Transaction, events: Batch) -> None:
        rows = BatchRows(tx, self.table, self.kept_rows(self.table))
        created: Any = self.created  # Any: `is` would narrow the events to object
        new = {str(e.originator_id) for _, e in events if type(e) is created}
        rows.load({str(e.originator_id) for _, e in events} - new)
        for position, event in events:
            at = utc_text(event.timestamp)
            if type(event) is created:
                row = self.new_row(event)
                row.update(created_at=at, updated_at=at, position=position)
                rows.add(row)
                continue
            found = rows.get(str(event.originator_id))
            if found is None:
                continue  # created outside this log: nothing to change
            self.changes[type(event)](found, event)
            found.update(updated_at=at, position=position)
            rows.changed(found)
        rows.flush()

    def _decode(self, row: Row) -> Row:
        for column in self.json_columns:
            row[column] = json.loads(row[column] or "[]")
        return row

    def get(self, aggregate_id: UUID | str) -> Row | None:
        """The row of one aggregate, or None."""
        with self.db.read() as tx:
            row = tx.fetchone(
                f"SELECT * FROM {self.table.name} WHERE id = ?",  # noqa: S608
                (str(aggregate_id),),
            )
        return self._decode(row) if row else None

    def many(self, aggregate_ids: Iterable[UUID | str]) -> dict[str, Row]:
        """Rows of several aggregates in one query, by id (missing ones left out)."""
        keys = sorted({str(i) for i in aggregate_ids})
        if not keys:
            return {}
        with self.db.read() as tx:
            rows = tx.select_in(self.table.name, "id", keys)
        return {row["id"]: self._decode(row) for row in rows}

    def _select(
        self, where: dict[str, Any], order: str, limit: int, offset: int
    ) -> Rows:
        filters = {
            f"{column} = ?": None if value is None else str(value)
            for column, value in where.items()
        }
        rows = self.db.select(self.table.name, filters, order, limit, offset)
        return [self._decode(row) for row in rows]


# --- subscriptions -------------------------------------------------------------


def _add(column: str, field: str) -> Change:
    def change(row: Row, event: Any) -> None:
        values = json.loads(row[column])
        values.append(getattr(event, field))
        row[column] = json.dumps(values)

    return change


def _remove(column: str, field: str) -> Change:
    def change(row: Row, event: Any) -> None:
        values = json.loads(row[column])
        value = getattr(event, field)
        if value in values:
            values.remove(value)
        row[column] = json.dumps(values)

    return change


def _set(**values: Any) -> Change:
    def change(row: Row, event: Any) -> None:
        row.update(values)

    return change


def _topped_up(row: Row, event: Any) -> None:
    row["prepaid_balance"] = str(event.balance)


class SubscriptionsView(AggregateView):
    """Subscriptions with their status, bars, services and prepaid balance."""

    name = "subscriptions_v1"
    table = Table(
        "view_subscriptions",
        (
            ("id", "TEXT NOT NULL"),
            ("account_id", "TEXT"),
            ("customer_id", "TEXT"),
            ("msisdn", "TEXT"),
            ("imsi", "TEXT"),
            ("status", "TEXT"),
            ("payment_type", "TEXT"),
            ("rate_plan", "TEXT"),
            ("currency", "TEXT"),
            ("bars", "TEXT NOT NULL"),
            ("services", "TEXT NOT NULL"),
            ("prepaid_balance", "TEXT NOT NULL"),
            *COMMON_COLUMNS,
        ),
        key=("id",),
        indexes=(("msisdn",), ("imsi",), ("account_id",), ("customer_id",)),
    )
    tables = (table,)
    created = Subscription.Created
    changes = {
        Subscription.BarApplied: _add("bars", "bar"),
        Subscription.BarRemoved: _remove("bars", "bar"),
        Subscription.Connected: _set(status=ACTIVE),
        Subscription.Disconnected: _set(status=DISCONNECTED),
        Subscription.ServiceAdded: _add("services", "service"),
        Subscription.ServiceRemoved: _remove("services", "service"),
        Subscription.ToppedUp: _topped_up,
        Subscription.PrepaidUsageCharged: _topped_up,
    }
    topics = topics_of(created, *changes)
    json_columns = ("bars", "services")

    def new_row(self, event: Any) -> Row:
        return {
            "id": str(event.originator_id),
            "account_id": str(event.account_id),
            "customer_id": str(event.customer_id),
            "msisdn": event.msisdn,
            "imsi": event.imsi,
            "status": event.status,
            "payment_type": event.payment_type,
            "rate_plan": event.rate_plan,
            "currency": event.currency,
            "bars": "[]",
            "services": "[]",
            "prepaid_balance": "0",
        }

    def by_msisdn(self, msisdn: str) -> Row | None:
        """The live subscription of a number, else its most recent one.

        A number released by a disconnection may be given to someone else.
        """
        with self.db.read() as tx:
            row = tx.fetchone(
                "SELECT * FROM view_subscriptions WHERE msisdn = ?"
                " ORDER BY CASE WHEN status = ? THEN 1 ELSE 0 END,"
                " created_at DESC, position DESC LIMIT 1",
                (msisdn, DISCONNECTED),
            )
        return self._decode(row) if row else None

    def list(
        self,
        account_id: UUID | str | None = None,
        customer_id: UUID | str | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> Rows:
        """Subscriptions, of one account or customer when given, oldest first."""
        where = {"account_id": account_id, "customer_id": customer_id}
        return self._select(where, "created_at, id", limit, offset)


# --- accounts ------------------------------------------------------------------


def _moved(row: Row, event: Any) -> None:
    row["account_type"] = event.to_type


class AccountsView(AggregateView):
    """Accounts with their number, type, currency and bill-cycle day."""

    name = "accounts_v1"
    table = Table(
        "view_accounts",
        (
            ("id", "TEXT NOT NULL"),
            ("number", "TEXT"),
            ("customer_id", "TEXT"),
            ("account_type", "TEXT"),
            ("currency", "TEXT"),
            ("bill_cycle_day", "INTEGER"),
            ("balance", "TEXT"),
            ("credit_status", "TEXT"),
            ("opened_by", "TEXT"),
            *COMMON_COLUMNS,
        ),
        key=("id",),
        indexes=(("number",), ("customer_id",)),
    )
    tables = (table,)
    created = Account.Created
    changes = {Account.AccountTypeMoved: _moved}
    topics = topics_of(created, *changes)

    def new_row(self, event: Any) -> Row:
        return {
            "id": str(event.originator_id),
            "number": event.number,
            "customer_id": str(event.customer_id),
            "account_type": event.account_type,
            "currency": event.currency,
            "bill_cycle_day": event.bill_cycle_day,
            # An account opens with nothing owed and in good standing.
            "balance": "0",
            "credit_status": "normal",
            "opened_by": event.opened_by,
        }

    def by_number(self, number: str) -> Row | None:
        rows = self._select({"number": number}, "created_at, id", 1, 0)
        return rows[0] if rows else None

    def list(
        self, customer_id: UUID | str | None = None, limit: int = 1000, offset: int = 0
    ) -> Rows:
        """Accounts, of one customer when given, oldest first."""
        return self._select(
            {"customer_id": customer_id}, "created_at, id", limit, offset
        )


# --- customers -----------------------------------------------------------------

CONTACT_FIELDS = ("name", "email", "phone", "language", "address")


def _contact_changed(row: Row, event: Any) -> None:
    for field, value in event.changes.items():
        if field in CONTACT_FIELDS:
            row[field] = None if value is None else str(value)


class CustomersView(AggregateView):
    """Customers with their contact details and preferred language."""

    name = "customers_v1"
    table = Table(
        "view_customers",
        (
            ("id", "TEXT NOT NULL"),
            *((field, "TEXT") for field in CONTACT_FIELDS),
            ("registered_by", "TEXT"),
            *COMMON_COLUMNS,
        ),
        key=("id",),
        indexes=(("name",), ("email",)),
    )
    tables = (table,)
    created = Customer.Created
    changes = {Customer.ContactDetailsChanged: _contact_changed}
    topics = topics_of(created, *changes)

    def new_row(self, event: Any) -> Row:
        row = {field: getattr(event, field) for field in CONTACT_FIELDS}
        row.update(id=str(event.originator_id), registered_by=event.registered_by)
        return row

    def list(self, limit: int = 1000, offset: int = 0) -> Rows:
        """Customers, oldest first."""
        return self._select({}, "created_at, id", limit, offset)
