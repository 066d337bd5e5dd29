"""A PostgreSQL recorder for applications whose events are large.

The library's recorder sends a save's events as one array of a composite type,
which psycopg writes as text: every byte of every event as hex, then quoted by
a regular expression. For usage batch events of several megabytes that took
longer than validating their records. This recorder sends the same rows as
one multi-row ``INSERT … VALUES`` with the states as binary parameters, under
the same table lock and notification, returning the notification ids in the
order of the events as the library's does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

TOPIC = "application.bulk_recorder:BulkPostgresApplicationRecorder"


class BulkPostgresApplicationRecorder(PostgresApplicationRecorder):
    def _insert_stored_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,
    ) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        params: list[Any] = []
        for event in stored_events:
            params += [
                event.originator_id,
                event.originator_version,
                event.topic,
                event.state,
            ]
        values = SQL(",").join([SQL("(%s,%s,%s,%b)")] * len(stored_events))
        statement = Composed(
            [
                SQL(
                    "INSERT INTO {schema}.{table} "
                    "(originator_id, originator_version, topic, state) VALUES "
                ).format(
                    schema=Identifier(self.datastore.schema),
                    table=Identifier(self.events_table_name),
                ),
                values,
                SQL(" RETURNING notification_id"),
            ]
        )
        curs.execute(statement, params)


def store_uncompressed(recorder: Any) -> None:
    """Keep the states of big events out of TOAST compression.

    PostgreSQL compresses large values with pglz, which cost more server time
    than the whole insert and again on every read by the usage views; records
    compress well, but disk is cheaper than the loading rate. Only new rows
    are affected; the table is altered once.
    """
    assert isinstance(recorder, PostgresApplicationRecorder)
    schema, table = recorder.datastore.schema, recorder.events_table_name
    with recorder.datastore.get_connection() as conn:
        found = conn.execute(
            "SELECT a.attstorage FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s AND a.attname = 'state'",
            (schema, table),
        ).fetchone()
        if found is not None and found["attstorage"] != "e":
            conn.execute(
                SQL(
                    "ALTER TABLE {schema}.{table} ALTER COLUMN state SET STORAGE "
                    "EXTERNAL"
                ).format(schema=Identifier(schema), table=Identifier(table))
            )
