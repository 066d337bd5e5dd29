"""Offline rerating: price usage of one class again with the tariffs now in force.

It selects the offline-rated usage (the rows with a rating breakdown: usage
the charging system priced is not monetise's to reprice) of the usage class
in the period, prices each record again with the tariff of its
subscription's rate plan in force at the usage time, and records a
``RerateRun`` in the usage application — in the same log as the loads, so the
usage views apply the corrections in order — with old charge, new charge and
delta per changed record. Prepaid balances take the deltas. It holds the
loading lock, so no load or reprocessing runs meanwhile, and it catches the
views up first, so a second identical rerate finds nothing to change.

A rerate may take a million records, so the per-record path is lean: pages
of plain tuples of only the columns pricing needs, the compiled tariff looked
up once per rate plan, and each new breakdown turned into the JSON text the
views store once, here (the event carries the text; the views write it as is).
What remains per record is mostly the engine: ``quote`` and ``as_dict``.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson

from domain.rating import (
    AllowanceState,
    CompiledTariff,
    Rated,
    RatingError,
    Tariff,
    Usage,
    quote,
)
from domain.rating.tariff import TariffBook
from domain.rerating import RerateRun
from projections.store import json_text, utc_text

if TYPE_CHECKING:
    from eventsourcing.application import Application

    from application.usage import UsageLoader

# Records per page read and per ChargesCorrected event: a correction is about
# 1 kB, and events of a few MB at most are saved and read back smoothly (on
# PostgreSQL, a save's INSERT is one message: psycopg 3.3's pipeline can stall
# on a message that the socket does not take in one or two flushes).
PAGE = 2000
# What repricing reads of a usage view row, in this order (not the old
# breakdown: it is most of the row and is not needed).
COLUMNS = (
    "record_id, batch_id, subscription_id, start_time, duration_seconds, "
    "volume_bytes, units, called_number, mcc, mnc, charge, discount"
)
ZERO = Decimal(0)


class Rerater:
    def __init__(self, loader: UsageLoader):
        self.loader = loader

    def rerate(
        self,
        usage_class: str,
        start: datetime | None,
        end: datetime | None,
        requested_by: str,
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """Run a rerate; returns the run's id and counts."""
        loader = self.loader
        with loader.views.db.exclusive("monetise.usage.loading"):
            loader._catch_up()
            tariffs = loader.tariffs()
            book = tariffs.book()
            run = RerateRun(
                usage_class=usage_class,
                period_from=start,
                period_to=end,
                requested_by=requested_by,
            )
            deltas: dict[str, tuple[Decimal, int]] = {}
            tariff_of = _TariffOf(book, tariffs.compiled)
            plans = self._rate_plans()
            done = 0
            with _Saver(loader.batches) as saver:
                for payment, page in self._selected(usage_class, start, end):
                    corrections = self._reprice(
                        page, payment, usage_class, plans, tariff_of, run
                    )
                    if payment == "prepaid":
                        for c in corrections:
                            amount, count = deltas.get(c[3], (ZERO, 0))
                            deltas[c[3]] = (amount + Decimal(c[6]), count + 1)
                    run.correct(corrections, len(page))
                    saver.save(run)
                    done += len(page)
                    if progress is not None:
                        progress(done)
            # Every page's corrections are stored: the balances may take them.
            loader.care.charge_prepaid_usage(run.id, 0, deltas)
            run.complete()
            loader.batches.save(run)
        return {"id": str(run.id), "usage_class": usage_class, **self.counts(run)}

    @staticmethod
    def counts(run: RerateRun) -> dict[str, int]:
        return {
            "selected": run.selected,
            "changed": run.changed,
            "unchanged": run.selected - run.changed - len(run.refused),
            "refused": len(run.refused),
        }

    def _selected(
        self, usage_class: str, start: datetime | None, end: datetime | None
    ) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        """Pages of the offline-rated usage of the class in the period with
        their payment type, in record id order (keyset pages), each row the
        values of :data:`COLUMNS`."""
        db = self.loader.views.db
        for table, payment in (
            ("view_rated_usage", "postpaid"),
            ("view_prepaid_usage", "prepaid"),
        ):
            after = ""
            while True:
                where = ["usage_class = ?", "breakdown IS NOT NULL", "record_id > ?"]
                params: list[Any] = [usage_class, after]
                if start is not None:
                    where.append("start_time >= ?")
                    params.append(utc_text(start))
                if end is not None:
                    where.append("start_time < ?")
                    params.append(utc_text(end))
                with db.read() as tx:
                    rows = tx.fetch_tuples(
                        f"SELECT {COLUMNS} FROM {table} "  # noqa: S608
                        f"WHERE {' AND '.join(where)} "
                        f"ORDER BY record_id LIMIT {PAGE}",
                        params,
                    )
                if not rows:
                    break
                yield payment, rows
                after = rows[-1][0]

    def _rate_plans(self) -> dict[str, str]:
        """Rate plan by subscription id (from the subscriptions view)."""
        with self.loader.care_views.db.read() as tx:
            rows = tx.fetchall("SELECT id, rate_plan FROM view_subscriptions")
        return {row["id"]: row["rate_plan"] for row in rows}

    def _free_units_taken(
        self, page: list[tuple[Any, ...]]
    ) -> dict[str, dict[str, int]]:
        """Units each record of the page took from each allowance, by record id
        (from the allowance ledger: only records that took any are there)."""
        taken: dict[str, dict[str, int]] = {}
        with self.loader.views.db.read() as tx:
            for row in tx.select_in(
                "view_allowance_uses", "record_id", [r[0] for r in page]
            ):
                uses = taken.setdefault(row["record_id"], {})
                uses[row["allowance"]] = int(row["units"])
        return taken

    def _reprice(
        self,
        page: list[tuple[Any, ...]],
        payment: str,
        usage_class: str,
        plans: dict[str, str],
        tariff_of: _TariffOf,
        run: RerateRun,
    ) -> list[list[Any]]:
        """The corrections of the records of a page whose price changed (in
        the order of ``CORRECTION_COLUMNS``); those that cannot be priced are
        refused in ``run``. One loop, names bound locally: it runs per record.
        """
        home = self.loader.home_network
        home_mcc, home_mnc = home.mcc, home.mnc
        parse = datetime.fromisoformat
        corrections: list[list[Any]] = []
        took: dict[str, dict[str, int]] | None = None  # read only if needed
        for (
            record_id,
            batch_id,
            subscription_id,
            start_time,
            duration_seconds,
            volume_bytes,
            units,
            called_number,
            mcc,
            mnc,
            charge,
            discount,
        ) in page:
            at = parse(start_time)
            try:
                tariff = tariff_of(plans.get(subscription_id, ""), at)
                state = None
                if tariff.allowances.get(usage_class):
                    # A rerate keeps the free units each record took (none:
                    # none), so it never hands an allowance out twice.
                    if took is None:
                        took = self._free_units_taken(page)
                    taken = took.get(record_id, {})
                    state = AllowanceState(
                        {a.code: taken.get(a.code, 0) for a in tariff.tariff.allowances}
                    )
                rated = quote(
                    tariff,
                    Usage(
                        usage_class=usage_class,
                        start=at,
                        duration_seconds=duration_seconds,
                        volume_bytes=volume_bytes,
                        units=units,
                        called_number=called_number,
                        mcc=mcc,
                        mnc=mnc,
                        home_mcc=home_mcc,
                        home_mnc=home_mnc,
                    ),
                    state,
                )
            except RatingError as error:
                run.refuse(record_id, error.code, error.message)
                continue
            old_charge = Decimal(charge) if charge else ZERO
            old_discount = Decimal(discount) if discount else ZERO
            new_discount = rated.discount or ZERO
            if rated.charge == old_charge and new_discount == old_discount:
                continue
            delta = (rated.charge - new_discount) - (old_charge - old_discount)
            corrections.append(
                [
                    record_id,
                    batch_id,
                    payment,
                    subscription_id,
                    charge,
                    str(rated.charge),
                    str(delta),
                    discount,
                    None if not rated.discount else str(rated.discount),
                    breakdown_text(rated),
                ]
            )
        return corrections

    def run(self, run_id: UUID) -> RerateRun:
        run: RerateRun = self.loader.batches.repository.get(run_id)
        return run


