"""How usage batches and usage rows are stored, on both backends."""

from __future__ import annotations

from pathlib import Path

from application.platform import Platform
from application.settings import Settings
from projections.store import Table
from tests.harness.postgres import PostgresServer


def test_a_key_already_in_a_view_is_skipped_not_an_error(platform: Platform) -> None:
    table = Table(
        "view_insert_new_probe",
        (("record_id", "TEXT NOT NULL"), ("charge", "TEXT")),
        key=("record_id",),
    )
    db = platform.usage_views.db
    with db.transaction() as tx:
        table.create(tx)
        table.insert_new(tx, [("R1", "0.10"), ("R2", "0.20")])
    with db.transaction() as tx:
        # R2 again, as a rebuild racing a catch-up could: the first one stays.
        table.insert_new(tx, [("R2", "9.99"), ("R3", "0.30")])
    with db.read() as tx:
        rows = tx.fetchall("SELECT * FROM view_insert_new_probe ORDER BY record_id")

    assert [(r["record_id"], r["charge"]) for r in rows] == [
        ("R1", "0.10"),
        ("R2", "0.20"),
        ("R3", "0.30"),
    ]


def test_usage_batch_events_are_stored_without_toast_compression(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """PostgreSQL only: TOAST compression is PostgreSQL's."""
    url = postgres.create_database()
    platform = Platform(Settings(home=tmp_path, database_url=url))
    try:
        recorder = platform.usage_batches.recorder
        with recorder.datastore.get_connection() as conn:
            found = conn.execute(
                "SELECT a.attstorage FROM pg_attribute a "
                "JOIN pg_class c ON c.oid = a.attrelid "
                "WHERE c.relname = %s AND a.attname = 'state'",
                (recorder.events_table_name,),
            ).fetchone()
    finally:
        platform.close()
        postgres.drop_database(url)

    assert found is not None
    assert found["attstorage"] == "e"
