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
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.rating import RatingError, Usage, quote
from domain.rerating import RerateRun
from projections.store import utc_text

if TYPE_CHECKING:
    from application.usage import UsageLoader

PAGE = 5000


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
            plans = self._rate_plans()
            done = 0
            for page in self._selected(usage_class, start, end):
                corrections = []
                for row in page:
                    corrected = self._reprice(row, book, tariffs.compiled, plans, run)
                    if corrected is None:
                        continue
                    corrections.append(corrected)
                    if row["payment_type"] == "prepaid":
                        amount, count = deltas.get(
                            row["subscription_id"], (Decimal(0), 0)
                        )
                        deltas[row["subscription_id"]] = (
                            amount + Decimal(corrected[6]),
                            count + 1,
                        )
                run.correct(corrections, len(page))
                loader.batches.save(run)
                done += len(page)
                if progress is not None:
                    progress(done)
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
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of the offline-rated usage of the class in the period, each
        row with its payment type, in record id order (keyset pages)."""
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
                    rows = tx.fetchall(
                        f"SELECT * FROM {table} WHERE {' AND '.join(where)} "  # noqa: S608
                        f"ORDER BY record_id LIMIT {PAGE}",
                        params,
                    )
                if not rows:
                    break
                for row in rows:
                    row["payment_type"] = payment
                yield rows
                after = rows[-1]["record_id"]

    def _rate_plans(self) -> dict[str, str]:
        """Rate plan by subscription id (from the subscriptions view)."""
        with self.loader.care_views.db.read() as tx:
            rows = tx.fetchall("SELECT id, rate_plan FROM view_subscriptions")
        return {row["id"]: row["rate_plan"] for row in rows}

    def _reprice(
        self,
        row: dict[str, Any],
        book: Any,
        compiled: Callable[[Any], Any],
        plans: dict[str, str],
        run: RerateRun,
    ) -> list[Any] | None:
        home = self.loader.home_network
        at = datetime.fromisoformat(row["start_time"])
        try:
            tariff = book.for_rate_plan(plans.get(row["subscription_id"], ""), at)
            rated = quote(
                compiled(tariff),
                Usage(
                    usage_class=row["usage_class"],
                    start=at,
                    duration_seconds=row["duration_seconds"],
                    volume_bytes=row["volume_bytes"],
                    units=row["units"],
                    called_number=row["called_number"],
                    mcc=row["mcc"],
                    mnc=row["mnc"],
                    home_mcc=home.mcc,
                    home_mnc=home.mnc,
                ),
            )
        except RatingError as error:
            run.refuse(row["record_id"], error.code, error.message)
            return None
        old_charge = Decimal(row["charge"] or 0)
        old_discount = Decimal(row["discount"] or 0)
        new_discount = rated.discount or Decimal(0)
        if rated.charge == old_charge and new_discount == old_discount:
            return None
        delta = (rated.charge - new_discount) - (old_charge - old_discount)
        return [
            row["record_id"],
            row["batch_id"],
            row["payment_type"],
            row["subscription_id"],
            row["charge"],
            str(rated.charge),
            str(delta),
            row["discount"],
            None if not rated.discount else str(rated.discount),
            rated.as_dict(),
        ]

    def run(self, run_id: UUID) -> RerateRun:
        run: RerateRun = self.loader.batches.repository.get(run_id)
        return run
