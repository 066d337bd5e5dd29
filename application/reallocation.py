"""Free units in time order across files: the rated-usage job's allowance-order
runs.

Offline rating prices each file's records in time order, and each takes the
free units that the usage loaded before it left. Files do not always arrive
in time order: a file that brings usage earlier than usage that already took
free units (in an earlier file, or an earlier chunk of the same file) leaves
the units with the wrong records. After such a batch is loaded, the job
prices again, in time order, the usage of each such subscription's bill
period from the earliest of those records on — the records of the batch and
the records that took free units (a record that took none keeps taking none:
earlier usage only leaves less) — and records the changes as a
``RerateRun`` with reason ``allowance_order`` and the batch's id. Bills,
balances and the allowance ledger take the corrections as they take a
rerate's; a rebuild gives the same views.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.bill_periods import Period, period_of
from domain.repricing import (
    REALLOCATION_COLUMNS,
    Reallocation,
    Refusal,
    TariffOf,
    allowance_classes,
)
from domain.rerating import ALLOWANCE_CLASSES, ALLOWANCE_ORDER, RerateRun

if TYPE_CHECKING:
    from application.usage import UsageLoader

Row = tuple[Any, ...]
PAGE = 2000  # corrections per event, as a rerate's
COLUMNS = ", ".join(REALLOCATION_COLUMNS)
ZERO = Decimal(0)


def reallocate(
    loader: UsageLoader,
    batch_id: UUID,
    since: Mapping[tuple[str, Period], str],
    requested_by: str,
) -> RerateRun | None:
    """Price again in time order the usage of each (subscription, bill
    period) from the time given (UTC text) on; returns the run recorded, or
    None when nothing changed. The caller holds the loading lock."""
    if not since:
        return None
    loader.views.catch_up()  # the batch's rows and free units, in the views
    tariffs = loader.tariffs()
    book = tariffs.book()
    classes = sorted(allowance_classes(book))
    if not classes:
        return None
    tariff_of = TariffOf(book, tariffs.compiled)
    home = loader.home_network
    corrections: list[list[Any]] = []
    refused: list[Refusal] = []
    selected = 0
    plans = _rate_plans(loader, {subscription_id for subscription_id, _ in since})
    for (subscription_id, period), start in sorted(since.items()):
        rows, used, taken = _usage_from(
            loader, str(batch_id), subscription_id, period, start, classes
        )
        selected += len(rows)
        plan = plans.get(subscription_id, "")
        changed, cannot = Reallocation(plan, tariff_of, home.mcc, home.mnc).reprice(
            rows, used, taken
        )
        corrections += changed
        refused += cannot
    if not corrections:
        return None
    run = RerateRun(
        usage_class=ALLOWANCE_CLASSES,
        period_from=datetime.fromisoformat(min(since.values())),
        period_to=datetime.fromisoformat(max(p.bounds[1] for _, p in since)),
        requested_by=requested_by,
        reason=ALLOWANCE_ORDER,
        batch_id=str(batch_id),
    )
    for refusal in refused:
        run.refuse(*refusal)
    deltas: dict[str, tuple[Decimal, int]] = {}
    for c in corrections:
        if c[2] == "prepaid":
            amount, count = deltas.get(c[3], (ZERO, 0))
            deltas[c[3]] = (amount + Decimal(c[6]), count + 1)
    for first in range(0, len(corrections), PAGE):
        page = corrections[first : first + PAGE]
        run.correct(page, selected if first == 0 else 0)
        loader.batches.save(run)
    # Every correction is stored: the balances may take them (once: the key
    # is the run's, as a rerate's).
    loader.care.charge_prepaid_usage(run.id, 0, deltas)
    run.complete()
    loader.batches.save(run)
    return run


def periods_of(
    loader: UsageLoader, batch_id: UUID, cycle_day: Callable[[str], int]
) -> dict[tuple[str, Period], str]:
    """Each (subscription, bill period) in which the batch loaded usage of a
    class that allowances cover, with the earliest start of that usage."""
    classes = sorted(allowance_classes(loader.tariffs().book()))
    if not classes:
        return {}
    marks = ", ".join("?" * len(classes))
    earliest: dict[tuple[str, Period], str] = {}
    with loader.views.db.read() as tx:
        for table in ("view_rated_usage", "view_prepaid_usage"):
            for subscription_id, account_id, start in tx.fetch_tuples(
                "SELECT subscription_id, account_id, start_time "  # noqa: S608
                f"FROM {table} WHERE batch_id = ? AND breakdown IS NOT NULL "
                f"AND usage_class IN ({marks})",
                (str(batch_id), *classes),
            ):
                moment = datetime.fromisoformat(start)
                key = (subscription_id, period_of(cycle_day(account_id), moment))
                earliest[key] = min(start, earliest.get(key, start))
    return earliest


def _usage_from(
    loader: UsageLoader,
    batch_id: str,
    subscription_id: str,
    period: Period,
    start: str,
    classes: list[str],
) -> tuple[list[tuple[str, Row]], dict[str, int], dict[str, dict[str, int]]]:
    """The usage of the period from ``start`` on to price again, in time
    order (equal starts: by batch, then the file's order), with the units the
    allowances gave before ``start`` and the units each of them took."""
    begin, end = period.bounds
    marks = ", ".join("?" * len(classes))
    with loader.views.db.read() as tx:
        ledger = tx.fetchall(
            "SELECT record_id, allowance, units, start_time "
            "FROM view_allowance_uses "
            "WHERE subscription_id = ? AND start_time >= ? AND start_time < ?",
            (subscription_id, begin, end),
        )
        found: list[tuple[tuple[Any, ...], str, tuple[Any, ...]]] = []
        for table, payment in (
            ("view_rated_usage", "postpaid"),
            ("view_prepaid_usage", "prepaid"),
        ):
            for row in tx.fetch_tuples(
                f"SELECT {COLUMNS}, record_index FROM {table} "  # noqa: S608
                "WHERE subscription_id = ? AND start_time >= ? AND start_time < ? "
                f"AND breakdown IS NOT NULL AND usage_class IN ({marks})",
                (subscription_id, start, end, *classes),
            ):
                # start time, batch, index in the file
                found.append(((row[4], row[1], row[-1]), payment, row[:-1]))
    used: dict[str, int] = {}
    taken: dict[str, dict[str, int]] = {}
    for use in ledger:
        if use["start_time"] < start:
            used[use["allowance"]] = used.get(use["allowance"], 0) + int(use["units"])
        else:
            took = taken.setdefault(use["record_id"], {})
            took[use["allowance"]] = int(use["units"])
    found.sort(key=lambda f: f[0])
    rows = [
        (payment, row)
        for _, payment, row in found
        # Usage of other batches that took no free units takes none now.
        if row[1] == batch_id or row[0] in taken
    ]
    return rows, used, taken


def _rate_plans(loader: UsageLoader, subscription_ids: set[str]) -> dict[str, str]:
    """Rate plan by subscription id (from the subscriptions view, in one read)."""
    with loader.care_views.db.read() as tx:
        rows = tx.select_in("view_subscriptions", "id", subscription_ids)
    return {row["id"]: row["rate_plan"] or "" for row in rows}
