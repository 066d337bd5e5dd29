"""A subscription's snapshot is taken from the copy just saved, and another
process reads the same subscription from it as from its events (SQLite and
PostgreSQL)."""

from __future__ import annotations

from typing import Any

from application.customer_care import CustomerCare
from tests.application.test_remembered_events import cares  # noqa: F401 (a fixture)
from tests.unit.test_workflow_events import (
    AGENT,
    LATER,
    create_items,
    raise_event,
    unsaved_subscription,
)


def state(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


def test_a_snapshot_is_the_saved_copy_and_reads_back_as_the_events_do(
    cares: list[CustomerCare],  # noqa: F811 (the fixture imported above)
) -> None:
    writer, reader = cares
    subscription = unsaved_subscription()
    # 24 workflow events raised, worked and resolved, then one left open: 122
    # events, saved five at a time, so that version 100 falls inside a save.
    for _ in range(24):
        workflow_event_id = raise_event(subscription, "BFEA", "HOLD")
        [bar] = create_items(subscription, workflow_event_id)
        subscription.complete_item(bar, LATER, "DATA bar applied")
        subscription.resolve_workflow_event(workflow_event_id, AGENT, LATER)
        create_items(subscription, workflow_event_id, "resolve", at=LATER)
        writer.save(subscription)
    open_one = raise_event(subscription, "BFEA", "HOLD")
    writer.save(subscription)
    assert writer.snapshots is not None

    [snapshot] = writer.snapshots.get(subscription.id)

    assert snapshot.originator_version == 101  # as saved, not at 100
    from_snapshot = reader.repository.get(subscription.id)
    replayed = None
    for event in reader.events.get(subscription.id):
        replayed = event.mutate(replayed)
    assert state(from_snapshot) == state(replayed) == state(subscription)
    assert list(from_snapshot.workflow_events) == [str(open_one)]
    assert len(from_snapshot.retired_workflow_events) == 24
