"""Workflow events (one row each) and the history of each account and subscription.

The history is the timeline an agent reads: events raised, items created and
what happened to them, and what the actions changed, in the order it happened.
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
    CANCELLED,
    OPEN,
    RESOLVED,
    ActionedItemCancelled,
    ActionedItemCompleted,
    ActionedItemDead,
    ActionedItemErrored,
    ActionedItemRetried,
    ActionedItemsCreated,
    ActionedItemSent,
    LinkedEventRefused,
    ManualActionAdded,
    WorkflowEventCancelled,
    WorkflowEventRaised,
    WorkflowEventResolved,
)
from projections.queue import ActionedItemsView
from projections.runner import Batch, BatchRows, Projection, json_column, topics_of
from projections.store import (
    Row,
    Rows,
    Table,
    Transaction,
    ViewDatabase,
    text,
    utc_text,
)

EVENTS = Table(
    "view_workflow_events",
    (
        ("id", "TEXT NOT NULL"),
        ("owner_kind", "TEXT"),
        ("owner_id", "TEXT NOT NULL"),
        ("event_type", "TEXT"),
        ("event_code", "TEXT"),
        ("description", "TEXT"),
        ("status", "TEXT NOT NULL"),
        ("source", "TEXT"),
        ("raised_by", "TEXT"),
        ("raised_at", "TEXT"),
        ("note", "TEXT"),
        ("initiating_event_id", "TEXT"),
        ("depth", "INTEGER"),
        ("auto_resolve", "INTEGER"),
        ("actions", "TEXT"),
        ("communications", "TEXT"),
        ("linked_event_codes", "TEXT"),
        ("skipped_actions", "TEXT"),
        ("resolved_at", "TEXT"),
        ("resolved_by", "TEXT"),
        ("resolved_automatically", "INTEGER"),
        ("cancelled_at", "TEXT"),
        ("cancelled_by", "TEXT"),
        ("cancel_reason", "TEXT"),
        ("updated_at", "TEXT"),
        ("position", "BIGINT NOT NULL"),
    ),
    key=("id",),
    indexes=(("owner_id", "raised_at"), ("initiating_event_id",), ("status",)),
)
HISTORY = Table(
    "view_workflow_history",
    (
        ("position", "BIGINT NOT NULL"),
        ("seq", "INTEGER NOT NULL"),
        ("owner_id", "TEXT NOT NULL"),
        ("at", "TEXT"),
        ("kind", "TEXT NOT NULL"),
        ("workflow_event_id", "TEXT"),
        ("item_id", "TEXT"),
        ("summary", "TEXT NOT NULL"),
        ("detail", "TEXT"),
    ),
    key=("position", "seq"),
    indexes=(("owner_id", "position", "seq"), ("workflow_event_id",)),
)
# What the history needs to name an item: its event ("BFEA DBAR") and a label.
EVENT_ITEMS = Table(
    "view_workflow_items",
    (
        ("item_id", "TEXT NOT NULL"),
        ("workflow_event_id", "TEXT NOT NULL"),
        ("heading", "TEXT"),
        ("label", "TEXT"),
    ),
    key=("item_id",),
)

JSON_EVENT_COLUMNS = (
    "actions",
    "communications",
    "linked_event_codes",
    "skipped_actions",
)


def _event(row: Row) -> Row:
    for column in JSON_EVENT_COLUMNS:
        row[column] = json.loads(row[column] or "[]")
    for column in ("auto_resolve", "resolved_automatically"):
        if row[column] is not None:
            row[column] = bool(row[column])
    return row


def _entry(row: Row) -> Row:
    row["detail"] = json.loads(row["detail"] or "{}")
    return row


def _action(action: dict[str, Any]) -> dict[str, Any]:
    keys = ("sequence", "action_code", "action_type", "handler", "description", "when")
    return {key: action.get(key) for key in keys}


def _communication(communication: dict[str, Any]) -> dict[str, Any]:
    template = communication.get("template") or {}
    return {
        "channel": communication.get("channel"),
        "template": template.get("code") if isinstance(template, dict) else template,
        "when": communication.get("when"),
    }


def _label(spec: dict[str, Any]) -> str:
    if spec.get("kind") == "communication":
        return f"communication {spec.get('description') or spec.get('channel')}"
    description = spec.get("description")
    code = spec.get("action_code")
    return f"action {code} ({description})" if description else f"action {code}"


class _HistoryFold:
    """Applies one batch to workflow events, their items and the history."""

    def __init__(self, tx: Transaction, events: Batch, view: Projection):
        self.tx = tx
        self.events = BatchRows(tx, EVENTS, view.kept_rows(EVENTS))
        self.items = BatchRows(tx, EVENT_ITEMS, view.kept_rows(EVENT_ITEMS))
        self.entries: list[tuple[Any, ...]] = []
        raised: set[str] = set()
        created: set[str] = set()
        item_ids: set[str] = set()
        event_ids: set[str] = set()
        for _, event in events:
            kind = type(event)
            if kind is WorkflowEventRaised:
                raised.add(str(event.workflow_event_id))
            elif kind in _EVENT_LEVEL:
                event_ids.add(str(event.workflow_event_id))
                if kind is ActionedItemsCreated:
                    created.update(spec["item_id"] for spec in event.items)
            else:
                item_ids.add(event.item_id)
        self.events.load(event_ids - raised)
        self.items.load(item_ids - created)

    def flush(self) -> None:
        self.events.flush()
        self.items.flush()
        HISTORY.append(self.tx, self.entries)

    def add(
        self,
        position: int,
        event: Any,
        at: datetime,
        kind: str,
        summary: str,
        detail: dict[str, Any],
        workflow_event_id: str | None = None,
        item_id: str | None = None,
        seq: int = 0,
    ) -> None:
        self.entries.append(
            (
                position,
                seq,
                str(event.originator_id),
                utc_text(at),
                kind,
                workflow_event_id,
                item_id,
                summary,
                json_column(detail),
            )
        )

    def _wf(self, position: int, event: Any, **changes: Any) -> tuple[str, str]:
        """Update a workflow event's row; returns its id and heading."""
        workflow_event_id = str(event.workflow_event_id)
        row = self.events.get(workflow_event_id)
        if row is None:
            return workflow_event_id, "workflow event"
        if changes:
            row.update(changes, position=position)
            self.events.changed(row)
        return workflow_event_id, f"{row['event_type']} {row['event_code']}"

    # --- workflow events ---------------------------------------------------

    def raised(self, position: int, event: Any) -> None:
        workflow_event_id = str(event.workflow_event_id)
        at = utc_text(event.raised_at)
        initiating = text(event.initiating_event_id)
        self.events.add(
            {
                "id": workflow_event_id,
                "owner_kind": event.level,
                "owner_id": str(event.originator_id),
                "event_type": event.event_type,
                "event_code": event.event_code,
                "description": event.description,
                "status": OPEN,
                "source": event.source,
                "raised_by": event.raised_by,
                "raised_at": at,
                "note": event.note,
                "initiating_event_id": initiating,
                "depth": event.depth,
                "auto_resolve": int(bool(event.auto_resolve)),
                "actions": json_column([_action(a) for a in event.actions]),
                "communications": json_column(
                    [_communication(c) for c in event.communications]
                ),
                "linked_event_codes": json_column(event.linked_events),
                "skipped_actions": json_column(event.skipped_actions),
                "resolved_at": None,
                "resolved_by": None,
                "resolved_automatically": None,
                "cancelled_at": None,
                "cancelled_by": None,
                "cancel_reason": None,
                "updated_at": at,
                "position": position,
            }
        )
        summary = (
            f"{event.event_type} {event.event_code} raised by {event.raised_by}: "
            f"{event.description}"
        )
        detail = {
            "level": event.level,
            "source": event.source,
            "note": event.note,
            "initiating_event_id": initiating,
            "depth": event.depth,
            "skipped_actions": event.skipped_actions,
        }
        self.add(
            position,
            event,
            event.raised_at,
            "event raised",
            summary,
            detail,
            workflow_event_id,
        )

    def action_added(self, position: int, event: Any) -> None:
        workflow_event_id, heading = self._wf(position, event)
        row = self.events.get(workflow_event_id)
        action = _action(event.action)
        if row is not None:
            row["actions"] = json_column([*json.loads(row["actions"] or "[]"), action])
            row.update(updated_at=utc_text(event.added_at), position=position)
            self.events.changed(row)
        summary = (
            f"{heading}: {_label({**action, 'kind': 'action'})} added by "
            f"{event.added_by}"
        )
        self.add(
            position,
            event,
            event.added_at,
            "action added",
            summary,
            {"action": action},
            workflow_event_id,
        )

    def items_created(self, position: int, event: Any) -> None:
        workflow_event_id, heading = self._wf(position, event)
        for seq, spec in enumerate(event.items):
            label = _label(spec)
            self.items.add(
                {
                    "item_id": spec["item_id"],
                    "workflow_event_id": workflow_event_id,
                    "heading": heading,
                    "label": label,
                }
            )
            due_at = spec.get("due_at") or event.created_at
            self.add(
                position,
                event,
                event.created_at,
                "item created",
                f"{heading}: {label} created, due {utc_text(due_at)}",
                {
                    "stage": spec.get("stage") or event.stage,
                    "kind": spec.get("kind"),
                    "handler": spec.get("handler"),
                    "sequence": spec.get("sequence"),
                    "due_at": utc_text(due_at),
                },
                workflow_event_id,
                spec["item_id"],
                seq,
            )

    def resolved(self, position: int, event: Any) -> None:
        workflow_event_id, heading = self._wf(
            position,
            event,
            status=RESOLVED,
            resolved_at=utc_text(event.resolved_at),
            resolved_by=event.resolved_by,
            resolved_automatically=int(bool(event.automatically)),
            updated_at=utc_text(event.resolved_at),
        )
        how = "automatically" if event.automatically else f"by {event.resolved_by}"
        self.add(
            position,
            event,
            event.resolved_at,
            "event resolved",
            f"{heading} resolved {how}",
            {"resolved_by": event.resolved_by, "automatically": event.automatically},
            workflow_event_id,
        )

    def event_cancelled(self, position: int, event: Any) -> None:
        workflow_event_id, heading = self._wf(
            position,
            event,
            status=CANCELLED,
            cancelled_at=utc_text(event.cancelled_at),
            cancelled_by=event.cancelled_by,
            cancel_reason=event.reason,
            updated_at=utc_text(event.cancelled_at),
        )
        summary = f"{heading} cancelled by {event.cancelled_by}" + (
            f": {event.reason}" if event.reason else ""
        )
        self.add(
            position,
            event,
            event.cancelled_at,
            "event cancelled",
            summary,
            {"reason": event.reason, "cancelled_items": list(event.cancelled_items)},
            workflow_event_id,
        )

    def link_refused(self, position: int, event: Any) -> None:
        workflow_event_id, heading = self._wf(position, event)
        self.add(
            position,
            event,
            event.refused_at,
            "linked event refused",
            f"{heading}: linked event {event.event_type} {event.event_code} "
            f"refused: {event.reason}",
            {
                "event_type": event.event_type,
                "event_code": event.event_code,
                "reason": event.reason,
            },
            workflow_event_id,
        )

    # --- actioned items ------------------------------------------------------

    def _item(
        self,
        position: int,
        event: Any,
        at: datetime,
        kind: str,
        what: str,
        detail: dict[str, Any],
    ) -> None:
        """An entry about an item: ``what`` follows "<event>: <item label>"."""
        item = self.items.get(event.item_id)
        if item is None:
            heading, label, workflow_event_id = "", f"item {event.item_id}", None
        else:
            heading = f"{item['heading']}: "
            label, workflow_event_id = item["label"], item["workflow_event_id"]
        self.add(
            position,
            event,
            at,
            kind,
            f"{heading}{label} {what}",
            detail,
            workflow_event_id,
            event.item_id,
        )

    def sent(self, position: int, event: Any) -> None:
        self._item(
            position,
            event,
            event.sent_at,
            "item sent",
            f"sent (attempt {event.attempt})",
            {"attempt": event.attempt, "request_id": event.request_id},
        )

    def completed(self, position: int, event: Any) -> None:
        note = f": {event.note}" if event.note else ""
        self._item(
            position,
            event,
            event.completed_at,
            "item completed",
            f"completed{note}",
            {"note": event.note, "ignored_error": event.ignored_error},
        )

    def errored(self, position: int, event: Any) -> None:
        self._item(
            position,
            event,
            event.failed_at,
            "item error",
            f"failed on attempt {event.attempt}: {event.reason}; "
            f"retry at {utc_text(event.retry_at)}",
            {
                "attempt": event.attempt,
                "reason": event.reason,
                "retry_at": utc_text(event.retry_at),
            },
        )

    def dead(self, position: int, event: Any) -> None:
        self._item(
            position,
            event,
            event.failed_at,
            "item dead",
            f"is dead after attempt {event.attempt}: {event.reason}",
            {"attempt": event.attempt, "reason": event.reason},
        )

    def retried(self, position: int, event: Any) -> None:
        self._item(
            position,
            event,
            event.retried_at,
            "item retried",
            f"retried by {event.retried_by}",
            {"retried_by": event.retried_by},
        )

    def cancelled(self, position: int, event: Any) -> None:
        reason = f": {event.reason}" if event.reason else ""
        self._item(
            position,
            event,
            event.cancelled_at,
            "item cancelled",
            f"cancelled by {event.cancelled_by}{reason}",
            {"cancelled_by": event.cancelled_by, "reason": event.reason},
        )

    # --- what the actions did to the account or subscription -----------------

    def _change(self, position: int, event: Any, kind: str, summary: str) -> None:
        item = self.items.get(event.item_id)
        detail = {
            name: value
            for name, value in event.__dict__.items()
            if name not in ("originator_id", "originator_version", "timestamp")
        }
        self.add(
            position,
            event,
            event.timestamp,
            kind,
            summary,
            detail,
            item["workflow_event_id"] if item else None,
            event.item_id,
        )

    def bar_applied(self, position: int, event: Any) -> None:
        self._change(position, event, "bar applied", f"{event.bar} bar applied")

    def bar_removed(self, position: int, event: Any) -> None:
        self._change(position, event, "bar removed", f"{event.bar} bar removed")

    def connected(self, position: int, event: Any) -> None:
        self._change(position, event, "connected", "connected")

    def disconnected(self, position: int, event: Any) -> None:
        reason = f": {event.reason}" if event.reason else ""
        self._change(position, event, "disconnected", f"disconnected{reason}")

    def service_added(self, position: int, event: Any) -> None:
        self._change(position, event, "service added", f"service {event.service} added")

    def service_removed(self, position: int, event: Any) -> None:
        self._change(
            position, event, "service removed", f"service {event.service} removed"
        )

    def topped_up(self, position: int, event: Any) -> None:
        self._change(
            position,
            event,
            "topped up",
            f"topped up {event.amount} {event.currency}; balance {event.balance}",
        )

    def account_type_moved(self, position: int, event: Any) -> None:
        self._change(
            position,
            event,
            "account type moved",
            f"account type moved from {event.from_type} to {event.to_type}",
        )


