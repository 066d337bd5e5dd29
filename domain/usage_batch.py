"""The UsageBatch aggregate: everything that happened to one received usage file.

One batch per file, its id derived from the file's sha256, so the same content
arriving twice collides with the first batch instead of loading again. Its
stream tells an auditor the whole story: what was received, the records as
they were in the file (staged in chunks, many records per event, because one
event per record cannot reach the loading rate operators need), each record's
outcome — loaded as postpaid, loaded as prepaid, or rejected with a class,
code, message and field — and the counts at completion. Reprocessing after a
configuration fix appends further outcomes for the records it re-ran.

Loaded rows are lists in the order of :data:`LOADED_COLUMNS` and rejections in
the order of :data:`REJECTED_COLUMNS`: compact in the event store, and what
the rated-usage and prepaid-usage views are built from.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

_NAMESPACE: Final = uuid5(NAMESPACE_URL, "monetise:usage-batch")

RECEIVED, STAGED, LOADING, COMPLETED, FAILED = (
    "received",
    "staged",
    "loading",
    "completed",
    "failed",
)

LOADED_COLUMNS: Final = (
    "record_index",
    "record_id",
    "subscription_id",
    "account_id",
    "payment_type",
    "msisdn",
    "imsi",
    "usage_class",
    "start_time",  # RFC 3339 in UTC
    "duration_seconds",
    "volume_bytes",
    "units",
    "direction",
    "called_number",
    "mcc",
    "mnc",
    "roaming",
    "charge",  # decimal strings: the price before discount
    "discount",
    "currency",
    # offline rating: how the charge came about, as JSON text (Rated.as_json:
    # what the views store, written once); else None
    "breakdown",
)
REJECTED_COLUMNS: Final = (
    "record_index",
    "record_id",
    "error_class",  # schema | configuration | duplicate
    "code",
    "message",
    "path",
)
ERROR_CLASSES: Final = ("schema", "configuration", "duplicate")
PAYMENT_COLUMN: Final = LOADED_COLUMNS.index("payment_type")
BREAKDOWN_COLUMN: Final = LOADED_COLUMNS.index("breakdown")


class BatchNotReprocessable(Exception):
    """The batch has nothing that reprocessing could change (409)."""


def batch_id_for(sha256: str) -> UUID:
    """The id of the batch of a file with this content."""
    return uuid5(_NAMESPACE, sha256.lower())


class UsageBatch(Aggregate):
    """One received usage file: rated or unrated."""

    TOPIC = "monetise.usage_batch:UsageBatch"
    class_version = 1

    class Created(Aggregate.Created):
        """The file was received (named so because the library requires it)."""

        TOPIC = "monetise.usage_batch:UsageBatch.Created"
        class_version = 1
        file_name: str
        sha256: str
        size: int
        kind: str
        directory: str
        key_id: str | None
        received_by: str

    class RecordsStaged(Aggregate.Event):
        """A chunk of records, exactly as the file had them (JSON text each)."""

        TOPIC = "monetise.usage_batch:UsageBatch.RecordsStaged"
        class_version = 1
        chunk: int
        first_index: int
        records: list[str]

    class RecordsLoaded(Aggregate.Event):
        """The outcome of the records of a chunk: loaded rows and rejections.

        ``run`` is 0 for the first load and the reprocessing run number after;
        ``attempted`` lists the record indexes a reprocessing run re-ran (the
        first load attempts every record of the chunk).
        """

        TOPIC = "monetise.usage_batch:UsageBatch.RecordsLoaded"
        class_version = 2  # v2: breakdowns as JSON text, not objects
        chunk: int
        run: int
        attempted: list[int]
        loaded: list[list[Any]]
        rejected: list[list[Any]]
        prepaid_totals: dict[str, list[str]]  # subscription id → [net, records]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Breakdowns were objects: now the compact JSON text of the same
            object (what the views stored of them all along)."""
            for row in state["loaded"]:
                if len(row) > BREAKDOWN_COLUMN and isinstance(
                    row[BREAKDOWN_COLUMN], dict
                ):
                    row[BREAKDOWN_COLUMN] = json.dumps(
                        row[BREAKDOWN_COLUMN], separators=(",", ":")
                    )

    class Completed(Aggregate.Event):
        """Every record has an outcome (or, unrated, is staged for rating)."""

        TOPIC = "monetise.usage_batch:UsageBatch.Completed"
        class_version = 1
        file_id: str
        source: str
        created_at: datetime
        declared_count: int
        counts: dict[str, int]

    class Failed(Aggregate.Event):
        """The file could not be read at all; nothing of it stays loaded."""

        TOPIC = "monetise.usage_batch:UsageBatch.Failed"
        class_version = 1
        code: str
        reason: str
        path: str

    class Reprocessed(Aggregate.Event):
        """A reprocessing run re-ran the records rejected for configuration."""

        TOPIC = "monetise.usage_batch:UsageBatch.Reprocessed"
        class_version = 1
        run: int
        requested_by: str
        counts: dict[str, int]

    @staticmethod
    def create_id(sha256: str, **_: Any) -> UUID:
        return batch_id_for(sha256)

    @event(Created)
    def __init__(
        self,
        file_name: str,
        sha256: str,
        size: int,
        kind: str,
        directory: str,
        key_id: str | None,
        received_by: str,
    ) -> None:
        self.file_name = file_name
        self.sha256 = sha256
        self.size = size
        self.kind = kind
        self.directory = directory
        self.key_id = key_id
        self.status = RECEIVED
        self.chunks = 0
        self.records = 0
        self.loaded = {"postpaid": 0, "prepaid": 0}
        self.rejected = dict.fromkeys(ERROR_CLASSES, 0)
        # chunk → indexes rejected for configuration: what reprocessing re-runs
        self.awaiting_fix: dict[int, list[int]] = {}
        self.prepaid_totals: dict[str, list[Decimal | int]] = {}
        self.runs = 0
        self.failure: dict[str, str] | None = None
        self.header: dict[str, Any] | None = None

    # --- commands -----------------------------------------------------------

    def stage(self, records: Sequence[str]) -> int:
        """Stage the next chunk of records; returns its chunk number."""
        chunk = self.chunks
        self._stage(chunk=chunk, first_index=self.records, records=list(records))
        return chunk

    def record_outcomes(
        self,
        chunk: int,
        attempted: Sequence[int],
        loaded: list[list[Any]],
        rejected: list[list[Any]],
        run: int = 0,
    ) -> None:
        totals: dict[str, list[str]] = {}
        net: dict[str, Decimal] = {}
        counted: dict[str, int] = {}
        for row in loaded:
            if row[PAYMENT_COLUMN] == "prepaid":
                subscription = row[2]
                amount = Decimal(row[17] or "0") - Decimal(row[18] or "0")
                net[subscription] = net.get(subscription, Decimal(0)) + amount
                counted[subscription] = counted.get(subscription, 0) + 1
        for subscription, amount in net.items():
            totals[subscription] = [str(amount), str(counted[subscription])]
        self._record_outcomes(
            chunk=chunk,
            run=run,
            attempted=list(attempted),
            loaded=loaded,
            rejected=rejected,
            prepaid_totals=totals,
        )

    def complete(
        self,
        file_id: str,
        source: str,
        created_at: datetime,
        declared_count: int,
    ) -> None:
        self._complete(
            file_id=file_id,
            source=source,
            created_at=created_at,
            declared_count=declared_count,
            counts=self.counts(),
        )

    def fail(self, code: str, reason: str, path: str = "") -> None:
        self._fail(code=code, reason=reason, path=path)

    def start_reprocessing(self) -> int:
        """The number of the next reprocessing run, if there is anything to re-run."""
        if self.status != COMPLETED:
            raise BatchNotReprocessable(
                f"batch {self.id} is {self.status}; only completed batches "
                "can be reprocessed"
            )
        if not any(self.awaiting_fix.values()):
            raise BatchNotReprocessable(
                f"batch {self.id} has no records rejected for configuration errors"
            )
        return self.runs + 1

    def finish_reprocessing(self, run: int, requested_by: str) -> None:
        self._reprocessed(run=run, requested_by=requested_by, counts=self.counts())

    # --- queries -------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        return {
            "records": self.records,
            "loaded_postpaid": self.loaded["postpaid"],
            "loaded_prepaid": self.loaded["prepaid"],
            **{f"rejected_{name}": self.rejected[name] for name in ERROR_CLASSES},
        }

    def prepaid_debits(self) -> dict[str, tuple[Decimal, int]]:
        """Net prepaid usage per subscription id loaded so far (all runs)."""
        return {
            key: (Decimal(value[0]), int(value[1]))
            for key, value in self.prepaid_totals.items()
        }

    # --- events --------------------------------------------------------------

    @event(RecordsStaged)
    def _stage(self, chunk: int, first_index: int, records: list[str]) -> None:
        self.status = LOADING
        self.chunks = chunk + 1
        self.records = first_index + len(records)

    @event(RecordsLoaded)
    def _record_outcomes(
        self,
        chunk: int,
        run: int,
        attempted: list[int],
        loaded: list[list[Any]],
        rejected: list[list[Any]],
        prepaid_totals: Mapping[str, list[str]],
    ) -> None:
        if run:
            # The re-run records leave the configuration errors; what is still
            # rejected comes back below.
            again = set(attempted)
            waiting = self.awaiting_fix.get(chunk, [])
            self.awaiting_fix[chunk] = [i for i in waiting if i not in again]
            self.rejected["configuration"] -= len(again & set(waiting))
        for row in loaded:
            self.loaded[row[PAYMENT_COLUMN]] += 1
        for row in rejected:
            self.rejected[row[2]] += 1
            if row[2] == "configuration":
                self.awaiting_fix.setdefault(chunk, []).append(row[0])
        for subscription, (amount, records) in prepaid_totals.items():
            before = self.prepaid_totals.get(subscription, [Decimal(0), 0])
            self.prepaid_totals[subscription] = [
                Decimal(before[0]) + Decimal(amount),
                int(before[1]) + int(records),
            ]

    @event(Completed)
    def _complete(
        self,
        file_id: str,
        source: str,
        created_at: datetime,
        declared_count: int,
        counts: dict[str, int],
    ) -> None:
        self.status = COMPLETED
        self.header = {
            "file_id": file_id,
            "source": source,
            "created_at": created_at,
            "record_count": declared_count,
        }

    @event(Failed)
    def _fail(self, code: str, reason: str, path: str) -> None:
        self.status = FAILED
        self.failure = {"code": code, "reason": reason, "path": path}

    @event(Reprocessed)
    def _reprocessed(self, run: int, requested_by: str, counts: dict[str, int]) -> None:
        self.runs = run
