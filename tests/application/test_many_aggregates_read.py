"""The worker reads the new events of hundreds of aggregates in one query, as
often as it likes, without reading the whole event store (SQLite and
PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from application.catalogue import CatalogueService
from application.customer_care import CustomerCare
from application.live import events_after, load_many
from application.persistence import database
from application.settings import Settings
from domain.customer import Customer

OTHERS = 40_000  # events of other aggregates: a store big enough to notice a scan
STATE_BYTES = 400
READ = 50  # aggregates read at once
ROUNDS = 12  # PostgreSQL plans a prepared statement generically after five runs


@pytest.fixture
def care(settings: Settings) -> Iterator[CustomerCare]:
    """Customer care on one database connection (so that its statistics can be
    flushed on demand)."""
    env = database(settings).eventsourcing_env("customer_care")
    env.update(POSTGRES_POOL_SIZE="1", POSTGRES_MAX_OVERFLOW="0")
    catalogue = CatalogueService(env=database(settings).eventsourcing_env("catalogue"))
    care = CustomerCare(env, catalogue=catalogue)
    yield care
    care.close()
    catalogue.close()


def customer(n: int) -> Customer:
    return Customer(
        name=f"Customer {n}",
        email=f"c{n}@example.com",
        phone="",
        language="en",
        address="",
        registered_by="agent-1",
    )


def fill_with_other_events(care: CustomerCare, backend: str) -> None:
    """The events of other aggregates with long histories (a hundred events
    each, of a usual size), written straight into the store: no one reads
    them here, only their number matters."""
    table = care.recorder.events_table_name  # type: ignore[attr-defined]
    rows = f"FROM generate_series(0, {OTHERS - 1}) AS n(i)"
    streams = OTHERS // 100
    if backend == "postgres":
        statement = (
            f"INSERT INTO {table} (originator_id, originator_version, topic, state)"
            f" SELECT lpad(to_hex(i % {streams}), 32, '0')::uuid, i / {streams},"
            " 'tests:Other',"
            f" decode(repeat('ab', {STATE_BYTES}), 'hex') {rows}"
        )
        with care.recorder.datastore.get_connection() as conn:  # type: ignore[attr-defined]
            conn.execute(statement)
            # As autovacuum would have by now in a store this size.
            conn.execute(f"ANALYZE {table}")
        return
    statement = (
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL"  # noqa: S608
        f" SELECT i + 1 FROM n WHERE i < {OTHERS - 1})"
        f" INSERT INTO {table} (originator_id, originator_version, topic, state)"
        f" SELECT printf('%032x', i % {streams}), i / {streams}, 'tests:Other',"
        f" randomblob({STATE_BYTES}) FROM n"
    )
    with care.recorder.datastore.transaction(commit=True) as cursor:  # type: ignore[attr-defined]
        cursor.execute(statement)


def scans_of_the_store(care: CustomerCare) -> int:
    """How many times PostgreSQL has read the whole events table."""
    table = care.recorder.events_table_name  # type: ignore[attr-defined]
    with care.recorder.datastore.get_connection() as conn:  # type: ignore[attr-defined]
        # The one connection's counts are reported before this returns.
        conn.execute("SELECT pg_stat_force_next_flush()")
    with care.recorder.datastore.get_connection() as conn:  # type: ignore[attr-defined]
        row: Any = conn.execute(
            "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = %s", (table,)
        ).fetchone()
    return int(row["seq_scan"])


def test_the_new_events_of_many_aggregates_are_read_by_key_however_often(
    care: CustomerCare, backend: str
) -> None:
    customers = [customer(n) for n in range(READ)]
    care.save(*customers)
    for c in customers[::2]:
        # A second event for half of them.
        c.change_contact_details({"phone": "+44 20 7946 0000"}, "agent-1")
    care.save(*customers[::2])
    fill_with_other_events(care, backend)
    scans = scans_of_the_store(care) if backend == "postgres" else 0

    for _ in range(ROUNDS):
        newer = events_after(care, {c.id: 1 for c in customers})
        assert set(newer) == {c.id for c in customers[::2]}
        assert all(
            [e.originator_version for e in events] == [2] for events in newer.values()
        )
        loaded = load_many(care, [c.id for c in customers])
        assert {i: a.version for i, a in loaded.items()} == {
            c.id: c.version for c in customers
        }

    if backend == "postgres":
        assert scans_of_the_store(care) == scans


def test_an_aggregate_never_saved_is_left_out(care: CustomerCare) -> None:
    saved = customer(1)
    care.save(saved)
    unknown = UUID(int=1)

    assert set(events_after(care, {saved.id: 0, unknown: 0})) == {saved.id}
    assert set(load_many(care, [saved.id, unknown])) == {saved.id}


def test_an_aggregate_is_read_from_its_latest_snapshot_and_the_events_after(
    care: CustomerCare,
) -> None:
    ada, bob = customer(1), customer(2)
    care.save(ada, bob)
    assert care.snapshots is not None
    care.take_snapshot(ada.id)
    ada.change_contact_details({"phone": "+44 20 7946 0001"}, "agent-1")
    care.save(ada)
    care.take_snapshot(ada.id)
    ada.change_contact_details({"phone": "+44 20 7946 0002"}, "agent-1")
    care.save(ada)

    loaded = load_many(care, [ada.id, bob.id])

    assert loaded[ada.id].version == 3
    assert loaded[ada.id].fields()["phone"] == "+44 20 7946 0002"
    assert loaded[bob.id].version == 1