# Events that name their workflow event (all other non-raise ones name an item).
_EVENT_LEVEL = frozenset(
    (
        ManualActionAdded,
        ActionedItemsCreated,
        WorkflowEventResolved,
        WorkflowEventCancelled,
        LinkedEventRefused,
    )
)

_HISTORY_STEPS: dict[type, Callable[[_HistoryFold, int, Any], None]] = {
    WorkflowEventRaised: _HistoryFold.raised,
    ManualActionAdded: _HistoryFold.action_added,
    ActionedItemsCreated: _HistoryFold.items_created,
    ActionedItemSent: _HistoryFold.sent,
    ActionedItemCompleted: _HistoryFold.completed,
    ActionedItemErrored: _HistoryFold.errored,
    ActionedItemDead: _HistoryFold.dead,
    ActionedItemRetried: _HistoryFold.retried,
    ActionedItemCancelled: _HistoryFold.cancelled,
    WorkflowEventResolved: _HistoryFold.resolved,
    WorkflowEventCancelled: _HistoryFold.event_cancelled,
    LinkedEventRefused: _HistoryFold.link_refused,
    Subscription.BarApplied: _HistoryFold.bar_applied,
    Subscription.BarRemoved: _HistoryFold.bar_removed,
    Subscription.Connected: _HistoryFold.connected,
    Subscription.Disconnected: _HistoryFold.disconnected,
    Subscription.ServiceAdded: _HistoryFold.service_added,
    Subscription.ServiceRemoved: _HistoryFold.service_removed,
    Subscription.ToppedUp: _HistoryFold.topped_up,
    Account.AccountTypeMoved: _HistoryFold.account_type_moved,
}


