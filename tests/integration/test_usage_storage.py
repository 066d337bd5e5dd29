"""How usage batches and usage rows are stored, on both backends."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import lz4.frame
from psycopg.sql import SQL, Identifier

from application.compression import LZ4_FRAME_MAGIC
from application.platform import Platform
from application.settings import Settings
from application.usage import UsageBatches
from domain.rerating import RerateRun
from domain.usage_batch import UsageBatch
from projections.store import Table
from projections.usage import PREPAID_USAGE, RATED_USAGE
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


def test_rows_of_a_table_with_exact_types_are_copied_even_when_one_is_not(
    platform: Platform,
) -> None:
    table = Table(
        "view_exact_types_probe",
        (("record_id", "TEXT NOT NULL"), ("units", "BIGINT"), ("charge", "TEXT")),
        key=("record_id",),
        exact_types=True,
    )
    db = platform.usage_views.db
    rows = [(f"R{n:02d}", n, "0.10") for n in range(20)]
    with db.transaction() as tx:
        table.create(tx)
        table.insert_new(tx, rows)
    with db.transaction() as tx:
        # A number where text is declared (binary COPY refuses it).
        odd = [("S1", 1, 25), *((f"S{n}", n, "0.30") for n in range(2, 20))]
        table.insert_new(tx, odd)
    with db.transaction() as tx:
        table.insert_new(tx, [("R01", 99, "9.99"), *odd[:1], ("T1", None, None)] * 6)
    with db.read() as tx:
        stored = tx.fetchall("SELECT * FROM view_exact_types_probe ORDER BY record_id")

    assert len(stored) == 20 + 19 + 1
    assert (stored[1]["record_id"], stored[1]["units"]) == ("R01", 1)
    assert (stored[20]["record_id"], stored[20]["charge"]) == ("S1", "25")
    assert (stored[-1]["record_id"], stored[-1]["units"]) == ("T1", None)


def test_postgresql_stores_the_usage_events_as_given_without_compressing_again(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """PostgreSQL only: the mapper has compressed the big states; the server
    keeps them out of line (``EXTERNAL``) and does not try again."""
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


def usage_row(record_id: str, position: int) -> tuple[object, ...]:
    values: dict[str, object] = {
        "record_id": record_id,
        "batch_id": "batch",
        "record_index": position,
        "subscription_id": "sub",
        "account_id": "acct",
        "usage_class": "VOICE_NAT",
        "start_time": "2026-11-21T09:58:01.000000+00:00",
        "direction": "MO",
        "position": position,
    }
    return tuple(values.get(name) for name in RATED_USAGE.column_names)


def test_the_records_other_batches_loaded_are_found_however_their_ids_run(
    platform: Platform,
) -> None:
    views = platform.usage_views
    with views.db.transaction() as tx:
        RATED_USAGE.insert_new(tx, [usage_row(f"R{n:03d}", n) for n in range(100)])
        PREPAID_USAGE.insert_new(tx, [usage_row("P,1", 100), usage_row("Q7", 101)])

    run = views.loaded_ids([f"R{n:03d}" for n in range(95, 105)])
    spread = views.loaded_ids(["R000", "R050", "R099", "S1", "Q7"])
    with_comma = views.loaded_ids(["P,1", "R001", "Z"])

    assert run == {f"R{n:03d}" for n in range(95, 100)}
    assert spread == {"R000", "R050", "R099", "Q7"}
    assert with_comma == {"P,1", "R001"}


def test_a_usage_batch_event_of_many_megabytes_is_saved_and_read_back(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    """PostgreSQL only: psycopg's pipeline mode, which the library's recorder
    saves in, could hang on a single statement of about ten megabytes."""
    url = postgres.create_database()
    platform = Platform(Settings(home=tmp_path, database_url=url))
    try:
        batches = platform.usage_batches
        batch = UsageBatch(
            file_name="big.json",
            sha256="CD" * 32,
            size=1,
            kind="rated",
            directory="rated",
            key_id=None,
            received_by="test",
        )
        records = [
            f'{{"record_id": "R{n:07d}", "pad": "{"x" * 300}"}}' for n in range(40_000)
        ]
        batch.stage(records)
        batches.save(batch)
        (_, staged) = batches.events.get(batch.id)
        notifications = batches.recorder.select_notifications(start=None, limit=10)
    finally:
        platform.close()
        postgres.drop_database(url)

    assert isinstance(staged, UsageBatch.RecordsStaged)
    assert staged.records == records
    assert [n.originator_version for n in notifications] == [1, 2]


def corrected_run(records: int) -> RerateRun:
    run = RerateRun(
        usage_class="VOICE_NAT", period_from=None, period_to=None, requested_by="test"
    )
    breakdown = json.dumps({"charge": "0.1200", "breakdown": [{"band": "PEAK"}]})
    # record, batch, payment, subscription, old and new charge, delta, old
    # and new discount, new breakdown
    page = [
        [f"R{n:05d}", "batch", "postpaid", "sub", "0.10", "0.12", "0.02"]
        for n in range(records)
    ]
    run.correct([[*row, None, None, breakdown] for row in page], records)
    return run


def stored_states(platform: Platform) -> dict[int, bytes]:
    """The states of the usage application's events as its store holds them,
    by version (the tests here save one aggregate)."""
    if platform.database.backend == "sqlite":
        path = platform.database.sqlite_file(UsageBatches.name)
        with closing(sqlite3.connect(path)) as db:
            rows = db.execute("SELECT originator_version, state FROM stored_events")
            return {version: bytes(state) for version, state in rows}
    recorder = platform.usage_batches.recorder
    with recorder.datastore.get_connection() as conn:
        found = conn.execute(
            SQL("SELECT originator_version, state FROM {}").format(
                Identifier(recorder.events_table_name)
            )
        ).fetchall()
    return {row["originator_version"]: bytes(row["state"]) for row in found}


def test_big_usage_batch_events_are_stored_compressed_with_lz4(
    settings: Settings,
) -> None:
    """The mapper compresses big states on both backends: SQLite compresses
    nothing itself, and PostgreSQL did it at a higher cost."""
    platform = Platform(settings)
    try:
        run = corrected_run(500)
        platform.usage_batches.save(run)
        states = stored_states(platform)
        read: RerateRun = platform.usage_batches.repository.get(run.id)
        (corrected,) = [
            e
            for e in platform.usage_batches.events.get(run.id)
            if isinstance(e, RerateRun.ChargesCorrected)
        ]
    finally:
        platform.close()

    created, corrections = states[1], states[2]
    assert created.startswith(b"{")  # small: plain JSON, readable in the store
    assert corrections.startswith(LZ4_FRAME_MAGIC)
    assert len(corrections) * 4 < len(lz4.frame.decompress(corrections))
    assert read.changed == 500
    assert corrected.corrections[499][0] == "R00499"


def test_usage_batch_events_stored_before_compression_are_read_back(
    settings: Settings,
) -> None:
    # The settings of the event store before the mapper compressed anything
    # (on PostgreSQL, the server compressed the states of this table).
    first = Platform(settings)
    plain = UsageBatches(env=first.env_for(UsageBatches.name))
    run = corrected_run(500)
    plain.save(run)
    plain.close()
    first.close()

    platform = Platform(settings)
    try:
        (stored,) = [s for v, s in stored_states(platform).items() if v == 2]
        read: RerateRun = platform.usage_batches.repository.get(run.id)
    finally:
        platform.close()

    assert stored.startswith(b"{")
    assert read.changed == 500