class _Saver:
    """Saves a run's events page by page in a thread of its own, in order and
    one save at a time, while the next page is priced: a save mostly waits on
    the database (SQLite and psycopg let go of the GIL meanwhile).

    A failed save is raised by the next ``save`` or on leaving the block;
    leaving the block waits for the save under way.
    """

    def __init__(self, app: Application[Any]):
        self.app = app
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="rerate-save")
        self._pending: Future[Any] | None = None

    def save(self, run: RerateRun) -> None:
        events = run.collect_events()
        self.wait()
        if events:
            self._pending = self._thread.submit(self.app.save, *events)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> _Saver:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None:
                self.wait()
            elif self._pending is not None:
                # Already failing: let the save under way end, quietly.
                concurrent.futures.wait([self._pending])
        finally:
            self._thread.shutdown()


class _TariffOf:
    """The compiled tariff of a rate plan in force at a time, for one rerate.

    A rate plan whose tariff has a single version in force since the
    beginning of time (the usual case) is looked up once; any other goes
    through the book for each record (the same answers, and the same errors).
    """

    def __init__(self, book: TariffBook, compiled: Callable[[Tariff], CompiledTariff]):
        self.book = book
        self.compiled = compiled
        self._fixed: dict[str, CompiledTariff | None] = {}

    def __call__(self, rate_plan: str, at: datetime) -> CompiledTariff:
        if rate_plan not in self._fixed:
            self._fixed[rate_plan] = self._single_version(rate_plan)
        fixed = self._fixed[rate_plan]
        if fixed is not None:
            return fixed
        return self.compiled(self.book.for_rate_plan(rate_plan, at))

    def _single_version(self, rate_plan: str) -> CompiledTariff | None:
        code = self.book.rate_plans.get(rate_plan)
        versions = [] if code is None else self.book.versions(code)
        if len(versions) == 1 and versions[0].effective_from is None:
            return self.compiled(versions[0])
        return None


def breakdown_text(rated: Rated) -> str:
    """``rated.as_dict()`` as the JSON text the usage views store: what
    ``json_text`` writes, made by orjson (ten times faster) when the two agree
    — compact separators, ASCII only, nothing but JSON types."""
    breakdown = rated.as_dict()
    try:
        text = orjson.dumps(breakdown).decode()
    except TypeError:  # orjson.JSONEncodeError: e.g. an integer beyond 64 bits
        return json_text(breakdown)
    return text if text.isascii() else json_text(breakdown)