class WorkflowEventsView(Projection):
    """Workflow events (one row each) and the history of each owner.

    The history is the timeline an agent reads for an account or subscription:
    events raised, items created and what happened to them, what the actions
    changed, in the order it happened.
    """

    name = "workflow_events_v1"
    topics = topics_of(*_HISTORY_STEPS)
    tables = (EVENT_ITEMS, HISTORY, EVENTS)

    def __init__(self, db: ViewDatabase, items: ActionedItemsView | None = None):
        super().__init__(db)
        self.items = items

    def process(self, tx: Transaction, notification_id: int, domain_event: Any) -> None:
        self.process_batch(tx, [(notification_id, domain_event)])

    def process_batch(self, tx: Transaction, events: Batch) -> None:
        fold = _HistoryFold(tx, events, self)
        for position, event in events:
            _HISTORY_STEPS[type(event)](fold, position, event)
        fold.flush()

    # --- queries -------------------------------------------------------------

    def get(self, workflow_event_id: UUID | str) -> Row | None:
        """The workflow event with its actioned items and the linked events it
        initiated (``items`` come from the actioned-item queue when given)."""
        key = str(workflow_event_id)
        with self.db.read() as tx:
            row = tx.fetchone("SELECT * FROM view_workflow_events WHERE id = ?", (key,))
            if row is None:
                return None
            linked = tx.fetchall(
                "SELECT * FROM view_workflow_events WHERE initiating_event_id = ?"
                " ORDER BY raised_at, id",
                (key,),
            )
        event = _event(row)
        event["items"] = self.items.for_workflow_event(key) if self.items else []
        event["linked_events"] = [_event(r) for r in linked]
        return event

    def owner_of(self, workflow_event_id: UUID | str) -> tuple[str, str] | None:
        """(owner kind, owner id) of a workflow event."""
        with self.db.read() as tx:
            row = tx.fetchone(
                "SELECT owner_kind, owner_id FROM view_workflow_events WHERE id = ?",
                (str(workflow_event_id),),
            )
        return (row["owner_kind"], row["owner_id"]) if row else None

    def history(self, owner_id: UUID | str, limit: int = 100, offset: int = 0) -> Rows:
        """The owner's timeline, oldest first."""
        with self.db.read() as tx:
            rows = tx.fetchall(
                "SELECT * FROM view_workflow_history WHERE owner_id = ?"
                " ORDER BY position, seq LIMIT ? OFFSET ?",
                (str(owner_id), limit, offset),
            )
        return [_entry(row) for row in rows]

    def for_owner(self, owner_id: UUID | str, status: str | None = None) -> Rows:
        """The workflow events raised on an account or subscription."""
        sql = "SELECT * FROM view_workflow_events WHERE owner_id = ?"
        params = [str(owner_id)]
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        with self.db.read() as tx:
            rows = tx.fetchall(sql + " ORDER BY raised_at, id", params)
        return [_event(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """How many workflow events are in each status."""
        with self.db.read() as tx:
            rows = tx.fetchall(
                "SELECT status, COUNT(*) AS n FROM view_workflow_events GROUP BY status"
            )
        return {row["status"]: int(row["n"]) for row in rows}

    def list(
        self,
        status: str | None = None,
        event_type: str | None = None,
        event_code: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Rows:
        """Workflow events matching every filter given, newest first."""
        filters = {
            "status = ?": status,
            "event_type = ?": event_type,
            "event_code = ?": event_code,
        }
        rows = self.db.select(
            "view_workflow_events", filters, "raised_at DESC, id", limit, offset
        )
        return [_event(row) for row in rows]
