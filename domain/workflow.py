"""Workflow events and their actioned items, recorded on an account or subscription.

The events here are shared by the ``Account`` and ``Subscription`` aggregates
(through ``WorkflowLog``), so that one stream tells an auditor everything that
happened to the account or subscription.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.events import stored

OPEN, RESOLVED, CANCELLED = "open", "resolved", "cancelled"
AWAITING, SENT, COMPLETED, ERROR, DEAD = (
    "awaiting",
    "sent",
    "completed",
    "error",
    "dead",
)
PENDING_STATES = (AWAITING, ERROR)  # not yet sent: may be cancelled
FINISHED_STATES = (COMPLETED, CANCELLED)
MAX_LINK_DEPTH = 10  # run-time guard against runaway linked-event chains
# Why the processor cancels the items it makes for an event already cancelled.
CANCELLED_BEFORE_MADE = "the workflow event was cancelled before this item was made"


class WorkflowError(Exception):
    """A workflow command that the current state does not allow (HTTP 409)."""


class UnknownWorkflowEvent(LookupError):
    pass


class UnknownActionedItem(LookupError):
    pass


@stored
@dataclass(frozen=True)
class WorkflowEventRaised(Aggregate.Event):
    TOPIC = "monetise.workflow:WorkflowEventRaised"
    class_version = 1
    workflow_event_id: UUID
    level: str
    event_type: str
    event_code: str
    description: str
    note: str
    source: str
    raised_by: str
    raised_at: datetime
    initiating_event_id: UUID | None
    depth: int
    auto_resolve: bool
    actions: list[dict[str, Any]]
    communications: list[dict[str, Any]]
    linked_events: list[dict[str, Any]]
    skipped_actions: list[dict[str, Any]]

    def apply(self, aggregate: Any) -> None:
        aggregate.workflow_events[str(self.workflow_event_id)] = {
            "id": str(self.workflow_event_id),
            "event_type": self.event_type,
            "event_code": self.event_code,
            "description": self.description,
            "note": self.note,
            "status": OPEN,
            "source": self.source,
            "raised_by": self.raised_by,
            "raised_at": self.raised_at,
            "initiating_event_id": (
                str(self.initiating_event_id) if self.initiating_event_id else None
            ),
            "depth": self.depth,
            "auto_resolve": self.auto_resolve,
            "actions": list(self.actions),
            "communications": list(self.communications),
            "linked_events": list(self.linked_events),
            "items": [],
            "raise_items_created": False,
        }


@stored
@dataclass(frozen=True)
class ManualActionAdded(Aggregate.Event):
    TOPIC = "monetise.workflow:ManualActionAdded"
    class_version = 1
    workflow_event_id: UUID
    action: dict[str, Any]
    added_by: str
    added_at: datetime

    def apply(self, aggregate: Any) -> None:
        wf = aggregate.workflow_events[str(self.workflow_event_id)]
        wf["actions"].append(dict(self.action))


@stored
@dataclass(frozen=True)
class ActionedItemsCreated(Aggregate.Event):
    TOPIC = "monetise.workflow:ActionedItemsCreated"
    class_version = 1
    workflow_event_id: UUID
    stage: str  # "raise", "resolve" or "manual"
    items: list[dict[str, Any]]
    created_at: datetime

    def apply(self, aggregate: Any) -> None:
        wf = aggregate.workflow_events[str(self.workflow_event_id)]
        for spec in self.items:
            item = dict(spec)
            item.update(
                stage=self.stage,
                status=AWAITING,
                attempts=0,
                last_error="",
                retry_at=None,
                workflow_event_id=str(self.workflow_event_id),
            )
            aggregate.actioned_items[item["item_id"]] = item
            wf["items"].append(item["item_id"])
        if self.stage == "raise":
            wf["raise_items_created"] = True
        elif self.stage == "resolve":
            wf["resolve_items_created"] = True
        retire_if_finished(aggregate, str(self.workflow_event_id))


@stored
@dataclass(frozen=True)
class ActionedItemSent(Aggregate.Event):
    TOPIC = "monetise.workflow:ActionedItemSent"
    class_version = 1
    item_id: str
    attempt: int
    request_id: str
    sent_at: datetime

    def apply(self, aggregate: Any) -> None:
        item = aggregate.actioned_items[self.item_id]
        item.update(
            status=SENT,
            attempts=self.attempt,
            retry_at=None,
            request_id=self.request_id,
            sent_at=self.sent_at,
        )


@stored
@dataclass(frozen=True)
class ActionedItemCompleted(Aggregate.Event):
    TOPIC = "monetise.workflow:ActionedItemCompleted"
    class_version = 1
    item_id: str
    completed_at: datetime
    note: str
    ignored_error: str

    def apply(self, aggregate: Any) -> None:
        item = aggregate.actioned_items[self.item_id]
        item.update(status=COMPLETED, retry_at=None, note=self.note)
        if not item["attempts"]:
            item["attempts"] = 1
        retire_if_finished(aggregate, item["workflow_event_id"])


@stored
@dataclass(frozen=True)
class ActionedItemErrored(Aggregate.Event):
    """An attempt failed; the item will be tried again at ``retry_at``."""

    TOPIC = "monetise.workflow:ActionedItemErrored"
    class_version = 1
    item_id: str
    attempt: int
    reason: str
    failed_at: datetime
    retry_at: datetime

    def apply(self, aggregate: Any) -> None:
        aggregate.actioned_items[self.item_id].update(
            status=ERROR,
            attempts=self.attempt,
            last_error=self.reason,
            retry_at=self.retry_at,
        )


@stored
@dataclass(frozen=True)
class ActionedItemDead(Aggregate.Event):
    """The last allowed attempt failed: only an agent can retry it now."""

    TOPIC = "monetise.workflow:ActionedItemDead"
    class_version = 1
    item_id: str
    attempt: int
    reason: str
    failed_at: datetime

    def apply(self, aggregate: Any) -> None:
        aggregate.actioned_items[self.item_id].update(
            status=DEAD, attempts=self.attempt, last_error=self.reason, retry_at=None
        )


@stored
@dataclass(frozen=True)
class ActionedItemRetried(Aggregate.Event):
    TOPIC = "monetise.workflow:ActionedItemRetried"
    class_version = 1
    item_id: str
    retried_by: str
    retried_at: datetime

    def apply(self, aggregate: Any) -> None:
        aggregate.actioned_items[self.item_id].update(
            status=AWAITING, attempts=0, retry_at=None, due_at=self.retried_at
        )


@stored
@dataclass(frozen=True)
class ActionedItemCancelled(Aggregate.Event):
    TOPIC = "monetise.workflow:ActionedItemCancelled"
    class_version = 1
    item_id: str
    cancelled_by: str
    cancelled_at: datetime
    reason: str

    def apply(self, aggregate: Any) -> None:
        item = aggregate.actioned_items[self.item_id]
        item.update(status=CANCELLED, retry_at=None)
        retire_if_finished(aggregate, item["workflow_event_id"])


@stored
@dataclass(frozen=True)
class WorkflowEventResolved(Aggregate.Event):
    TOPIC = "monetise.workflow:WorkflowEventResolved"
    class_version = 1
    workflow_event_id: UUID
    resolved_by: str
    resolved_at: datetime
    automatically: bool

    def apply(self, aggregate: Any) -> None:
        wf = aggregate.workflow_events[str(self.workflow_event_id)]
        wf.update(
            status=RESOLVED, resolved_at=self.resolved_at, resolved_by=self.resolved_by
        )
        retire_if_finished(aggregate, str(self.workflow_event_id))


@stored
@dataclass(frozen=True)
class WorkflowEventCancelled(Aggregate.Event):
    TOPIC = "monetise.workflow:WorkflowEventCancelled"
    class_version = 1
    workflow_event_id: UUID
    cancelled_by: str
    cancelled_at: datetime
    reason: str
    cancelled_items: list[str]

    def apply(self, aggregate: Any) -> None:
        wf = aggregate.workflow_events[str(self.workflow_event_id)]
        wf.update(status=CANCELLED, cancelled_at=self.cancelled_at)
        for item_id in self.cancelled_items:
            aggregate.actioned_items[item_id].update(status=CANCELLED, retry_at=None)
        retire_if_finished(aggregate, str(self.workflow_event_id))


@stored
@dataclass(frozen=True)
class LinkedEventRefused(Aggregate.Event):
    """A linked event could not be raised; the reason stays in the history."""

    TOPIC = "monetise.workflow:LinkedEventRefused"
    class_version = 1
    workflow_event_id: UUID
    event_type: str
    event_code: str
    reason: str
    refused_at: datetime


# --- finished workflow events leave the working state -------------------------
#
# An account or a subscription lives for years and gathers thousands of workflow
# events. Its stream keeps every one of them, and the read models show them; the
# aggregate needs an event's details only while something can still happen to
# it. Once it is resolved or cancelled, the workflow processor has done its
# stages and every item is completed or cancelled, only what a refusal must say
# is kept: the event's type, code and status, and each item's status and
# handler. (Before, every command copied the whole log and every snapshot wrote
# it: at 60 workflow events a subscription, copying it took a third of the CPU
# of raising events, and the snapshots reached 130 kB.)


def retire_if_finished(aggregate: Any, workflow_event_id: str) -> None:
    retire_finished(aggregate.__dict__, workflow_event_id)


def retire_finished(state: dict[str, Any], workflow_event_id: str) -> None:
    """Move a finished workflow event and its items out of the working state
    (an aggregate's ``__dict__``, or a snapshot's state being upcast)."""
    items = state["actioned_items"]
    wf = state["workflow_events"].get(workflow_event_id)
    if wf is None or not _finished(wf, items):
        return
    for item_id in wf["items"]:
        item = items.pop(item_id)
        state["retired_items"][item_id] = [
            item["status"],
            item["handler"],
            workflow_event_id,
        ]
    del state["workflow_events"][workflow_event_id]
    state["retired_workflow_events"][workflow_event_id] = [
        wf["event_type"],
        wf["event_code"],
        wf["status"],
    ]


def retire_all_finished(state: dict[str, Any]) -> None:
    """A snapshot's state from before workflow events were retired."""
    state.setdefault("retired_workflow_events", {})
    state.setdefault("retired_items", {})
    for workflow_event_id in list(state["workflow_events"]):
        retire_finished(state, workflow_event_id)


