"""Usage batches and the rated-usage job: from a received file to loaded records.

``UsageBatches`` is the event store of the batches (its own application, so
that big batch events never slow the customer-care log). ``UsageLoader`` is
the command side the daemons, the CLI and the API call:

- ``load_file`` takes one complete file (plain or encrypted ``*.enc``): it
  refuses content already received (the batch id is derived from the sha256),
  stages the records chunk by chunk and, for rated usage, runs the rated-usage
  job on each chunk in the same save — validate, find the subscription that
  held the MSISDN/IMSI at the usage time, enrich, load postpaid or prepaid or
  reject with a class — then takes prepaid usage off the balances and
  completes the batch. A file that cannot be read at all makes a failed batch.
- ``reprocess`` re-runs only the records rejected for configuration errors,
  once the configuration is fixed.

Loads are serialised by a lock held across processes, and the usage views are
caught up before each one, so a record id loaded by one batch is seen by the
next: no record is ever loaded twice. A load interrupted by a crash resumes
from its last staged chunk when the daemon finds the file again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import Transcoder

from application.catalogue import CatalogueService
from application.customer_care import CustomerCare
from application.saves_behind import SavesBehind
from application.transcoding import OrjsonTranscoder
from domain.catalogue.items import Kind
from domain.usage_batch import (
    COMPLETED,
    FAILED,
    BatchNotReprocessable,
    UsageBatch,
    batch_id_for,
)
from domain.usage_loading import (
    Holder,
    HomeNetwork,
    OfflineRatingRules,
    RatedUsageRules,
    identities_of,
)
from domain.usage_records import USUAL_RECORD, Header, check_count, validate_header
from ingest.envelope import MAGIC, EnvelopeError
from ingest.inbound import FileRefused, sha256_of
from ingest.keyring import KeyRing, decrypt_file
from ingest.reader import FileUnreadable, UsageFileReader
from projections.store import paused_gc

logger = logging.getLogger(__name__)

KIND_OF_DIRECTORY = {"rated": "rated", "unrated": "unrated"}
LOADING_LOCK = "monetise.usage.loading"
# Who asks for the allowance-order runs that loads and reprocessing start.
OFFLINE_RATING_JOB = "offline-rating-job"


class UnknownBatch(LookupError):
    """No usage batch with that id (404)."""


@dataclass(frozen=True)
class LoadResult:
    batch_id: UUID
    status: str
    counts: dict[str, int]


class UsageBatches(Application):  # type: ignore[type-arg]
    """The event store of usage batches."""

    name = "usage"

    def construct_transcoder(self) -> Transcoder:
        # Batch events carry thousands of records: orjson, same JSON.
        transcoder = OrjsonTranscoder()
        self.register_transcodings(transcoder)
        return transcoder


class UsageLoader:
    """Loads usage files into batches and runs the rated-usage job on them."""

    def __init__(
        self,
        batches: UsageBatches,
        views: Any,  # projections.usage.UsageViews (the read side)
        care: CustomerCare,
        care_views: Any,  # projections.views.Views
        catalogue: CatalogueService,
        keyring: KeyRing,
        home_network: HomeNetwork,
        # The tariff service (book(), compiled()), built when first needed.
        tariffs: Callable[[], Any],
        chunk_records: int = 5000,
    ):
        self.batches = batches
        self.views = views
        self.care = care
        self.care_views = care_views
        self.catalogue = catalogue
        self.keyring = keyring
        self.home_network = home_network
        self.tariffs = tariffs
        self.chunk_records = chunk_records

    # --- loading --------------------------------------------------------------

    def load_file(
        self,
        path: Path,
        directory: str,
        received_by: str = "system",
        file_name: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> LoadResult:
        """Load one complete usage file; FileRefused when it is refused.

        ``directory`` is the inbound directory it came from (``rated`` or
        ``unrated``), which says its kind; ``progress`` is told the number of
        records done after each chunk.
        """
        kind = KIND_OF_DIRECTORY[directory]
        name = file_name or path.name
        sha256 = sha256_of(path)
        with self.views.db.exclusive(LOADING_LOCK):
            self._catch_up()
            batch = self._batch_for(path, name, sha256, kind, directory, received_by)
            with self._plaintext(path, batch) as plain, paused_gc():
                self._load(batch, plain, progress)
            if batch.status == FAILED:
                assert batch.failure is not None
                raise FileRefused(
                    batch.failure["code"],
                    batch.failure["reason"],
                    {"batch_id": str(batch.id), "sha256": sha256, **batch.failure},
                )
            return LoadResult(batch.id, batch.status, batch.counts())

    def _catch_up(self) -> None:
        # Loads of other batches must be in the views before duplicates are
        # judged, and subscriptions created a moment ago should be found.
        self.views.catch_up()
        self.care_views.runner("subscriber_identities").catch_up()
        self.care_views.runner("accounts").catch_up()  # bill-cycle days

    def _batch_for(
        self,
        path: Path,
        name: str,
        sha256: str,
        kind: str,
        directory: str,
        received_by: str,
    ) -> UsageBatch:
        try:
            batch: UsageBatch = self.batches.repository.get(batch_id_for(sha256))
        except AggregateNotFoundError:
            with path.open("rb") as stream:
                first = stream.read(len(MAGIC))
            key_id = self._key_id(path) if first == MAGIC else None
            batch = UsageBatch(
                file_name=name,
                sha256=sha256,
                size=path.stat().st_size,
                kind=kind,
                directory=directory,
                key_id=key_id,
                received_by=received_by,
            )
            self.batches.save(batch)
            return batch
        if batch.status in (COMPLETED, FAILED):
            raise FileRefused(
                "duplicate",
                f"the same content was already received as {batch.file_name} "
                f"(batch {batch.id}, {batch.status})",
                {"batch_id": str(batch.id), "sha256": sha256},
            )
        return batch  # interrupted: resume it

    def _key_id(self, path: Path) -> str | None:
        from ingest.envelope import read_header

        try:
            with path.open("rb") as stream:
                return read_header(stream).key_id
        except EnvelopeError:
            return None

    @contextlib.contextmanager
    def _plaintext(self, path: Path, batch: UsageBatch) -> Iterator[BinaryIO | None]:
        """The file to read, decrypted beside it first when it is an envelope;
        None when decryption failed (the batch has failed)."""
        if batch.key_id is None and not _is_envelope(path):
            with path.open("rb") as stream:
                yield stream
            return
        plain = path.with_name(f".{path.name}.plain")
        try:
            try:
                with plain.open("wb") as out:
                    for block in decrypt_file(path, self.keyring):
                        out.write(block)
            except EnvelopeError as error:
                self._fail(batch, "decryption_failed", error.reason, "")
                yield None
                return
            with plain.open("rb") as stream:
                yield stream
        finally:
            plain.unlink(missing_ok=True)  # our own copy; the envelope is kept

    def _load(
        self,
        batch: UsageBatch,
        stream: BinaryIO | None,
        progress: Callable[[int], None] | None,
    ) -> None:
        if stream is None:
            return
        reader = UsageFileReader(stream, shape=USUAL_RECORD[batch.kind])
        rules = self._rules(batch.kind)
        holders = _Holders(self.care_views.identities.holders)
        skip = batch.records  # staged before an interruption
        index = 0
        try:
            with SavesBehind(self.batches, "usage-saves") as saves:
                for chunk in reader.chunks(self.chunk_records):
                    start = index
                    index += len(chunk)
                    if index <= skip:
                        continue
                    if start < skip:
                        chunk = chunk[skip - start :]
                        start = skip
                    self._stage(batch, chunk, start, rules, holders, saves)
                    if progress is not None:
                        progress(index)
            header = self._header(reader.header, batch.kind, index)
        except FileUnreadable as error:
            self._fail(batch, error.code, error.reason, error.path)
            return
        except _HeaderRefused as refused:
            self._fail(batch, refused.code, refused.reason, refused.path)
            return
        self.care.charge_prepaid_usage(batch.id, 0, batch.prepaid_debits())
        # Before the batch completes: a load that dies here is resumed, and
        # gives the free units again then.
        self._reallocate(batch, rules, resumed=skip > 0)
        batch.complete(
            file_id=header.file_id,
            source=header.source,
            created_at=header.created_at,
            declared_count=header.record_count,
        )
        self.batches.save(batch)

    def _stage(
        self,
        batch: UsageBatch,
        chunk: list[tuple[object, str]],
        first_index: int,
        rules: RatedUsageRules,
        holders: _Holders,
        saves: SavesBehind,
    ) -> None:
        number = batch.stage([raw for _, raw in chunk])
        # Rated usage is loaded as priced; unrated usage is priced here first
        # (the offline rating job), in the same save as its staging.
        values = [(first_index + i, value) for i, (value, _) in enumerate(chunk)]
        outcome = rules.decide(batch.kind, values, holders.of(identities_of(values)))
        batch.record_outcomes(number, [], outcome.loaded, outcome.rejected)
        saves.save(batch)

    def _rules(self, kind: str) -> RatedUsageRules:
        view = self.catalogue.view()
        classes = {
            code
            for code in view.items.usage_classes
            if view.is_active(Kind.USAGE_CLASSES, code)
        }
        if kind == "rated":
            return RatedUsageRules(classes, self.home_network, self.views.loaded_ids)
        tariffs = self.tariffs()
        return OfflineRatingRules(
            classes,
            self.home_network,
            self.views.loaded_ids,
            tariffs.book(),
            tariffs.compiled,
            allowance_used=self.views.allowance_used,
            bill_cycle_day=self._bill_cycle_day,
        )

    def _reallocate(
        self, batch: UsageBatch, rules: RatedUsageRules, resumed: bool = False
    ) -> None:
        """Free units in time order: when the batch brought usage earlier
        than usage that took free units before it, price those periods again
        (see :mod:`application.reallocation`). A resumed load does not know
        what its first life priced out of order: every period it touched is
        looked at."""
        if not isinstance(rules, OfflineRatingRules):
            return
        from application.reallocation import periods_of, reallocate

        since = dict(rules.reallocations)
        if resumed:
            for key, start in periods_of(self, batch.id, rules.cycle_day).items():
                since[key] = min(start, since.get(key, start))
        reallocate(self, batch.id, since, OFFLINE_RATING_JOB)

    def _bill_cycle_day(self, account_id: str) -> int:
        account = self.care_views.accounts.get(account_id) or {}
        return int(account.get("bill_cycle_day") or 1)

    def _header(self, raw: object, kind: str, count: int) -> Header:
        checked = validate_header(raw, kind)
        if isinstance(checked, list):
            first = checked[0]
            raise _HeaderRefused(
                first.code,
                "the header is invalid: "
                + "; ".join(f"{e.path}: {e.message}" for e in checked),
                first.path,
            )
        mismatch = check_count(checked, count)
        if mismatch is not None:
            raise _HeaderRefused(mismatch.code, mismatch.message, mismatch.path)
        return checked

    def _fail(self, batch: UsageBatch, code: str, reason: str, path: str) -> None:
        batch.fail(code, reason, path)
        self.batches.save(batch)

    # --- reprocessing -----------------------------------------------------------

    def reprocess(self, batch_id: UUID, requested_by: str) -> LoadResult:
        """Re-run the records rejected for configuration errors; those now
        loadable are loaded (once), the rest stay rejected with today's reason."""
        with self.views.db.exclusive(LOADING_LOCK):
            self._catch_up()
            batch = self.batch(batch_id)
            run = batch.start_reprocessing()
            rules = self._rules(batch.kind)
            waiting = {c: set(i) for c, i in batch.awaiting_fix.items() if i}
            debits: dict[str, tuple[Decimal, int]] = {}
            for staged in self.batches.events.get(batch.id):
                if not isinstance(staged, UsageBatch.RecordsStaged):
                    continue
                indexes = waiting.get(staged.chunk)
                if not indexes:
                    continue
                values = _values(staged, indexes)
                holders = self.care_views.identities.holders(identities_of(values))
                outcome = rules.decide(batch.kind, values, holders)
                batch.record_outcomes(
                    staged.chunk,
                    sorted(indexes),
                    outcome.loaded,
                    outcome.rejected,
                    run=run,
                )
                for row in outcome.loaded:
                    if row[4] == "prepaid":
                        net = Decimal(row[17] or "0") - Decimal(row[18] or "0")
                        amount, count = debits.get(row[2], (Decimal(0), 0))
                        debits[row[2]] = (amount + net, count + 1)
                self.batches.save(batch)
            self.care.charge_prepaid_usage(batch.id, run, debits)
            self._reallocate(batch, rules)
            batch.finish_reprocessing(run, requested_by)
            self.batches.save(batch)
            return LoadResult(batch.id, batch.status, batch.counts())

    # --- reading the write model ---------------------------------------------

    def batch(self, batch_id: UUID) -> UsageBatch:
        try:
            batch: UsageBatch = self.batches.repository.get(batch_id)
        except AggregateNotFoundError:
            raise UnknownBatch(f"no usage batch {batch_id}") from None
        return batch


