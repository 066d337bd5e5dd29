"""The actioned-item queue: one row per item, as the dispatcher and agents read it.

The owner of an item (account or subscription) is the ``level`` that
``WorkflowEventRaised`` records; the queue keeps that, with the event's type and
code, in a small table of its own, so that it is rebuildable on its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.account import Account
from domain.subscription import Subscription
from domain.workflow import (
    AWAITING,
    CANCELLED,
    COMPLETED,
    DEAD,
    ERROR,
    SENT,
    ActionedItemCancelled,
    ActionedItemCompleted,
    ActionedItemDead,
    ActionedItemErrored,
    ActionedItemRetried,
    ActionedItemsCreated,
    ActionedItemSent,
    WorkflowEventCancelled,
    WorkflowEventRaised,
)
from projections.runner import Batch, BatchRows, Projection, json_column, topics_of
from projections.store import Row, Rows, Table, Transaction, text, utc_text

ITEMS = Table(
    "view_actioned_items",
    (
        ("item_id", "TEXT NOT NULL"),
        ("workflow_event_id", "TEXT NOT NULL"),
        ("owner_kind", "TEXT"),
        ("owner_id", "TEXT NOT NULL"),
        ("subscription_id", "TEXT"),
        ("account_id", "TEXT"),
        ("event_type", "TEXT"),
        ("event_code", "TEXT"),
        ("stage", "TEXT"),
        ("kind", "TEXT"),
        ("sequence", "INTEGER"),
        ("action_code", "TEXT"),
        ("action_type", "TEXT"),
        ("handler", "TEXT"),
        ("channel", "TEXT"),
        ("description", "TEXT"),
        ("parameters", "TEXT"),
        ("status", "TEXT NOT NULL"),
        ("due_at", "TEXT"),
        ("attempts", "INTEGER NOT NULL"),
        ("max_attempts", "INTEGER"),
        ("last_error", "TEXT"),
        ("retry_at", "TEXT"),
        ("request_id", "TEXT"),
        ("note", "TEXT"),
        ("ignore_network_errors", "INTEGER"),
        ("created_at", "TEXT"),
        ("updated_at", "TEXT"),
        ("position", "BIGINT NOT NULL"),
    ),
    key=("item_id",),
    indexes=(
        ("status", "due_at"),
        ("status", "retry_at"),
        ("status", "updated_at"),
        ("workflow_event_id",),
        ("owner_id",),
    ),
)
# What the queue needs to know about each workflow event (owner, type, code).
ITEM_EVENTS = Table(
    "view_actioned_item_events",
    (
        ("workflow_event_id", "TEXT NOT NULL"),
        ("owner_kind", "TEXT"),
        ("owner_id", "TEXT NOT NULL"),
        ("event_type", "TEXT"),
        ("event_code", "TEXT"),
    ),
    key=("workflow_event_id",),
)

DUE_SQL = (
    "SELECT * FROM (SELECT *, due_at AS due_time FROM view_actioned_items"
    " WHERE status = 'awaiting' AND due_at <= ? ORDER BY due_at LIMIT ?) AS awaiting"
    " UNION ALL"
    " SELECT * FROM (SELECT *, retry_at AS due_time FROM view_actioned_items"
    " WHERE status = 'error' AND retry_at <= ? ORDER BY retry_at LIMIT ?) AS retrying"
    # Due at the same time: items made earlier first, and an event's items
    # together, in the order of its actions (then its messages).
    " ORDER BY due_time, created_at, workflow_event_id, sequence, item_id LIMIT ?"
)


def _item(row: Row) -> Row:
    row["parameters"] = json.loads(row["parameters"] or "{}")
    row["ignore_network_errors"] = bool(row["ignore_network_errors"])
    row.pop("due_time", None)
    return row


class _ItemsFold:
    """Applies one batch of events to the queue's rows held in memory."""

    def __init__(self, tx: Transaction, events: Batch, view: Projection):
        self.items = BatchRows(tx, ITEMS, view.kept_rows(ITEMS))
        self.owners = BatchRows(tx, ITEM_EVENTS, view.kept_rows(ITEM_EVENTS))
        raised: set[str] = set()
        created: set[str] = set()
        item_ids: set[str] = set()
        event_ids: set[str] = set()
        for _, event in events:
            kind = type(event)
            if kind is WorkflowEventRaised:
                raised.add(str(event.workflow_event_id))
            elif kind is ActionedItemsCreated:
                event_ids.add(str(event.workflow_event_id))
                created.update(spec["item_id"] for spec in event.items)
            elif kind is WorkflowEventCancelled:
                item_ids.update(event.cancelled_items)
            else:
                item_ids.add(event.item_id)
        self.owners.load(event_ids - raised)
        self.items.load(item_ids - created)

    def flush(self) -> None:
        self.owners.flush()
        self.items.flush()

    def raised(self, position: int, event: Any) -> None:
        self.owners.add(
            {
                "workflow_event_id": str(event.workflow_event_id),
                "owner_kind": event.level,
                "owner_id": str(event.originator_id),
                "event_type": event.event_type,
                "event_code": event.event_code,
            }
        )

    def created(self, position: int, event: Any) -> None:
        workflow_event_id = str(event.workflow_event_id)
        wf = self.owners.get(workflow_event_id) or {}
        owner_kind = wf.get("owner_kind")
        owner_id = str(event.originator_id)
        at = utc_text(event.created_at)
        for spec in event.items:
            self.items.add(
                {
                    "item_id": spec["item_id"],
                    "workflow_event_id": workflow_event_id,
                    "owner_kind": owner_kind,
                    "owner_id": owner_id,
                    "subscription_id": (
                        owner_id if owner_kind == Subscription.LEVEL else None
                    ),
                    "account_id": owner_id if owner_kind == Account.LEVEL else None,
                    "event_type": wf.get("event_type"),
                    "event_code": wf.get("event_code"),
                    "stage": spec.get("stage") or event.stage,
                    "kind": spec.get("kind"),
                    "sequence": spec.get("sequence"),
                    "action_code": spec.get("action_code"),
                    "action_type": spec.get("action_type"),
                    "handler": spec.get("handler"),
                    "channel": spec.get("channel"),
                    "description": spec.get("description"),
                    "parameters": json_column(spec.get("parameters") or {}),
                    "status": AWAITING,
                    "due_at": utc_text(spec.get("due_at")) or at,
                    "attempts": 0,
                    "max_attempts": spec.get("max_attempts"),
                    "last_error": "",
                    "retry_at": None,
                    "request_id": None,
                    "note": "",
                    "ignore_network_errors": int(
                        bool(spec.get("ignore_network_errors"))
                    ),
                    "created_at": at,
                    "updated_at": at,
                    "position": position,
                }
            )

    def _update(self, item_id: str, position: int, **changes: Any) -> Row | None:
        row = self.items.get(item_id)
        if row is None:
            return None  # not created through this log: nothing to show
        row.update(changes, position=position)
        self.items.changed(row)
        return row

    def sent(self, position: int, event: Any) -> None:
        self._update(
            event.item_id,
            position,
            status=SENT,
            attempts=event.attempt,
            retry_at=None,
            request_id=event.request_id,
            updated_at=utc_text(event.sent_at),
        )

    def completed(self, position: int, event: Any) -> None:
        row = self._update(
            event.item_id,
            position,
            status=COMPLETED,
            retry_at=None,
            note=event.note,
            updated_at=utc_text(event.completed_at),
        )
        if row is not None and not row["attempts"]:
            row["attempts"] = 1  # as the aggregate counts an internal action

    def errored(self, position: int, event: Any) -> None:
        self._update(
            event.item_id,
            position,
            status=ERROR,
            attempts=event.attempt,
            last_error=event.reason,
            retry_at=utc_text(event.retry_at),
            updated_at=utc_text(event.failed_at),
        )

    def dead(self, position: int, event: Any) -> None:
        self._update(
            event.item_id,
            position,
            status=DEAD,
            attempts=event.attempt,
            last_error=event.reason,
            retry_at=None,
            updated_at=utc_text(event.failed_at),
        )

    def retried(self, position: int, event: Any) -> None:
        at = utc_text(event.retried_at)
        self._update(
            event.item_id,
            position,
            status=AWAITING,
            attempts=0,
            retry_at=None,
            due_at=at,
            updated_at=at,
        )

    def cancelled(self, position: int, event: Any) -> None:
        self._update(
            event.item_id,
            position,
            status=CANCELLED,
            retry_at=None,
            updated_at=utc_text(event.cancelled_at),
        )

    def event_cancelled(self, position: int, event: Any) -> None:
        at = utc_text(event.cancelled_at)
        for item_id in event.cancelled_items:
            self._update(
                item_id, position, status=CANCELLED, retry_at=None, updated_at=at
            )


