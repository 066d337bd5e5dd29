"""A PostgreSQL recorder for applications whose events are large.

The library's recorder sends a save's events as one array of a composite type,
which psycopg writes as text: every byte of every event as hex, then quoted by
a regular expression. For usage batch events of several megabytes that took
longer than validating their records. This recorder sends the same rows as
one multi-row ``INSERT … VALUES`` with the states as binary parameters, under
the same table lock and notification, returning the notification ids in the
order of the events as the library's does; outside pipeline mode, and reads
the states back in binary too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg import Cursor, InterfaceError, OperationalError
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composable, Composed, Identifier

TOPIC = "application.bulk_recorder:BulkPostgresApplicationRecorder"


class BinaryNotifications:
    """Mixed into a PostgreSQL recorder: notifications read by
    ``select_notifications`` (in binary, in the index's order with topics).

    As text, every byte of the states is written as two hex digits by the
    server and read back by the client, which cost the usage views as much as
    decoding the events; and the workflow processor's topics were a quarter
    of the events in the workflow benchmark, read by a scan and a sort.
    """

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        assert isinstance(self, PostgresApplicationRecorder)
        return select_notifications(
            self, start, limit, stop, topics, inclusive_of_start=inclusive_of_start
        )


class BulkPostgresApplicationRecorder(BinaryNotifications, PostgresApplicationRecorder):
    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """The library's insert without pipeline mode: psycopg 3.3 can hang
        sending a statement of several megabytes in a pipeline, and with a
        few statements per save of thousands of records the round trips it
        saves cost nothing here."""
        notification_ids: Sequence[int] | None = None
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor() as curs,
        ):
            self._insert_events(curs, stored_events, **kwargs)
            if stored_events:
                self._insert_stored_events(curs, stored_events, **kwargs)
                notification_ids = self._fetch_ids_after_insert_events(
                    curs, stored_events, **kwargs
                )
        return notification_ids

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


def select_notifications(
    recorder: PostgresApplicationRecorder,
    start: int | None,
    limit: int,
    stop: int | None = None,
    topics: Sequence[str] = (),
    *,
    inclusive_of_start: bool = True,
) -> Sequence[Notification]:
    """Notifications in order from ``start``, the states read in binary.

    With topics, the rows are read in the order of the notification index
    until ``limit`` are found. Left to itself, the planner guesses that a few
    topics among many are rare (the more so before the table is analysed)
    and instead reads every row from ``start`` on, then sorts them: the
    workflow processor, behind by 30,000 notifications, took 8 to 15 ms a
    call to find 500 (measured with pg_stat_statements; 1 ms in order)."""
    where: list[Composable] = []
    params: list[Any] = []
    if start is not None:
        after = ">=" if inclusive_of_start else ">"
        where.append(SQL("notification_id" + after + "%s"))
        params.append(start)
    if stop is not None:
        where.append(SQL("notification_id<=%s"))
        params.append(stop)
    if topics:
        where.append(SQL("topic = ANY(%s)"))
        params.append(list(topics))
    statement = SQL("SELECT * FROM {schema}.{table}").format(
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name),
    )
    if where:
        statement += SQL(" WHERE ") + SQL(" AND ").join(where)
    statement += SQL(" ORDER BY notification_id LIMIT %s")
    params.append(limit)
    with (
        recorder.datastore.get_connection() as conn,
        conn.transaction(),
        conn.cursor() as curs,
    ):
        if topics:
            curs.execute(
                "SELECT set_config('enable_bitmapscan', 'off', true),"
                " set_config('enable_seqscan', 'off', true)"
            )
        curs.execute(statement, params, prepare=True, binary=True)
        return [
            Notification(
                id=row["notification_id"],
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            for row in curs.fetchall()
        ]


def store_states_as_given(recorder: Any) -> None:
    """Store the states of events as the mapper gives them: out of line when
    big, never compressed again by the server.

    The mapper compresses big states with lz4 itself
    (:mod:`application.compression`), on both backends. Before, PostgreSQL
    did (lz4 TOAST compression, set here): the client then sent each state
    whole, and the server compressed it, cut the result into TOAST rows and
    wrote them to the WAL, and decompressed it for every reader. A state
    compressed beforehand is about a sixth of the bytes through each of
    those steps, and the server's CPU for a load of offline-rated records
    fell by a third (``benchmarks/rating.py``, README). ``EXTERNAL`` spares
    the server trying to compress such a state again. Only new rows are
    affected: those the server compressed read back as they were.
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
        if found is None or found["attstorage"] == "e":
            return
        conn.execute(
            SQL(
                "ALTER TABLE {schema}.{table} ALTER COLUMN state SET STORAGE EXTERNAL"
            ).format(schema=Identifier(schema), table=Identifier(table))
        )
