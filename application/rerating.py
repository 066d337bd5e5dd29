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
up once per rate plan, and each new breakdown made the JSON text the views
store once (the event carries the text; the views write it as is). A rerate
of more than a page prices its pages in a pool of processes (one per core)
while this process reads the next pages and saves the corrections in page
order; pricing (``quote`` and the breakdown) is most of the work.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

from application.saves_behind import SavesBehind
from domain.rating.tariff import TariffBook
from domain.repricing import PAGE_COLUMNS, Refusal, Repricing, TariffOf, uses_allowances
from domain.rerating import RerateRun
from projections import allowances
from projections import rerating as rerating_views
from projections.store import utc_text

if TYPE_CHECKING:
    from application.usage import UsageLoader

# Records per page read and per ChargesCorrected event: a correction is about
# 1 kB, and events of a few MB at most are saved and read back smoothly (on
# PostgreSQL, a save's INSERT is one message: psycopg 3.3's pipeline can stall
# on a message that the socket does not take in one or two flushes).
PAGE = 2000
COLUMNS = ", ".join(PAGE_COLUMNS)
ZERO = Decimal(0)
# PostgreSQL, for the rest of a transaction: rows in an index's order only.
INDEX_ORDER_ONLY = (
    "SELECT set_config('enable_seqscan', 'off', true), "
    "set_config('enable_bitmapscan', 'off', true), "
    "set_config('enable_sort', 'off', true)"
)

log = logging.getLogger(__name__)

Page = list[tuple[Any, ...]]
Taken = dict[str, dict[str, int]]


