"""The worker's own working copies of the aggregates it acts on.

Loading an aggregate from the library's cache costs a query (to fast-forward
past events other processes wrote) and a copy. The worker touches the same
subscriptions several times a second, so it keeps them between rounds and
relies on optimistic concurrency instead: a save that finds a newer version
in the store fails, the copies are forgotten, and the next round reloads
them. Every decision the worker takes is recorded on the aggregate it read,
so acting on a stale copy can never be saved.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import (
    IntegrityError,
    Mapper,
    Recorder,
    Recording,
    StoredEvent,
)
from eventsourcing.sqlite import SQLiteAggregateRecorder

from domain.account import Account
from domain.subscription import Subscription

if TYPE_CHECKING:
    from application.customer_care import CustomerCare, Owner

# Aggregates per query: well inside SQLite's and PostgreSQL's parameter limits.
_CHUNK = 400


class LiveAggregates:
    """Working copies for one thread (the worker's); least recently used go."""

    def __init__(self, care: CustomerCare, maxsize: int = 50_000):
        self.care = care
        self.maxsize = maxsize
        self._copies: OrderedDict[UUID, Owner] = OrderedDict()

    def get(self, owner_id: UUID) -> Owner:
        owner = self._copies.get(owner_id)
        if owner is None:
            owner = self.care.owner(owner_id)
            self._copies[owner_id] = owner
            if len(self._copies) > self.maxsize:
                self._copies.popitem(last=False)
        else:
            self._copies.move_to_end(owner_id)
        return owner

    def at_least(self, owner_id: UUID, version: int) -> Owner:
        """A copy that holds at least ``version`` (read afresh when behind)."""
        return self.at_least_many({owner_id: version})[owner_id]

    def get_many(self, owner_ids: Iterable[UUID]) -> dict[UUID, Owner]:
        """Copies of several owners; those not held yet are read in one go."""
        return self.at_least_many({owner_id: 0 for owner_id in owner_ids})

    def current(self, owner_ids: Iterable[UUID]) -> dict[UUID, Owner]:
        """Copies of several owners as current as the store (one query for all).

        Cheaper than a save that fails on a copy another process made stale.
        """
        ids = list(dict.fromkeys(owner_ids))
        return self.at_least_many(
            {
                i: c.version + 1 if (c := self._copies.get(i)) is not None else 0
                for i in ids
            }
        )

    def at_least_many(
        self, versions: Mapping[UUID, int], known: Sequence[Any] = ()
    ) -> dict[UUID, Owner]:
        """Copies holding at least the given versions, brought up to date together.

        ``known``: stored events in hand (the notifications being processed,
        say), in the order of the log: a copy they continue takes them without
        a query. A copy still behind takes the events it misses from one query
        for all of them; owners not held yet are read from the store in one go.
        """
        if known:
            self._continue_with(known)
        behind = {
            owner_id: copy.version
            for owner_id, version in versions.items()
            if (copy := self._copies.get(owner_id)) is not None
            and copy.version < version
        }
        try:
            for owner_id, events in events_after(self.care, behind).items():
                copy = self._copies[owner_id]
                for event in events:
                    copy = event.mutate(copy)
        except BaseException:
            self.forget(behind)  # half fast-forwarded copies must not be kept
            raise
        missing = [owner_id for owner_id in versions if owner_id not in self._copies]
        # Read from the store: copies of the library's cache (deep copies, and
        # a copy left in the cache) would serve nobody else here.
        loaded = {
            owner_id: owner
            for owner_id, owner in load_many(self.care, missing).items()
            if isinstance(owner, Account | Subscription)
        }
        for owner_id in missing:
            if owner_id not in loaded:
                self.care.owner(owner_id)  # raises the usual NotFound
        owners: dict[UUID, Owner] = {}
        for owner_id in versions:
            owner = self._copies.get(owner_id)
            if owner is None:
                owner = self._copies[owner_id] = loaded[owner_id]
            self._copies.move_to_end(owner_id)
            owners[owner_id] = owner
        while len(self._copies) > self.maxsize:
            self._copies.popitem(last=False)
        return owners

    def _continue_with(self, events: Sequence[Any]) -> None:
        """Apply each event to the copy it directly continues (the copy's
        version is the one before); others are left to the store's reading."""
        copies = self._copies
        changed = set()
        try:
            for event in events:
                copy = copies.get(event.originator_id)
                if copy is not None and copy.version == event.originator_version - 1:
                    changed.add(event.originator_id)
                    event.mutate(copy)
        except BaseException:
            self.forget(changed)  # half fast-forwarded copies must not be kept
            raise

    def save(self, aggregates: Iterable[Any]) -> bool:
        """Save changed aggregates at once; on a conflict forget them all."""
        changed = {id(a): a for a in aggregates if a.pending_events}
        if not changed:
            return True
        try:
            self.care.save_changes(changed.values())
        except IntegrityError:
            self.forget(a.id for a in changed.values())
            return False
        return True

    def save_each(self, aggregates: Iterable[Any]) -> set[UUID]:
        """Save changed aggregates at once, except those another writer changed
        since they were read (``CustomerCare.save_each``): returns the ids of
        those, which are forgotten."""
        left_out = self.care.save_each(aggregates)
        self.forget(left_out)
        return left_out

    def forget(self, ids: Iterable[UUID]) -> None:
        for aggregate_id in ids:
            self._copies.pop(aggregate_id, None)

    def clear(self) -> None:
        self._copies.clear()


# --- decoding each stored event once ---------------------------------------------


class RememberingMapper(Mapper[UUID]):
    """A mapper that decodes a stored event once and hands out the same object
    every later time it is read (the events are immutable).

    A workflow event passes through the workflow processor, the read models
    and the working copies of the worker, each reading it from the store: the
    worker decoded each of its events about ten times. Events this process
    saved are remembered as they were saved, once the save has committed
    (``remember``). Only the domain's own events are remembered, not
    snapshots (an aggregate rebuilt from a snapshot takes over its state).
    """

    size = 100_000  # events remembered, at most (the oldest are forgotten)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # By (originator id, version, topic): a snapshot shares the first two
        # with the event it was taken at.
        self._known: dict[tuple[Any, int, str], Any] = {}
        self._trimming = threading.Lock()  # several threads may read at once

    def remembered(self, key: tuple[Any, int, str]) -> Any:
        """The event of (originator id, version, topic) if remembered, else None."""
        return self._known.get(key)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        key = (
            stored_event.originator_id,
            stored_event.originator_version,
            stored_event.topic,
        )
        event = self._known.get(key)
        if event is None:
            event = super().to_domain_event(stored_event)
            if stored_event.topic.startswith(_REMEMBERED):
                self._keep(key, event)
        return event

    def remember(self, recordings: Iterable[Recording[UUID]]) -> None:
        """Events just saved (committed), as the recordings of a save give them."""
        for recording in recordings:
            notification = recording.notification
            if notification.topic.startswith(_REMEMBERED):
                key = (
                    notification.originator_id,
                    notification.originator_version,
                    notification.topic,
                )
                self._keep(key, recording.domain_event)

    def _keep(self, key: tuple[Any, int, str], event: Any) -> None:
        known = self._known
        known[key] = event
        if len(known) > self.size:
            with self._trimming:
                oldest = list(itertools.islice(known, len(known) - self.size // 2))
                for old in oldest:
                    known.pop(old, None)


_REMEMBERED = "monetise."  # the domain's own stored event classes


# --- reading many aggregates at once --------------------------------------------
#
# The library reads one aggregate per query. The worker and bulk commands touch
# hundreds at a time, so these read the events (and latest snapshots) of many
# in one query, from the library's own tables.


def events_after(
    app: Application[UUID], versions: Mapping[UUID, int]
) -> dict[UUID, list[Any]]:
    """The domain events of several aggregates after the given versions, in order.

    Aggregates with no newer events are left out.
    """
    found: dict[UUID, list[Any]] = {}
    for event in _events_after(app, versions):
        found.setdefault(event.originator_id, []).append(event)
    for events in found.values():
        events.sort(key=lambda event: event.originator_version)
    return found


def _events_after(app: Application[UUID], versions: Mapping[UUID, int]) -> list[Any]:
    """The domain events after the given versions, in no particular order.

    On PostgreSQL, with events remembered, the keys are read first and the
    stored states only of events not remembered: reading a few hundred
    subscriptions afresh after a collision, whose events this process had
    mostly saved or read already, took a third of the worker's time, half of
    it moving states it did not need (measured: 38,800 events of 400
    subscriptions, 330-350 ms with their states, 125-195 ms without).
    """
    mapper, recorder = app.mapper, app.recorder
    if not isinstance(mapper, RememberingMapper) or isinstance(
        recorder, SQLiteAggregateRecorder
    ):
        return [
            mapper.to_domain_event(stored) for stored in _select(recorder, versions)
        ]
    items = list(versions.items())
    events: list[Any] = []
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        keys = _select_postgres_keys(recorder, chunk)
        known = [mapper.remembered(key) for key in keys]
        unknown = [(k[0], k[1]) for k, e in zip(keys, known, strict=True) if e is None]
        if len(unknown) * 2 > len(keys):
            # Mostly new to this process (it has just started): one lookup
            # of each event would cost more than reading them all again.
            stored = _select_postgres(recorder, chunk, latest=False)
            events += [mapper.to_domain_event(s) for s in stored]
            continue
        events += [event for event in known if event is not None]
        if unknown:
            stored = _select_postgres(recorder, unknown, latest=False, exact=True)
            events += [mapper.to_domain_event(s) for s in stored]
    return events


def load_many(app: Application[UUID], aggregate_ids: Iterable[UUID]) -> dict[UUID, Any]:
    """Several aggregates from their latest snapshots and events (few queries).

    Ids with no events are left out.
    """
    ids = list(dict.fromkeys(aggregate_ids))
    aggregates: dict[UUID, Any] = {}
    if app.snapshots is not None and ids:
        stored = _select(app.snapshots.recorder, {i: 0 for i in ids}, latest=True)
        for snapshot in map(app.mapper.to_domain_event, stored):
            aggregates[snapshot.originator_id] = snapshot.mutate(None)  # type: ignore[attr-defined]
    versions = {i: aggregates[i].version if i in aggregates else 0 for i in ids}
    for aggregate_id, events in events_after(app, versions).items():
        aggregate = aggregates.get(aggregate_id)
        for event in events:
            aggregate = event.mutate(aggregate)
        aggregates[aggregate_id] = aggregate
    return aggregates


def _select(
    recorder: Recorder, versions: Mapping[UUID, int], latest: bool = False
) -> list[StoredEvent]:
    """Stored events of many originators after a version each (or the latest)."""
    items = list(versions.items())
    stored: list[StoredEvent] = []
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        if isinstance(recorder, SQLiteAggregateRecorder):
            stored += _select_sqlite(recorder, chunk, latest)
        else:
            stored += _select_postgres(recorder, chunk, latest)
    return stored


def table_names(datastore: Any, table: str) -> dict[str, Any]:
    """``{schema}``, ``{table}`` and ``{kind}`` (of the originator ids) for
    the SQL of an event store's table on PostgreSQL."""
    from psycopg.sql import Identifier

    return {
        "schema": Identifier(datastore.schema),
        "table": Identifier(table),
        "kind": Identifier(datastore.originator_id_type),
    }


def _select_postgres_keys(
    recorder: Any, chunk: Sequence[tuple[UUID, int]]
) -> list[tuple[UUID, int, str]]:
    """(originator id, version, topic) of the events after a version each."""
    from psycopg.rows import tuple_row
    from psycopg.sql import SQL

    datastore = recorder.datastore
    uuids = datastore.originator_id_type == "uuid"
    statement = SQL(
        "SELECT e.originator_id, e.originator_version, e.topic"
        " FROM unnest(%s::{kind}[], %s::bigint[]) AS w(id, v) CROSS JOIN LATERAL ("
        " SELECT originator_id, originator_version, topic FROM {schema}.{table}"
        " WHERE originator_id = w.id AND originator_version > w.v OFFSET 0) AS e"
    ).format(**table_names(datastore, recorder.events_table_name))
    params = [[i if uuids else str(i) for i, _ in chunk], [v for _, v in chunk]]
    with (
        datastore.get_connection() as conn,
        conn.cursor(row_factory=tuple_row) as cursor,
    ):
        cursor.execute(statement, params, prepare=True)
        rows: list[tuple[Any, int, str]] = cursor.fetchall()
    if uuids:
        return rows
    return [(UUID(str(i)), v, topic) for i, v, topic in rows]


def _select_postgres(
    recorder: Any,
    chunk: Sequence[tuple[UUID, int]],
    latest: bool,
    exact: bool = False,
) -> list[StoredEvent]:
    """Stored events after a version each (at exactly that version with
    ``exact``), or the latest of each (``latest``)."""
    from eventsourcing.postgres import PostgresAggregateRecorder
    from psycopg.sql import SQL

    assert isinstance(recorder, PostgresAggregateRecorder), type(recorder)

    datastore = recorder.datastore
    uuids = datastore.originator_id_type == "uuid"
    ids = [i if uuids else str(i) for i, _ in chunk]
    names = table_names(datastore, recorder.events_table_name)
    # Each id is looked up in the primary key by a subquery of its own (LIMIT
    # and OFFSET keep the planner from merging it into a join). As a plain
    # join, the planner expects a third of an aggregate's history after the
    # version given (it is mostly nothing) and, for histories of a hundred
    # events, reads the whole events table instead: measured, 6 ms a call at
    # 49,000 events, growing with the store.
    if latest:
        statement = SQL(
            "SELECT e.originator_id, e.originator_version, e.topic, e.state"
            " FROM unnest(%s::{kind}[]) AS w(id) CROSS JOIN LATERAL ("
            " SELECT * FROM {schema}.{table} WHERE originator_id = w.id"
            " ORDER BY originator_version DESC LIMIT 1) AS e"
        ).format(**names)
        params: list[Any] = [ids]
    else:
        statement = SQL(
            "SELECT e.originator_id, e.originator_version, e.topic, e.state"
            " FROM unnest(%s::{kind}[], %s::bigint[]) AS w(id, v)"
            " CROSS JOIN LATERAL ("
            " SELECT * FROM {schema}.{table}"
            " WHERE originator_id = w.id AND originator_version {compare} w.v"
            " OFFSET 0) AS e"
        ).format(**names, compare=SQL("=" if exact else ">"))
        params = [ids, [v for _, v in chunk]]
    with datastore.get_connection() as conn, conn.cursor() as cursor:
        cursor.execute(statement, params, prepare=True)
        rows = cursor.fetchall()
    return [
        StoredEvent(
            originator_id=row["originator_id"],
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=bytes(row["state"]),
        )
        for row in rows
    ]


def _select_sqlite(
    recorder: Any, chunk: Sequence[tuple[UUID, int]], latest: bool
) -> list[StoredEvent]:
    table = recorder.events_table_name
    keys = [i.hex if isinstance(i, UUID) else i for i, _ in chunk]
    if latest:
        marks = ",".join("?" * len(keys))
        statement = (
            f"SELECT e.originator_id, e.originator_version, e.topic, e.state"  # noqa: S608
            f" FROM (SELECT originator_id AS id, MAX(originator_version) AS v"
            f" FROM {table} WHERE originator_id IN ({marks}) GROUP BY originator_id)"
            f" AS w JOIN {table} AS e"
            f" ON e.originator_id = w.id AND e.originator_version = w.v"
        )
        params: list[Any] = keys
    else:
        pairs = ",".join(["(?,?)"] * len(keys))
        statement = (
            f"WITH w(id, v) AS (VALUES {pairs})"  # noqa: S608
            f" SELECT e.originator_id, e.originator_version, e.topic, e.state"
            f" FROM w JOIN {table} AS e"
            f" ON e.originator_id = w.id AND e.originator_version > w.v"
        )
        params = [x for key, (_, v) in zip(keys, chunk, strict=True) for x in (key, v)]
    with recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute(statement, params)
        rows = cursor.fetchall()
    return [
        StoredEvent(
            originator_id=recorder.convert_originator_id(row["originator_id"]),
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=row["state"],
        )
        for row in rows
    ]
