"""Projections and the runner that keeps them up to date with the event log.

A projection's rows and its tracking position are written in one transaction,
so a crash never leaves a batch half applied, and a view can be dropped and
rebuilt from the events with the same result.

Several runners (the API and the worker, in separate processes) may catch up
the same projection at once: each locks the projection's tracking row (``SELECT
… FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), re-reads the
position under the lock and applies only what is still beyond it.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from typing import Any, ClassVar

import orjson
from eventsourcing.application import Application
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from projections.store import (
    COPY_MIN_ROWS,
    Row,
    Table,
    Transaction,
    ViewDatabase,
    json_text,
)

logger = logging.getLogger(__name__)

DomainEvent = Any  # projections read the fields of specific event classes
Batch = Sequence[tuple[int, DomainEvent]]  # (notification id, domain event)

TRACKING = Table(
    "view_tracking",
    (("projection", "TEXT NOT NULL"), ("position", "BIGINT NOT NULL")),
    key=("projection",),
)
SETUP_LOCK = "monetise.views.setup"
KEPT_ROWS = 10_000  # rows of each table kept between batches, at most
POSITION_SQL = "SELECT position FROM view_tracking WHERE projection = ?"


def topics_of(*classes: type) -> tuple[str, ...]:
    """The stored topics of event classes (their explicit ``TOPIC`` if any)."""
    return tuple(get_topic(cls) for cls in classes)


class Projection:
    """A read model: named with its version, fed the events of its ``topics``.

    Subclasses declare ``name`` (e.g. ``"actioned_items_v1"``; a change of the
    tables or of what the rows mean is a new version, which starts from empty
    tables), ``topics`` and ``tables``, and implement ``process`` or, better
    for throughput, ``process_batch``.
    """

    name: ClassVar[str] = ""
    topics: ClassVar[tuple[str, ...]] = ()
    tables: ClassVar[tuple[Table, ...]] = ()

    def __init__(self, db: ViewDatabase):
        self.db = db
        # Rows the batches this process applied last left behind, by table:
        # the next batch finds them here instead of reading them again. Only
        # ``ProjectionRunner`` knows whether they are still what is stored.
        self._kept: dict[str, dict[str, Row]] = {}

    def kept_rows(self, table: Table) -> dict[str, Row]:
        """The rows of ``table`` kept from the batches applied before, by key,
        to hand to ``BatchRows``; they stay valid only as long as nobody else
        applies a batch to this view (the runner forgets them then)."""
        return self._kept.setdefault(table.name, {})

    def forget_rows(self, keep: int = 0) -> None:
        """Forget the rows kept between batches (all but the ``keep`` most
        recently used of each table)."""
        for rows in self._kept.values():
            for key in list(itertools.islice(rows, max(len(rows) - keep, 0))):
                del rows[key]

    def create(self, tx: Transaction) -> None:
        """Create the view's tables and indexes."""
        for table in self.tables:
            table.create(tx)

    def drop(self, tx: Transaction) -> None:
        """Drop the view's tables (with their rows)."""
        for table in reversed(self.tables):
            table.drop(tx)

    def process(self, tx: Transaction, notification_id: int, domain_event: Any) -> None:
        """Apply one event to the view's rows."""
        raise NotImplementedError

    def process_batch(self, tx: Transaction, events: Batch) -> None:
        """Apply events in log order; override to batch reads and writes."""
        for notification_id, domain_event in events:
            self.process(tx, notification_id, domain_event)


def json_column(value: Any) -> str:
    """``store.json_text`` (a JSON column's text, ids, times and money inside
    as strings), written by ``orjson``: the same text in a fifth of the time.

    Text with characters beyond ASCII is left to ``json_text``, which escapes
    them; only floats below 1e-4 come out otherwise (``0.00001`` for
    ``1e-05``), the same numbers when read.
    """
    try:
        text = orjson.dumps(value, default=str, option=_JSON_COLUMN).decode()
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, say
        return json_text(value)
    return text if text.isascii() else json_text(value)


_JSON_COLUMN = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_NON_STR_KEYS
)