def _finished(wf: dict[str, Any], items: dict[str, dict[str, Any]]) -> bool:
    if wf["status"] == OPEN or not wf["raise_items_created"]:
        return False
    mine = [items[i] for i in wf["items"]]
    if wf["status"] == RESOLVED and not (
        # (Streams from before the stage was always recorded show it by its items.)
        wf.get("resolve_items_created") or any(i["stage"] == "resolve" for i in mine)
    ):
        return False  # the processor has still to make its on-resolve items
    # An action added by hand waits for the processor to make its item.
    expected = sum(1 for action in wf["actions"] if action["when"] == "raise")
    made = sum(
        1 for i in mine if i["kind"] == "action" and i["stage"] in ("raise", "manual")
    )
    return made >= expected and all(i["status"] in FINISHED_STATES for i in mine)


def _current_or_retired(
    current: dict[str, dict[str, Any]],
    retired: dict[str, list[str]],
    key: str,
    fields: tuple[str, ...],
) -> dict[str, Any] | None:
    """The working entry of ``key``, or of a retired one the fields kept
    (``fields``: the key's name, then the names of what was kept)."""
    found = current.get(key)
    if found is not None:
        return found
    kept = retired.get(key)
    return None if kept is None else dict(zip(fields, [key, *kept], strict=True))