_ITEM_STEPS: dict[type, Callable[[_ItemsFold, int, Any], None]] = {
    WorkflowEventRaised: _ItemsFold.raised,
    ActionedItemsCreated: _ItemsFold.created,
    ActionedItemSent: _ItemsFold.sent,
    ActionedItemCompleted: _ItemsFold.completed,
    ActionedItemErrored: _ItemsFold.errored,
    ActionedItemDead: _ItemsFold.dead,
    ActionedItemRetried: _ItemsFold.retried,
    ActionedItemCancelled: _ItemsFold.cancelled,
    WorkflowEventCancelled: _ItemsFold.event_cancelled,
}


class ActionedItemsView(Projection):
    """The actioned-item queue: one row per item, as the dispatcher reads it."""

    name = "actioned_items_v1"
    topics = topics_of(*_ITEM_STEPS)
    tables = (ITEM_EVENTS, ITEMS)

    def process(self, tx: Transaction, notification_id: int, domain_event: Any) -> None:
        self.process_batch(tx, [(notification_id, domain_event)])

    def process_batch(self, tx: Transaction, events: Batch) -> None:
        fold = _ItemsFold(tx, events, self)
        for position, event in events:
            _ITEM_STEPS[type(event)](fold, position, event)
        fold.flush()

    # --- queries -------------------------------------------------------------

    def due(self, now: datetime, limit: int = 500) -> Rows:
        """Awaiting items due by ``now`` and errored items whose retry time passed.

        Ordered by the time they became due (due time or retry time); at the
        same time, by when they were made, and an event's items in the order
        of its actions, then its messages.
        """
        at = utc_text(now)
        with self.db.read() as tx:
            rows = tx.fetchall(DUE_SQL, (at, limit, at, limit, limit))
        return [_item(row) for row in rows]

    def sent_before(
        self, time: datetime, handler: str | None = None, limit: int = 1000
    ) -> Rows:
        """Items still ``sent`` whose last change is older than ``time``.

        For response time-outs and for recovering a worker that stopped between
        recording an attempt and handing it over.
        """
        sql = "SELECT * FROM view_actioned_items WHERE status = ? AND updated_at < ?"
        params: list[Any] = [SENT, utc_text(time)]
        if handler is not None:
            sql += " AND handler = ?"
            params.append(handler)
        with self.db.read() as tx:
            rows = tx.fetchall(
                sql + " ORDER BY updated_at, item_id LIMIT ?", (*params, limit)
            )
        return [_item(row) for row in rows]

    def list(
        self,
        status: str | None = None,
        action_type: str | None = None,
        subscription_id: UUID | str | None = None,
        due_before: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
        *,
        owner_id: UUID | str | None = None,
        workflow_event_id: UUID | str | None = None,
        handler: str | None = None,
    ) -> Rows:
        """Items matching every filter given, in order of due time."""
        filters = {
            "status = ?": status,
            "action_type = ?": action_type,
            "subscription_id = ?": text(subscription_id),
            "due_at <= ?": utc_text(due_before),
            "owner_id = ?": text(owner_id),
            "workflow_event_id = ?": text(workflow_event_id),
            "handler = ?": handler,
        }
        rows = self.db.select(
            "view_actioned_items", filters, "due_at, item_id", limit, offset
        )
        return [_item(row) for row in rows]

    def for_workflow_event(self, workflow_event_id: UUID | str) -> Rows:
        """The items of one workflow event, in the order they were created."""
        with self.db.read() as tx:
            rows = tx.fetchall(
                "SELECT * FROM view_actioned_items WHERE workflow_event_id = ?"
                " ORDER BY created_at, sequence, item_id",
                (str(workflow_event_id),),
            )
        return [_item(row) for row in rows]

    def get(self, item_id: str) -> Row | None:
        with self.db.read() as tx:
            row = tx.fetchone(
                "SELECT * FROM view_actioned_items WHERE item_id = ?", (str(item_id),)
            )
        return _item(row) if row else None

    def owner_of_item(self, item_id: str) -> tuple[str, str] | None:
        """(owner kind, owner id) of an item: whose aggregate to load."""
        with self.db.read() as tx:
            row = tx.fetchone(
                "SELECT owner_kind, owner_id FROM view_actioned_items"
                " WHERE item_id = ?",
                (str(item_id),),
            )
        return (row["owner_kind"], row["owner_id"]) if row else None

    def counts(self) -> dict[str, int]:
        """How many items are in each status."""
        with self.db.read() as tx:
            rows = tx.fetchall(
                "SELECT status, COUNT(*) AS n FROM view_actioned_items GROUP BY status"
            )
        return {row["status"]: int(row["n"]) for row in rows}