class BatchRows:
    """The rows of one view table that a batch touches, kept in memory.

    One query loads them and one batched write stores them, instead of a
    read and a write per event; several events on one row become one write.
    ``kept``: the rows kept from the batches before (``Projection.kept_rows``),
    which need not be read again; the rows of this batch join them.
    """

    def __init__(
        self, tx: Transaction, table: Table, kept: dict[str, Row] | None = None
    ):
        self.tx = tx
        self.table = table
        self.key = table.key[0]
        self.rows: dict[str, Row] = {} if kept is None else kept
        self._dirty: dict[str, None] = {}  # insertion-ordered set
        self._new: set[str] = set()  # added by this batch, stored by none before

    def load(self, keys: Iterable[str]) -> None:
        """Read the stored rows of ``keys`` not already in memory."""
        wanted = [key for key in set(keys) if key not in self.rows]
        if not wanted:
            return
        for row in self.tx.select_in(self.table.name, self.key, wanted):
            self.rows[row[self.key]] = row

    def get(self, key: str) -> Row | None:
        return self.rows.get(key)

    def add(self, row: Row) -> None:
        """A row that this batch creates (its key new to the table)."""
        key = row[self.key]
        self.rows.pop(key, None)  # most recently used last
        self.rows[key] = row
        self._dirty[key] = None
        self._new.add(key)

    def changed(self, row: Row) -> None:
        key = row[self.key]
        self.rows[key] = self.rows.pop(key, row)  # most recently used last
        self._dirty[key] = None

    def flush(self) -> None:
        """Store the rows added and changed: the new ones straight in."""
        new = [self.table.values(self.rows[k]) for k in self._dirty if k in self._new]
        changed = [
            self.table.values(self.rows[k]) for k in self._dirty if k not in self._new
        ]
        if new and self.tx.backend == "postgres" and len(new) >= COPY_MIN_ROWS:
            try:
                # COPY into the table: a merge copies into a staging table and
                # inserts from there, checking each key for a conflict.
                with self.tx.savepoint():
                    self.tx.copy_rows(self.table.name, self.table.column_names, new)
                new = []
            except self.tx.unique_violation:
                pass  # a key was there after all: merged below
        self.table.merge(self.tx, new + changed)
        self._dirty.clear()
        self._new.clear()


class ProjectionRunner:
    """Keeps one projection up to date with an application's notification log."""

    def __init__(
        self, app: Application[Any], projection: Projection, views: ViewDatabase
    ):
        if not projection.name or not projection.topics:
            raise ValueError("a projection needs a name and the topics it reads")
        self.app = app
        self.projection = projection
        self.views = views
        # Re-entrant: rebuild() holds it while it catches up.
        self.lock = threading.RLock()
        self.topic_set = frozenset(projection.topics)
        self._ready = False
        self._seen = 0  # the stored position when this runner last looked
        # Notifications up to here hold nothing beyond _seen for this view.
        # Kept in memory only: the stored position stays the id of the last
        # event applied, and idle polls need not rescan irrelevant events.
        self._scanned = 0
        # The stored position when the rows the projection keeps were left
        # by our last batch; None: nothing kept can be trusted.
        self._kept_at: int | None = None

    @property
    def name(self) -> str:
        return self.projection.name

    def setup(self) -> None:
        """Create the tracking table, the view's tables and its tracking row."""
        if self._ready:
            return
        with self.views.transaction() as tx:
            tx.lock(SETUP_LOCK)
            TRACKING.create(tx)
            if tx.fetchone(POSITION_SQL, (self.name,)) is None:
                # No tracking row, so no rows of this version: whatever an
                # older version left in tables of the same name must go.
                self._start_again(tx)
        self._ready = True

    def position(self) -> int:
        """The notification id of the last event applied to the view."""
        self.setup()
        with self.views.read() as tx:
            row = tx.fetchone(POSITION_SQL, (self.name,))
        return int(row["position"]) if row else 0

    def catch_up(self, batch: int = 1000) -> int:
        """Apply the events recorded since the position; returns how many."""
        return catch_up_together(self.app, [self], batch)

    def status(self) -> dict[str, Any]:
        """Position, the log's last notification id and the lag behind it.

        ``lag`` counts notification ids between the position and the end of
        the log, and is 0 when none of them concerns this view.
        """
        position = self.position()
        last = self.app.recorder.max_notification_id() or 0
        waiting = position < last and bool(
            self.app.recorder.select_notifications(
                start=position,
                limit=1,
                stop=last,
                topics=list(self.projection.topics),
                inclusive_of_start=False,
            )
        )
        return {
            "projection": self.name,
            "position": position,
            "max_notification_id": last,
            "lag": last - position if waiting else 0,
            "up_to_date": not waiting,
        }

    def rebuild(self, batch: int = 1000) -> int:
        """Drop the view's tables, recreate them and catch up from zero."""
        with self.lock:
            self.reset()
            return self.catch_up(batch)

    def reset(self) -> None:
        """Drop the view's tables and recreate them empty, at position 0."""
        with self.lock:
            with self.views.transaction() as tx:
                tx.lock(SETUP_LOCK)
                TRACKING.create(tx)
                # A runner elsewhere that is applying a batch finishes first.
                tx.fetchone(POSITION_SQL + tx.for_update, (self.name,))
                self._start_again(tx)
            self._ready = True
            self._seen = self._scanned = 0
            self._forget_rows()

    def _forget_rows(self) -> None:
        self.projection.forget_rows()
        self._kept_at = None

    def _start_again(self, tx: Transaction) -> None:
        self.projection.forget_rows()
        self.projection.drop(tx)
        self.projection.create(tx)
        tx.execute(TRACKING.upsert_sql, (self.name, 0))

    def run_forever(self, stop: threading.Event, interval: float = 0.2) -> None:
        """Catch up every ``interval`` seconds until ``stop`` is set."""
        poll(self.catch_up, stop, interval, self.name)

    # --- used by catch_up_together ---------------------------------------------

    def _apply(self, events: Batch) -> int | None:
        """Apply prefetched events beyond the locked position.

        Returns how many were applied, or None when the position went back
        (the view was rebuilt meanwhile) so the prefetch must be read again.
        """
        try:
            with self.views.transaction() as tx:
                row = tx.fetchone(POSITION_SQL + tx.for_update, (self.name,))
                locked = int(row["position"]) if row else 0
                if locked != self._kept_at:
                    # Another runner applied a batch since our last one (or
                    # none of ours is known): the rows kept may be stale.
                    self.projection.forget_rows()
                if row is None:
                    # The tracking row was deleted by hand: the rows cannot be
                    # trusted, start the view again as setup() would.
                    self._start_again(tx)
                    seen, todo = 0, None
                elif locked < self._seen:
                    seen, todo = locked, None
                else:
                    # Another runner may have applied part of the prefetch.
                    todo = [e for e in events if e[0] > locked]
                    seen = locked
                    if todo:
                        self.projection.process_batch(tx, todo)
                        seen = todo[-1][0]
                        tx.execute(
                            "UPDATE view_tracking SET position = ?"
                            " WHERE projection = ?",
                            (seen, self.name),
                        )
        except BaseException:
            # The rows kept may hold changes that were rolled back.
            self._forget_rows()
            raise
        # Only after the commit: a failed commit must not move our idea of it.
        self._seen = seen
        self._kept_at = seen
        self.projection.forget_rows(keep=KEPT_ROWS)
        if todo is None:
            self._scanned = 0
            return None
        return len(todo)