class _Holders:
    """Who held each number, read from the view once per load.

    A number is looked up when a chunk first refers to it and then kept for
    the rest of the load, as the file found it; a number nobody held is
    looked up again by each chunk that refers to it, so that a subscription
    set up while a long file loads is found by the records after it.
    """

    def __init__(
        self, lookup: Callable[[Iterable[str]], Mapping[str, Sequence[Holder]]]
    ):
        self._lookup = lookup
        self._known: dict[str, Sequence[Holder]] = {}

    def of(self, identities: set[str]) -> Mapping[str, Sequence[Holder]]:
        """The holders of (at least) ``identities``: ``msisdn:…``/``imsi:…``."""
        wanted = identities - self._known.keys()
        if wanted:
            self._known.update(self._lookup(wanted))
        return self._known


class _HeaderRefused(Exception):
    def __init__(self, code: str, reason: str, path: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.path = path


def _is_envelope(path: Path) -> bool:
    with path.open("rb") as stream:
        return stream.read(len(MAGIC)) == MAGIC or path.suffix == ".enc"


def _values(staged: Any, indexes: set[int]) -> list[tuple[int, object]]:
    import json

    first = staged.first_index
    return [
        (first + offset, json.loads(raw))
        for offset, raw in enumerate(staged.records)
        if first + offset in indexes
    ]


__all__ = [
    "BatchNotReprocessable",
    "LoadResult",
    "UnknownBatch",
    "UsageBatches",
    "UsageLoader",
]
