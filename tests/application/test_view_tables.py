"""How the read models' tables are declared on each backend."""

from __future__ import annotations

import pytest

from application.platform import Platform
from projections.queue import ITEMS


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_on_postgresql_the_keys_and_indexed_columns_of_a_view_compare_as_bytes(
    platform: Platform,
) -> None:
    platform.views.catch_up()  # creates the tables

    with platform.views.db.read() as tx:
        rows = tx.fetchall(
            "SELECT column_name, collation_name FROM information_schema.columns"
            " WHERE table_name = ?",
            (ITEMS.name,),
        )
    collations = {row["column_name"]: row["collation_name"] for row in rows}

    # Ids, statuses and ISO times: byte order is their order, and the
    # cheapest comparison (no locale) for every index entry written.
    for column in ("item_id", "status", "due_at", "retry_at", "owner_id"):
        assert collations[column] == "C", column
    # Text nobody sorts or looks up by keeps the database's collation.
    assert collations["description"] is None
    assert collations["note"] is None


def test_ids_due_at_the_same_time_are_ordered_alike_on_both_backends(
    platform: Platform,
) -> None:
    platform.views.catch_up()
    ids = ["b", "B", "a", "é", "A", "10", "9", "_x"]

    with platform.views.db.transaction() as tx:
        for number, item_id in enumerate(ids):
            tx.execute(
                "INSERT INTO view_actioned_items (item_id, workflow_event_id, owner_id,"
                " status, attempts, position) VALUES (?, 'e', 'o', 'done', 0, ?)",
                (item_id, number),
            )
    with platform.views.db.read() as tx:
        rows = tx.fetchall("SELECT item_id FROM view_actioned_items ORDER BY item_id")

    assert [row["item_id"] for row in rows] == sorted(ids, key=str.encode)