def catch_up_together(
    app: Application[Any], runners: Sequence[ProjectionRunner], batch: int = 1000
) -> int:
    """Catch up several projections of one application, reading the log once.

    Notifications are selected and decoded once for every runner that needs
    them; each projection still applies its share in its own transaction with
    its own tracking position. Returns the number of events applied.
    """
    ordered = sorted(runners, key=lambda r: r.name)  # one lock order: no deadlock
    with ExitStack() as stack:
        for runner in ordered:
            stack.enter_context(runner.lock)
        for runner in ordered:
            runner.setup()
        applied = 0
        while True:
            # Read the end first: every id up to it is committed (writers of the
            # event store serialise), so a select up to it misses nothing.
            last = app.recorder.max_notification_id() or 0
            positions = _positions(ordered)
            starts: dict[ProjectionRunner, int] = {}
            for runner in ordered:
                position = positions.get(runner.name, 0)
                if position < runner._seen:
                    runner._scanned = 0  # rebuilt elsewhere: rescan from there
                runner._seen = position
                start = max(position, runner._scanned)
                if start < last:
                    starts[runner] = start
            if not starts:
                return applied
            notifications = app.recorder.select_notifications(
                start=min(starts.values()),
                limit=batch,
                stop=last,
                topics=sorted(set().union(*(r.topic_set for r in starts))),
                inclusive_of_start=False,
            )
            full = len(notifications) == batch
            end = notifications[-1].id if full else last
            decoded: dict[int, Any] = {}
            again = full
            for runner, start in starts.items():
                events = _events(app, notifications, runner, start, decoded)
                # Nothing of this view in the chunk: no need to take its lock.
                done = runner._apply(events) if events else 0
                if done is None:
                    again = True
                    continue
                applied += done
                runner._scanned = end
            if not again:
                return applied


def _events(
    app: Application[Any],
    notifications: Sequence[Notification],
    runner: ProjectionRunner,
    start: int,
    decoded: dict[int, Any],
) -> list[tuple[int, Any]]:
    """The runner's share of the notifications, each decoded once for all."""
    events = []
    topics = runner.topic_set
    for notification in notifications:
        if notification.id > start and notification.topic in topics:
            event = decoded.get(notification.id)
            if event is None:
                event = decoded[notification.id] = app.mapper.to_domain_event(
                    notification
                )
            events.append((notification.id, event))
    return events


def _positions(runners: Sequence[ProjectionRunner]) -> dict[str, int]:
    """Stored positions, one unlocked query per view database."""
    positions: dict[str, int] = {}
    by_db: dict[int, list[ProjectionRunner]] = {}
    for runner in runners:
        by_db.setdefault(id(runner.views), []).append(runner)
    for group in by_db.values():
        with group[0].views.read() as tx:
            rows = tx.select_in("view_tracking", "projection", [r.name for r in group])
        positions.update({row["projection"]: int(row["position"]) for row in rows})
    return positions


def poll(
    catch_up: Callable[[], object],
    stop: threading.Event,
    interval: float,
    name: str = "views",
) -> None:
    """Call ``catch_up`` every ``interval`` seconds until ``stop`` is set.

    SQLite has no notifications in the library, so polling is the embedded
    default. An error is logged and tried again: a worker thread that died
    on a passing lock time-out would leave the views silently stale.
    """
    while not stop.is_set():
        try:
            catch_up()
        except Exception:
            logger.exception("catching up %s failed; trying again", name)
            stop.wait(max(interval, 1.0))
            continue
        stop.wait(interval)
