"""Read models of usage batches: batches, their errors, rated and prepaid usage.

Built from the events of ``UsageBatch`` (the ``usage`` application). Loaded
rows go to the rated-usage view (postpaid) or the prepaid-usage view, one row
per record keyed by the record id; a failed batch takes its rows out again,
since a file that fails as a whole (a wrong record count, say) loads nothing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from eventsourcing.application import Application

from application.persistence import Database
from domain.bill_periods import Period
from domain.rating.rated import EXACT
from domain.rerating import RerateRun
from domain.usage_batch import ERROR_CLASSES, UsageBatch
from domain.usage_loading import AllowancesSoFar
from projections import allowances
from projections.allowances import ALLOWANCE_USES
from projections.rerating import (
    CORRECTIONS,
    RERATE_RUNS,
    apply_rerating,
    rerate_run,
    rerate_runs,
)
from projections.runner import (
    Batch,
    BatchRows,
    Projection,
    ProjectionRunner,
    catch_up_together,
    poll,
    topics_of,
)
from projections.store import (
    Row,
    Rows,
    Table,
    Transaction,
    ViewDatabase,
    json_text,
    paused_gc,
    utc_text,
)

USAGE_COLUMNS = (
    ("record_id", "TEXT NOT NULL"),
    ("batch_id", "TEXT NOT NULL"),
    ("record_index", "BIGINT NOT NULL"),
    ("subscription_id", "TEXT NOT NULL"),
    ("account_id", "TEXT NOT NULL"),
    ("msisdn", "TEXT"),
    ("imsi", "TEXT"),
    ("usage_class", "TEXT NOT NULL"),
    ("start_time", "TEXT NOT NULL"),
    ("duration_seconds", "BIGINT"),
    ("volume_bytes", "BIGINT"),
    ("units", "BIGINT"),
    ("direction", "TEXT NOT NULL"),
    ("called_number", "TEXT"),
    ("mcc", "TEXT"),
    ("mnc", "TEXT"),
    ("roaming", "INTEGER"),
    ("charge", "TEXT"),
    ("discount", "TEXT"),
    ("currency", "TEXT"),
    ("breakdown", "TEXT"),  # JSON: how offline rating priced it
    ("position", "BIGINT NOT NULL"),
)
# A rerate rewrites the charge, discount and breakdown of its records, none
# of them indexed: with half of each page left free, PostgreSQL keeps the new
# versions beside the old (HOT updates), with no new entries in the three
# indexes; that halved the server's work of applying a rerate's corrections.
USAGE_FILLFACTOR = 50
RATED_USAGE = Table(
    "view_rated_usage",
    USAGE_COLUMNS,
    key=("record_id",),
    indexes=(("subscription_id", "start_time"), ("batch_id",)),
    exact_types=True,  # see UsageBatchesView._loaded
    fillfactor=USAGE_FILLFACTOR,
)
PREPAID_USAGE = Table(
    "view_prepaid_usage",
    USAGE_COLUMNS,
    key=("record_id",),
    indexes=(("subscription_id", "start_time"), ("batch_id",)),
    exact_types=True,  # see UsageBatchesView._loaded
    fillfactor=USAGE_FILLFACTOR,
)
COUNT_NAMES = (
    "records",
    "loaded_postpaid",
    "loaded_prepaid",
    *(f"rejected_{name}" for name in ERROR_CLASSES),
)
BATCHES = Table(
    "view_usage_batches",
    (
        ("id", "TEXT NOT NULL"),
        ("file_name", "TEXT NOT NULL"),
        ("sha256", "TEXT NOT NULL"),
        ("size", "BIGINT NOT NULL"),
        ("kind", "TEXT NOT NULL"),
        ("directory", "TEXT NOT NULL"),
        ("key_id", "TEXT"),
        ("received_by", "TEXT NOT NULL"),
        ("status", "TEXT NOT NULL"),
        ("file_id", "TEXT"),
        ("source", "TEXT"),
        ("file_created_at", "TEXT"),
        ("declared_count", "BIGINT"),
        *((name, "BIGINT NOT NULL") for name in COUNT_NAMES),
        ("runs", "INTEGER NOT NULL"),
        ("failure_code", "TEXT"),
        ("failure_reason", "TEXT"),
        ("failure_path", "TEXT"),
        ("received_at", "TEXT NOT NULL"),
        ("completed_at", "TEXT"),
        ("updated_at", "TEXT NOT NULL"),
        ("position", "BIGINT NOT NULL"),
    ),
    key=("id",),
    indexes=(("received_at",), ("status",)),
)
ERRORS = Table(
    "view_usage_errors",
    (
        ("batch_id", "TEXT NOT NULL"),
        ("record_index", "BIGINT NOT NULL"),
        ("record_id", "TEXT"),
        ("error_class", "TEXT NOT NULL"),
        ("code", "TEXT NOT NULL"),
        ("message", "TEXT NOT NULL"),
        ("path", "TEXT NOT NULL"),
        ("run", "INTEGER NOT NULL"),
        ("position", "BIGINT NOT NULL"),
    ),
    key=("batch_id", "record_index"),
    indexes=(("batch_id", "error_class"),),
)


class UsageBatchesView(Projection):
    """Batches with their counts, record errors, and the loaded usage."""

    # v2: breakdowns of offline-rated usage; v3: rerating; v4: why a run ran;
    # v5: corrections indexed by record, usage rows with room for rerates
    name = "usage_batches_v5"
    # Not RecordsStaged: the records as the file had them are half the bytes
    # of a load's events, and nothing here needs them. A chunk is staged and
    # given its outcomes in one save, one outcome a record, so the outcomes
    # of first loads count the records read as the staging did (reading and
    # decoding the staged chunks was ~1.7 s of the server's and the worker's
    # CPU for a million records).
    topics = topics_of(
        UsageBatch.Created,
        UsageBatch.RecordsLoaded,
        UsageBatch.Completed,
        UsageBatch.Failed,
        UsageBatch.Reprocessed,
        RerateRun.Created,
        RerateRun.ChargesCorrected,
        RerateRun.Completed,
        RerateRun.Interrupted,
    )
    tables = (
        BATCHES,
        ERRORS,
        RATED_USAGE,
        PREPAID_USAGE,
        RERATE_RUNS,
        CORRECTIONS,
        ALLOWANCE_USES,
    )

    def process(self, tx: Transaction, notification_id: int, domain_event: Any) -> None:
        self.process_batch(tx, [(notification_id, domain_event)])

    def process_batch(self, tx: Transaction, events: Batch) -> None:
        batches = BatchRows(tx, BATCHES)
        batches.load({str(e.originator_id) for _, e in events})
        for position, event in events:
            batch_id = str(event.originator_id)
            at = utc_text(event.timestamp)
            if isinstance(
                event,
                RerateRun.Created
                | RerateRun.ChargesCorrected
                | RerateRun.Completed
                | RerateRun.Interrupted,
            ):
                batches.flush()  # corrections apply after the loads before them
                apply_rerating(tx, event, at, position)
                continue
            if isinstance(event, UsageBatch.Created):
                batches.add(_new_batch(batch_id, event, at, position))
                continue
            row = batches.get(batch_id)
            if row is None:
                continue
            row.update(updated_at=at, position=position)
            batches.changed(row)
            if isinstance(event, UsageBatch.RecordsLoaded):
                if not event.run:  # a chunk's first load, saved with its staging
                    row["status"] = "loading"
                    row["records"] += len(event.loaded) + len(event.rejected)
                self._loaded(tx, batch_id, event, position, row)
            elif isinstance(event, UsageBatch.Completed):
                row.update(
                    status="completed",
                    file_id=event.file_id,
                    source=event.source,
                    file_created_at=utc_text(event.created_at),
                    declared_count=event.declared_count,
                    completed_at=at,
                    **event.counts,
                )
            elif isinstance(event, UsageBatch.Failed):
                batches.flush()
                for table in (RATED_USAGE, PREPAID_USAGE, ERRORS, ALLOWANCE_USES):
                    tx.execute(
                        f"DELETE FROM {table.name} WHERE batch_id = ?",  # noqa: S608
                        (batch_id,),
                    )
                row.update(
                    status="failed",
                    failure_code=event.code,
                    failure_reason=event.reason,
                    failure_path=event.path,
                    completed_at=at,
                    **dict.fromkeys(COUNT_NAMES[1:], 0),
                )
                batches.changed(row)
            elif isinstance(event, UsageBatch.Reprocessed):
                row.update(runs=event.run, **event.counts)
        batches.flush()

    @staticmethod
    def _loaded(
        tx: Transaction, batch_id: str, event: Any, position: int, row: Row
    ) -> None:
        postpaid: list[tuple[Any, ...]] = []
        prepaid: list[tuple[Any, ...]] = []
        for r in event.loaded:
            values = (
                r[1],
                batch_id,
                r[0],
                r[2],
                r[3],
                r[5],
                r[6],
                r[7],
                r[8],
                r[9],
                r[10],
                r[11],
                r[12],
                r[13],
                r[14],
                r[15],
                None if r[16] is None else int(r[16]),
                r[17],
                r[18],
                r[19],
                None if len(r) < 21 else _breakdown(r[20]),
                position,
            )
            (prepaid if r[4] == "prepaid" else postpaid).append(values)
        RATED_USAGE.insert_new(tx, postpaid)
        PREPAID_USAGE.insert_new(tx, prepaid)
        allowances.record_uses(
            tx,
            batch_id,
            ((r[1], r[2], r[8], r[20]) for r in event.loaded if len(r) > 20 and r[20]),
            position,
        )
        if event.run:
            # A reprocessing run: its records leave the error list, and those
            # still refused come back with today's reason.
            removed = _delete_errors(tx, batch_id, event.attempted)
            row["rejected_configuration"] -= removed
        ERRORS.write(
            tx,
            [(batch_id, *r[:6], event.run, position) for r in event.rejected],
        )
        row["loaded_postpaid"] += len(postpaid)
        row["loaded_prepaid"] += len(prepaid)
        for r in event.rejected:
            row[f"rejected_{r[2]}"] += 1

    # --- queries --------------------------------------------------------------

    def batches(
        self, status: str | None, kind: str | None, limit: int, offset: int
    ) -> Rows:
        rows = self.db.select(
            BATCHES.name,
            {"status = ?": status, "kind = ?": kind},
            "received_at DESC, id",
            limit,
            offset,
        )
        return [batch_fields(row) for row in rows]

    def batch(self, batch_id: str) -> Row | None:
        with self.db.read() as tx:
            row = tx.fetchone(f"SELECT * FROM {BATCHES.name} WHERE id = ?", (batch_id,))  # noqa: S608
        return None if row is None else batch_fields(row)

    def errors(
        self, batch_id: str, error_class: str | None, limit: int, offset: int
    ) -> Rows:
        rows = self.db.select(
            ERRORS.name,
            {"batch_id = ?": batch_id, "error_class = ?": error_class},
            "record_index",
            limit,
            offset,
        )
        return [
            {key: row[key] for key in ERROR_FIELDS}
            | {"record_index": row["record_index"]}
            for row in rows
        ]

    def usage(
        self,
        payment_type: str,
        subscription_id: str,
        start: str | None,
        end: str | None,
        limit: int,
        offset: int,
    ) -> tuple[Rows, Row]:
        """A page of a subscription's usage in [start, end) and the totals of
        the whole period (records, charge, discount, net)."""
        table = PREPAID_USAGE if payment_type == "prepaid" else RATED_USAGE
        filters = {
            "subscription_id = ?": subscription_id,
            "start_time >= ?": start,
            "start_time < ?": end,
        }
        rows = self.db.select(
            table.name, filters, "start_time, record_id", limit, offset
        )
        where = " AND ".join(c for c, v in filters.items() if v is not None)
        params = [v for v in filters.values() if v is not None]
        with self.db.read() as tx:
            amounts = tx.fetchall(
                f"SELECT charge, discount, currency FROM {table.name} WHERE {where}",  # noqa: S608
                params,
            )
        charge = sum((Decimal(a["charge"] or 0) for a in amounts), Decimal(0))
        discount = sum((Decimal(a["discount"] or 0) for a in amounts), Decimal(0))
        totals = {
            "records": len(amounts),
            "charge": str(charge),
            "discount": str(discount),
            "net": str(charge - discount),
            "currency": amounts[0]["currency"] if amounts else None,
        }
        return [usage_fields(row) for row in rows], totals

    def rerate_run(self, run_id: str, limit: int, offset: int) -> Row | None:
        """A rerating run with a page of its corrections."""
        return rerate_run(self.db, run_id, limit, offset)

    def rerate_runs(self, limit: int, offset: int) -> Rows:
        return rerate_runs(self.db, limit, offset)

    def loaded_ids(self, record_ids: Iterable[str]) -> set[str]:
        """Which of ``record_ids`` any batch has loaded (postpaid or prepaid)."""
        ids = list(record_ids)
        found: set[str] = set()
        if not ids:
            return found
        with self.db.read() as tx:
            for table in (RATED_USAGE, PREPAID_USAGE):
                if tx.backend == "postgres":
                    found |= _loaded_in(tx, table.name, ids)
                else:
                    rows = tx.select_in(table.name, "record_id", ids)
                    found.update(row["record_id"] for row in rows)
        return found


def _breakdown(value: Any) -> str | None:
    """A loaded row's breakdown as the view stores it: the event's JSON text
    as it is (an object, for events the upcaster has not seen, as text)."""
    return value if value is None or isinstance(value, str) else json_text(value)


def _loaded_in(tx: Transaction, table: str, ids: list[str]) -> set[str]:
    """PostgreSQL: which of ``ids`` are in ``table``.

    The ids of a chunk are mostly one run of a file's numbering, and mostly
    new: the rows between the least and the greatest of them (as the
    database orders text) are one index range, usually empty, where looking
    each id up costs a descent of the index for each. When the range holds
    more rows than there are ids (ids spread over the whole key space), each
    is looked up after all, by the index: the planner would otherwise read
    the whole table for a few thousand keys. The ids go as one text
    parameter where none has a comma: psycopg writes a list of thousands of
    strings as an array slowly, in Python.
    """
    joined = ",".join(ids)
    param: str | list[str] = joined
    array = "string_to_array(?, ',')"
    if joined.count(",") != len(ids) - 1:
        param, array = ids, "CAST(? AS TEXT[])"
    rows = tx.fetch_tuples(
        f"WITH ids AS (SELECT unnest({array}) AS id) "  # noqa: S608
        f"SELECT record_id FROM {table} "
        "WHERE record_id >= (SELECT min(id) FROM ids) "
        "AND record_id <= (SELECT max(id) FROM ids) LIMIT ?",
        (param, len(ids) + 1),
    )
    if len(rows) <= len(ids):  # the whole range
        return {row[0] for row in rows}.intersection(ids)
    tx.execute("SELECT set_config('enable_seqscan', 'off', true)")
    rows = tx.fetch_tuples(
        f"SELECT record_id FROM {table} WHERE record_id = ANY({array})",  # noqa: S608
        (param,),
    )
    tx.execute("SELECT set_config('enable_seqscan', 'on', true)")
    return {row[0] for row in rows}


ERROR_FIELDS = ("record_id", "error_class", "code", "message", "path", "run")


def _new_batch(batch_id: str, event: Any, at: str | None, position: int) -> Row:
    return {
        "id": batch_id,
        "file_name": event.file_name,
        "sha256": event.sha256,
        "size": event.size,
        "kind": event.kind,
        "directory": event.directory,
        "key_id": event.key_id,
        "received_by": event.received_by,
        "status": "received",
        "file_id": None,
        "source": None,
        "file_created_at": None,
        "declared_count": None,
        **dict.fromkeys(COUNT_NAMES, 0),
        "runs": 0,
        "failure_code": None,
        "failure_reason": None,
        "failure_path": None,
        "received_at": at,
        "completed_at": None,
        "updated_at": at,
        "position": position,
    }


def _delete_errors(tx: Transaction, batch_id: str, indexes: Sequence[int]) -> int:
    removed = 0
    for start in range(0, len(indexes), 500):
        part = list(indexes[start : start + 500])
        marks = ",".join("?" * len(part))
        where = f"WHERE batch_id = ? AND record_index IN ({marks})"
        found = tx.fetchone(
            f"SELECT COUNT(*) AS n FROM {ERRORS.name} {where} "  # noqa: S608
            "AND error_class = 'configuration'",
            (batch_id, *part),
        )
        removed += int(found["n"]) if found else 0
        tx.execute(f"DELETE FROM {ERRORS.name} {where}", (batch_id, *part))  # noqa: S608
    return removed


def batch_fields(row: Row) -> Row:
    """A batch as the API shows it."""
    fields = {
        key: row[key]
        for key in (
            "id",
            "file_name",
            "sha256",
            "size",
            "kind",
            "directory",
            "key_id",
            "received_by",
            "status",
            "file_id",
            "source",
            "declared_count",
            "runs",
            "received_at",
            "completed_at",
        )
    }
    fields["file_created_at"] = row["file_created_at"]
    fields["counts"] = {name: row[name] for name in COUNT_NAMES}
    fields["errors_by_class"] = {
        name: row[f"rejected_{name}"] for name in ERROR_CLASSES
    }
    fields["failure"] = (
        None
        if row["failure_code"] is None
        else {
            "code": row["failure_code"],
            "reason": row["failure_reason"],
            "path": row["failure_path"],
        }
    )
    return fields


def usage_fields(row: Row) -> Row:
    """One usage record as the API shows it (TMF635 names where they exist)."""
    charge = Decimal(row["charge"]) if row["charge"] is not None else None
    discount = Decimal(row["discount"]) if row["discount"] is not None else None
    # The engine's 34 digits: the default context's 28 would round a charge
    # that does not end (a tariff without rounding).
    net = None if charge is None else EXACT.subtract(charge, discount or Decimal(0))
    return {
        "id": row["record_id"],
        "batch_id": row["batch_id"],
        "subscription_id": row["subscription_id"],
        "account_id": row["account_id"],
        "msisdn": row["msisdn"],
        "imsi": row["imsi"],
        "usage_class": row["usage_class"],
        "usage_date": row["start_time"],
        "duration_seconds": row["duration_seconds"],
        "volume_bytes": row["volume_bytes"],
        "units": row["units"],
        "direction": row["direction"],
        "called_number": row["called_number"],
        "mcc": row["mcc"],
        "mnc": row["mnc"],
        "roaming": None if row["roaming"] is None else bool(row["roaming"]),
        "charge": row["charge"],
        "discount": row["discount"],
        "net": None if net is None else str(net),
        "currency": row["currency"],
        "breakdown": None if row["breakdown"] is None else json.loads(row["breakdown"]),
    }


class UsageViews:
    """The read models of the usage application, behind one facade."""

    def __init__(self, app: Application[Any], database: Database, pool_size: int = 4):
        self.app = app
        self.db = ViewDatabase(database, pool_size)
        self.batches = UsageBatchesView(self.db)
        self.projections: tuple[Projection, ...] = (self.batches,)
        self.runners = {
            p.name: ProjectionRunner(app, p, self.db) for p in self.projections
        }
        for runner in self.runners.values():
            runner.setup()

    def catch_up(self, batch: int = 2) -> int:
        # Batch events hold thousands of records each: a few per read keeps
        # the memory of a catch-up bounded whatever the size of the files.
        # Two: the outcomes of two chunks (four read two chunks' outcomes and
        # their staged records, before the staged records were left unread).
        with paused_gc():
            return catch_up_together(self.app, list(self.runners.values()), batch)

    def loaded_ids(self, record_ids: Iterable[str]) -> set[str]:
        return self.batches.loaded_ids(record_ids)

    def allowance_used(self, subscription_id: str, period: Period) -> AllowancesSoFar:
        return allowances.used(self.db, subscription_id, period)

    def status(self) -> dict[str, dict[str, Any]]:
        return {name: runner.status() for name, runner in self.runners.items()}

    def rebuild(self, batch: int = 2) -> int:
        for runner in self.runners.values():
            runner.reset()
        return catch_up_together(self.app, list(self.runners.values()), batch)

    def run_forever(self, stop: threading.Event, interval: float = 0.5) -> None:
        poll(self.catch_up, stop, interval, "usage views")

    def close(self) -> None:
        self.db.close()