class WorkflowLog:
    """Workflow events and actioned items of one account or subscription.

    Mixed into an aggregate; state is plain dicts so that snapshots store it.
    Finished workflow events are retired (see ``retire_finished``).
    """

    LEVEL = ""
    workflow_events: dict[str, dict[str, Any]]
    actioned_items: dict[str, dict[str, Any]]
    retired_workflow_events: dict[str, list[str]]  # id: type, code, status
    retired_items: dict[str, list[str]]  # id: status, handler, workflow event id

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        """A copy as deep as the events ever mutate, and no deeper.

        The repository copies every aggregate it hands out of its cache; a
        generic deep copy of a long workflow log dominated the dispatcher's
        time. Events replace or update the dicts below and append to the lists
        named here; everything nested further (parameters, templates) is never
        changed after it is recorded, so it is shared.
        """
        copy = object.__new__(type(self))
        state = dict(self.__dict__)
        state["workflow_events"] = {
            key: {**wf, "items": list(wf["items"]), "actions": list(wf["actions"])}
            for key, wf in self.workflow_events.items()
        }
        state["actioned_items"] = {
            key: dict(item) for key, item in self.actioned_items.items()
        }
        for name, value in state.items():
            if isinstance(value, list) or (
                isinstance(value, dict)
                and name not in ("workflow_events", "actioned_items")
            ):
                state[name] = type(value)(value)
        state["_pending_events"] = []
        copy.__dict__.update(state)
        return copy

    trigger_event: Any  # provided by the aggregate this is mixed into

    # --- reading -----------------------------------------------------------

    def workflow_event(self, workflow_event_id: UUID | str) -> dict[str, Any]:
        """A workflow event; of a retired one, its type, code and status only."""
        found = _current_or_retired(
            self.workflow_events,
            self.retired_workflow_events,
            str(workflow_event_id),
            ("id", "event_type", "event_code", "status"),
        )
        if found is None:
            raise UnknownWorkflowEvent(
                f"workflow event {workflow_event_id} is not raised here"
            )
        return found

    def actioned_item(self, item_id: str) -> dict[str, Any]:
        """An actioned item; of a retired one, its status and handler only."""
        found = _current_or_retired(
            self.actioned_items,
            self.retired_items,
            str(item_id),
            ("item_id", "status", "handler", "workflow_event_id"),
        )
        if found is None:
            raise UnknownActionedItem(f"actioned item {item_id} is not here")
        return found

    def is_retired(self, workflow_event_id: UUID | str) -> bool:
        """Whether a workflow event is finished and out of the working state."""
        return str(workflow_event_id) in self.retired_workflow_events

    def open_workflow_event(self, workflow_event_id: UUID | str) -> dict[str, Any]:
        wf = self.workflow_event(workflow_event_id)
        if wf["status"] != OPEN:
            raise WorkflowError(
                f"workflow event {wf['event_type']} {wf['event_code']} is already "
                f"{wf['status']}"
            )
        return wf

    def require_runnable(self, item: dict[str, Any]) -> None:
        """An item's action runs only while it is awaiting or due for a retry."""
        if item["status"] not in PENDING_STATES:
            raise WorkflowError(f"actioned item {item['item_id']} is {item['status']}")

    # --- commands ----------------------------------------------------------

    def raise_workflow_event(self, **fields: Any) -> None:
        """Record a raised workflow event with the actions resolved right now."""
        self.trigger_event(WorkflowEventRaised, level=self.LEVEL, **fields)

    def add_manual_action(
        self,
        workflow_event_id: UUID,
        action: dict[str, Any],
        added_by: str,
        added_at: datetime,
    ) -> None:
        self.open_workflow_event(workflow_event_id)
        self.trigger_event(
            ManualActionAdded,
            workflow_event_id=workflow_event_id,
            action=action,
            added_by=added_by,
            added_at=added_at,
        )

    def create_actioned_items(
        self,
        workflow_event_id: UUID,
        stage: str,
        items: list[dict[str, Any]],
        at: datetime,
    ) -> None:
        # The raise and resolve stages are recorded even without items: the
        # workflow event is finished only once the processor has done both.
        if items or stage in ("raise", "resolve"):
            self.trigger_event(
                ActionedItemsCreated,
                workflow_event_id=workflow_event_id,
                stage=stage,
                items=items,
                created_at=at,
            )
        if self.workflow_event(workflow_event_id)["status"] == CANCELLED:
            # Cancelled before the processor got to it (a worker that was
            # down, say): the items are made, so the history shows what the
            # event would have done, and cancelled at once, so none of it runs.
            for spec in items:
                self.cancel_item(spec["item_id"], "system", at, CANCELLED_BEFORE_MADE)
            return
        self._resolve_if_done(workflow_event_id, at)

    def resolve_workflow_event(
        self, workflow_event_id: UUID, by: str, at: datetime
    ) -> None:
        self.open_workflow_event(workflow_event_id)
        self.trigger_event(
            WorkflowEventResolved,
            workflow_event_id=workflow_event_id,
            resolved_by=by,
            resolved_at=at,
            automatically=False,
        )

    def cancel_workflow_event(
        self, workflow_event_id: UUID, by: str, at: datetime, reason: str
    ) -> list[str]:
        """Cancel the event and its items not yet sent (or dead); returns them."""
        wf = self.open_workflow_event(workflow_event_id)
        # Dead items go too: nobody should retry an action of a cancelled event.
        pending = [
            i
            for i in wf["items"]
            if self.actioned_items[i]["status"] in (*PENDING_STATES, DEAD)
        ]
        self.trigger_event(
            WorkflowEventCancelled,
            workflow_event_id=workflow_event_id,
            cancelled_by=by,
            cancelled_at=at,
            reason=reason,
            cancelled_items=pending,
        )
        return pending

    def refuse_linked_event(
        self,
        workflow_event_id: UUID,
        event_type: str,
        event_code: str,
        reason: str,
        at: datetime,
    ) -> None:
        self.trigger_event(
            LinkedEventRefused,
            workflow_event_id=workflow_event_id,
            event_type=event_type,
            event_code=event_code,
            reason=reason,
            refused_at=at,
        )

    def record_item_sent(self, item_id: str, request_id: str, at: datetime) -> int:
        """Record an attempt about to be made; returns the attempt number."""
        item = self.actioned_item(item_id)
        if item["status"] not in PENDING_STATES:
            raise WorkflowError(f"actioned item {item_id} is {item['status']}")
        attempt = int(item["attempts"]) + 1
        self.trigger_event(
            ActionedItemSent,
            item_id=item_id,
            attempt=attempt,
            request_id=request_id,
            sent_at=at,
        )
        return attempt

    def complete_item(
        self, item_id: str, at: datetime, note: str = "", ignored_error: str = ""
    ) -> None:
        item = self.actioned_item(item_id)
        if item["status"] in (COMPLETED, CANCELLED, DEAD):
            raise WorkflowError(f"actioned item {item_id} is {item['status']}")
        self.trigger_event(
            ActionedItemCompleted,
            item_id=item_id,
            completed_at=at,
            note=note,
            ignored_error=ignored_error,
        )
        self._resolve_if_done(UUID(item["workflow_event_id"]), at)

    def fail_item(
        self, item_id: str, reason: str, at: datetime, retry_at: datetime | None
    ) -> None:
        """An attempt failed: retry at ``retry_at``, or dead when it is None."""
        item = self.actioned_item(item_id)
        if item["status"] in (COMPLETED, CANCELLED, DEAD):
            raise WorkflowError(f"actioned item {item_id} is {item['status']}")
        attempt = max(int(item["attempts"]), 1)
        if retry_at is not None and attempt < int(item["max_attempts"]):
            self.trigger_event(
                ActionedItemErrored,
                item_id=item_id,
                attempt=attempt,
                reason=reason,
                failed_at=at,
                retry_at=retry_at,
            )
        else:
            self.trigger_event(
                ActionedItemDead,
                item_id=item_id,
                attempt=attempt,
                reason=reason,
                failed_at=at,
            )

    def retry_item(self, item_id: str, by: str, at: datetime) -> None:
        item = self.actioned_item(item_id)
        if item["status"] not in (DEAD, ERROR):
            raise WorkflowError(
                f"only a dead or errored item can be retried; this one is "
                f"{item['status']}"
            )
        if self.workflow_event(item["workflow_event_id"])["status"] == CANCELLED:
            raise WorkflowError("its workflow event was cancelled")
        self.trigger_event(
            ActionedItemRetried, item_id=item_id, retried_by=by, retried_at=at
        )

    def cancel_item(self, item_id: str, by: str, at: datetime, reason: str) -> None:
        item = self.actioned_item(item_id)
        if item["status"] not in (*PENDING_STATES, DEAD):
            raise WorkflowError(
                f"actioned item {item_id} is {item['status']}: only an item not yet "
                "sent can be cancelled"
            )
        self.trigger_event(
            ActionedItemCancelled,
            item_id=item_id,
            cancelled_by=by,
            cancelled_at=at,
            reason=reason,
        )
        self._resolve_if_done(UUID(item["workflow_event_id"]), at)

    def _resolve_if_done(self, workflow_event_id: UUID, at: datetime) -> None:
        """Auto-resolve once every on-raise item is completed or cancelled."""
        if self.is_retired(workflow_event_id):
            return  # finished (and so no longer open)
        wf = self.workflow_event(workflow_event_id)
        if not (
            wf["auto_resolve"] and wf["status"] == OPEN and wf["raise_items_created"]
        ):
            return
        raise_items = [
            self.actioned_items[i]
            for i in wf["items"]
            if self.actioned_items[i]["stage"] in ("raise", "manual")
        ]
        # An action added by hand counts before the processor has made its item.
        expected = sum(1 for action in wf["actions"] if action["when"] == "raise")
        made = sum(1 for item in raise_items if item["kind"] == "action")
        if made >= expected and all(
            item["status"] in FINISHED_STATES for item in raise_items
        ):
            self.trigger_event(
                WorkflowEventResolved,
                workflow_event_id=workflow_event_id,
                resolved_by="system",
                resolved_at=at,
                automatically=True,
            )


WORKFLOW_EVENT_CLASSES = (
    WorkflowEventRaised,
    ManualActionAdded,
    ActionedItemsCreated,
    ActionedItemSent,
    ActionedItemCompleted,
    ActionedItemErrored,
    ActionedItemDead,
    ActionedItemRetried,
    ActionedItemCancelled,
    WorkflowEventResolved,
    WorkflowEventCancelled,
    LinkedEventRefused,
)
