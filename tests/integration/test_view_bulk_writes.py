"""The bulk reads and writes the usage views use, on both backends: tuples in
the order selected, and many rows updated by key in one go."""

from __future__ import annotations

import pytest

from application.platform import Platform
from projections.store import Table

PROBE = Table(
    "view_bulk_probe",
    (("record_id", "TEXT NOT NULL"), ("charge", "TEXT"), ("position", "BIGINT")),
    key=("record_id",),
)


def probe(platform: Platform) -> None:
    with platform.usage_views.db.transaction() as tx:
        PROBE.create(tx)
        PROBE.insert_new(tx, [("R1", "0.10", 1), ("R2", "0.20", 1), ("R3", None, 1)])


def probed(platform: Platform) -> list[tuple[object, ...]]:
    """The probe's rows, by record id."""
    with platform.usage_views.db.read() as tx:
        return tx.fetch_tuples(
            "SELECT record_id, charge, position FROM view_bulk_probe ORDER BY record_id"
        )


def test_tuples_come_in_the_order_selected_with_the_values_stored(
    platform: Platform,
) -> None:
    probe(platform)
    with platform.usage_views.db.read() as tx:
        rows = tx.fetch_tuples(
            "SELECT record_id, charge, position FROM view_bulk_probe "
            "WHERE record_id > ? ORDER BY record_id DESC",
            ["R1"],
        )

    assert rows == [("R3", None, 1), ("R2", "0.20", 1)]


def test_rows_are_updated_by_key_and_the_others_left_as_they_were(
    platform: Platform,
) -> None:
    probe(platform)
    db = platform.usage_views.db
    with db.transaction() as tx:
        tx.update_rows(
            "view_bulk_probe",
            "record_id",
            ("charge", "position"),
            [("0.15", 2, "R1"), (None, 2, "R2"), ("1.00", 2, "NOT-THERE")],
        )
        # twice in one transaction: the second batch replaces the first's
        tx.update_rows("view_bulk_probe", "record_id", ("charge",), [("0.30", "R3")])
    rows = probed(platform)

    assert rows == [("R1", "0.15", 2), ("R2", None, 2), ("R3", "0.30", 1)]


def test_an_update_with_no_rows_changes_nothing(platform: Platform) -> None:
    probe(platform)
    db = platform.usage_views.db
    with db.transaction() as tx:
        tx.update_rows("view_bulk_probe", "record_id", ("charge",), [])
    with db.read() as tx:
        charges = tx.fetch_tuples("SELECT charge FROM view_bulk_probe ORDER BY 1")

    assert sorted(charges, key=str) == sorted([("0.10",), ("0.20",), (None,)], key=str)


@pytest.mark.parametrize(
    ("rows", "stored"),
    [
        ([("0.15", 2, "R1"), (None, 3, "R2")], [("R1", "0.15", 2), ("R2", None, 3)]),
        # An event written before amounts were text carries a number: the
        # binary COPY refuses it, and the rows go in as text instead.
        ([("0.15", 2, "R1"), (0.25, 3, "R2")], [("R1", "0.15", 2), ("R2", "0.25", 3)]),
    ],
    ids=["of-those-types", "a-value-of-another-type"],
)
def test_rows_updated_with_their_column_types_given_are_stored_as_given(
    platform: Platform,
    rows: list[tuple[object, ...]],
    stored: list[tuple[object, ...]],
) -> None:
    probe(platform)
    with platform.usage_views.db.transaction() as tx:
        # a write before them in the same transaction is kept either way
        tx.execute("UPDATE view_bulk_probe SET position = 5 WHERE record_id = 'R3'")
        tx.update_rows(
            "view_bulk_probe",
            "record_id",
            ("charge", "position"),
            rows,
            ("text", "int8", "text"),
        )

    assert probed(platform) == [*stored, ("R3", None, 5)]