class Rerater:
    """Runs rerates. ``processes``: how many processes price the pages of a
    rerate of more than one page (default: one per core; 1 prices in this
    process); ``page``: records per page and per correction event."""

    def __init__(
        self, loader: UsageLoader, processes: int | None = None, page: int = PAGE
    ):
        self.loader = loader
        self.processes = processes or os.cpu_count() or 1
        self.page = page

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
            self._close_interrupted()
            tariffs = loader.tariffs()
            book = tariffs.book()
            run = RerateRun(
                usage_class=usage_class,
                period_from=start,
                period_to=end,
                requested_by=requested_by,
            )
            home = loader.home_network
            repricing = Repricing(
                usage_class,
                self._rate_plans(),
                TariffOf(book, tariffs.compiled),
                home.mcc,
                home.mnc,
            )
            ledger = uses_allowances(book, usage_class)
            pages = (
                (payment, rows, self._free_units_taken(rows) if ledger else None)
                for payment, rows in self._selected(usage_class, start, end)
            )
            deltas: dict[str, tuple[Decimal, int]] = {}
            done = 0
            with SavesBehind(loader.batches, "rerate-save") as saver:
                for payment, selected, corrections, refused in self._priced(
                    pages, repricing, book
                ):
                    for refusal in refused:
                        run.refuse(*refusal)
                    if payment == "prepaid":
                        for c in corrections:
                            amount, count = deltas.get(c[3], (ZERO, 0))
                            deltas[c[3]] = (amount + Decimal(c[6]), count + 1)
                    run.correct(corrections, selected)
                    saver.save(run)
                    done += selected
                    if progress is not None:
                        progress(done)
            # Every page's corrections are stored: the balances may take them.
            loader.care.charge_prepaid_usage(run.id, 0, deltas)
            run.complete()
            loader.batches.save(run)
        return {"id": str(run.id), "usage_class": usage_class, **self.counts(run)}

    def close_interrupted(self) -> list[str]:
        """Close the runs whose process died before they completed: their
        prepaid deltas are charged and they are recorded as interrupted.
        Returns their ids. Every rerate does this first."""
        with self.loader.views.db.exclusive("monetise.usage.loading"):
            self.loader._catch_up()
            return self._close_interrupted()

    def _close_interrupted(self) -> list[str]:
        """(Holding the loading lock, with the views caught up: a run still
        running now is not running anywhere.)"""
        loader = self.loader
        with loader.views.db.read() as tx:
            running = rerating_views.running_runs(tx)
        for run_id in running:
            with loader.views.db.read() as tx:
                deltas = rerating_views.prepaid_deltas(tx, run_id)
            # The same key as the run would have used: charged once, even if
            # it got as far as charging before it died.
            charged = loader.care.charge_prepaid_usage(UUID(run_id), 0, deltas)
            run = self.run(UUID(run_id))
            run.interrupt(prepaid_charged=charged)
            loader.batches.save(run)
            log.warning(
                "rerate run %s had stopped: closed as interrupted, %d prepaid "
                "balances took its corrections",
                run_id,
                charged,
            )
        if running:
            loader._catch_up()
        return running

    def _priced(
        self,
        pages: Iterator[tuple[str, Page, Taken | None]],
        repricing: Repricing,
        book: TariffBook,
    ) -> Iterator[tuple[str, int, list[list[Any]], list[Refusal]]]:
        """(payment type, records, corrections, refusals) of each page, in
        page order. The first page is priced here; when there are more and
        more than one process may price, the rest go to a pool that prices
        a few pages ahead of the saves."""
        first = next(pages, None)
        if first is None:
            return
        second = next(pages, None)
        payment, rows, taken = first
        yield payment, len(rows), *repricing.page(rows, payment, taken)
        if second is None:
            return
        if self.processes <= 1:
            for payment, rows, taken in itertools.chain([second], pages):
                yield payment, len(rows), *repricing.page(rows, payment, taken)
            return
        with pricing_pool(self.processes, repricing, book) as pool:
            ahead: deque[_Ahead] = deque()
            for payment, rows, taken in itertools.chain([second], pages):
                ahead.append(_Ahead.submit(pool, payment, rows, taken))
                if len(ahead) > 2 * self.processes:
                    yield ahead.popleft().result(repricing)
            while ahead:
                yield ahead.popleft().result(repricing)

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
                    if tx.backend == "postgres":
                        # Pages in key order, along the key's index: on a view
                        # just loaded (no statistics yet) the planner sorted
                        # the whole rest of the table for each page instead
                        # (measured: 160 ms a page against 3 ms).
                        tx.execute(INDEX_ORDER_ONLY)
                    rows = tx.fetch_tuples(
                        f"SELECT {COLUMNS} FROM {table} "  # noqa: S608
                        f"WHERE {' AND '.join(where)} "
                        f"ORDER BY record_id LIMIT {self.page}",
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

    def _free_units_taken(self, page: Page) -> Taken:
        """Units each record of the page took from each allowance, by record id
        (from the allowance ledger: only records that took any are there)."""
        taken: Taken = {}
        with self.loader.views.db.read() as tx:
            for row in allowances.ledger_rows(tx, [r[0] for r in page]):
                uses = taken.setdefault(row["record_id"], {})
                uses[row["allowance"]] = int(row["units"])
        return taken

    def run(self, run_id: UUID) -> RerateRun:
        run: RerateRun = self.loader.batches.repository.get(run_id)
        return run


class _Ahead(NamedTuple):
    """A page given to the pool of pricing processes."""

    payment: str
    rows: Page
    taken: Taken | None
    future: Future[tuple[list[list[Any]], list[Refusal]]] | None

    @classmethod
    def submit(
        cls, pool: ProcessPoolExecutor, payment: str, rows: Page, taken: Taken | None
    ) -> _Ahead:
        try:
            return cls(payment, rows, taken, pool.submit(_price, rows, payment, taken))
        except BrokenProcessPool:
            return cls(payment, rows, taken, None)

    def result(
        self, repricing: Repricing
    ) -> tuple[str, int, list[list[Any]], list[Refusal]]:
        """The page priced by the pool, or here if the pool is broken (a
        pricing process was killed, or could not start): slower, not lost."""
        payment, rows, taken = self.payment, self.rows, self.taken
        if self.future is None:  # the pool broke before: said already
            priced = repricing.page(rows, payment, taken)
        else:
            try:
                priced = self.future.result()
            except BrokenProcessPool as broken:
                log.warning("rerate: pricing pages in this process (%s)", broken)
                priced = repricing.page(rows, payment, taken)
        return payment, len(rows), *priced


def pricing_pool(
    processes: int, repricing: Repricing, book: TariffBook
) -> ProcessPoolExecutor:
    """The processes that price a rerate's pages, each with its own
    ``repricing`` (made from ``book``), at a lower priority than the rest."""
    return ProcessPoolExecutor(
        processes,
        mp_context=_pricing_context(),
        initializer=_start_pricing,
        initargs=(
            repricing.usage_class,
            dict(repricing.plans),
            book,
            repricing.home_mcc,
            repricing.home_mnc,
        ),
    )


def _pricing_context() -> multiprocessing.context.BaseContext:
    """How pricing processes start: not forked from this process (it may be
    a web server with threads), but from a fork server started once per
    process with this module loaded, so that a rerate does not wait for each
    of its pricing processes to import the platform (spawn, where there is
    no fork server)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


# The repricing of a pricing process, made once by the pool's initializer.
_repricing: Repricing | None = None
# How much less a pricing process is worth to the scheduler than the others.
# A rerate keeps every core busy: at the same priority, the worker applying
# its corrections fell seconds behind (4 s at the end of a million records,
# with the cores half idle while it caught up), and so would the API, the
# workflow worker and the database's other clients. Pricing is the work that
# can wait: it takes what the others leave.
PRICING_NICENESS = 10


def _start_pricing(
    usage_class: str,
    plans: dict[str, str],
    book: TariffBook,
    home_mcc: str | None,
    home_mnc: str | None,
) -> None:
    global _repricing  # one per pricing process
    os.nice(PRICING_NICENESS)
    _repricing = Repricing(usage_class, plans, TariffOf(book), home_mcc, home_mnc)


def _price(
    rows: Page, payment: str, taken: Mapping[str, Mapping[str, int]] | None
) -> tuple[list[list[Any]], list[Refusal]]:
    assert _repricing is not None, "pricing process not started"
    return _repricing.page(rows, payment, taken)
