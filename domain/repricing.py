"""Repricing rated usage with the tariffs now in force: the pure part of a
rerate, page by page, so that pages can be priced in several processes.

A page is a list of tuples of the usage view columns named in
:data:`PAGE_COLUMNS`. Repricing a page gives the corrections of the records
whose price changed (lists in the order of ``CORRECTION_COLUMNS`` of
:mod:`domain.rerating`) and the records that could not be priced (record id,
code, message). The per-record path is one loop with names bound locally: a
rerate may take a million records.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from domain.rating import (
    AllowanceState,
    CompiledTariff,
    Rated,
    RatingError,
    Tariff,
    Usage,
    compile_tariff,
    quote,
)
from domain.rating.tariff import TariffBook

# What repricing reads of a usage view row, in this order (not the old
# breakdown: it is most of the row and is not needed).
PAGE_COLUMNS: Final = (
    "record_id",
    "batch_id",
    "subscription_id",
    "start_time",
    "duration_seconds",
    "volume_bytes",
    "units",
    "called_number",
    "mcc",
    "mnc",
    "charge",
    "discount",
)
ZERO: Final = Decimal(0)

Row = tuple[Any, ...]
Refusal = list[str]  # record id, code, message


class TariffOf:
    """The compiled tariff of a rate plan in force at a time, for one rerate.

    A rate plan whose tariff has a single version in force since the
    beginning of time (the usual case) is looked up once; any other goes
    through the book for each record (the same answers, and the same errors).
    """

    def __init__(
        self,
        book: TariffBook,
        compiled: Callable[[Tariff], CompiledTariff] | None = None,
    ):
        self.book = book
        self.compiled = compiled or _Compiled()
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


class _Compiled:
    """Each version of a fixed book compiled once (by identity: the book
    does not change while it is used)."""

    def __init__(self) -> None:
        self._done: dict[int, tuple[Tariff, CompiledTariff]] = {}

    def __call__(self, tariff: Tariff) -> CompiledTariff:
        found = self._done.get(id(tariff))
        if found is None:
            found = self._done[id(tariff)] = (tariff, compile_tariff(tariff))
        return found[1]


def uses_allowances(book: TariffBook, usage_class: str) -> bool:
    """Whether any tariff version of the book gives free units of the class:
    only then does repricing need the units each record took."""
    return any(
        usage_class in allowance.usage_classes
        for tariff in book.tariffs
        for allowance in tariff.allowances
    )


@dataclass
class Repricing:
    """What repricing a page needs besides the page: the usage class, the
    rate plan of each subscription, the tariffs and the home network."""

    usage_class: str
    plans: Mapping[str, str]  # rate plan by subscription id
    tariff_of: TariffOf
    home_mcc: str | None
    home_mnc: str | None

    def page(
        self,
        rows: list[Row],
        payment: str,
        taken: Mapping[str, Mapping[str, int]] | None = None,
    ) -> tuple[list[list[Any]], list[Refusal]]:
        """The corrections of the records of a page whose price changed, and
        the records that cannot be priced.

        ``taken``: the free units each record took, by record id and
        allowance (``None`` when no tariff has allowances for the class). A
        rerate keeps them (a record that took none gets none), so it never
        hands an allowance out twice.
        """
        usage_class = self.usage_class
        plans = self.plans
        tariff_of = self.tariff_of
        home_mcc, home_mnc = self.home_mcc, self.home_mnc
        parse = datetime.fromisoformat
        corrections: list[list[Any]] = []
        refused: list[Refusal] = []
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
        ) in rows:
            at = parse(start_time)
            try:
                tariff = tariff_of(plans.get(subscription_id, ""), at)
                state = None
                if tariff.allowances.get(usage_class):
                    took = (taken or {}).get(record_id, {})
                    state = AllowanceState(
                        {a.code: took.get(a.code, 0) for a in tariff.tariff.allowances}
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
                refused.append([record_id, error.code, error.message])
                continue
            correction = _correction(
                record_id, batch_id, payment, subscription_id, charge, discount, rated
            )
            if correction is not None:
                corrections.append(correction)
        return corrections, refused


def _correction(
    record_id: str,
    batch_id: str,
    payment: str,
    subscription_id: str,
    charge: str | None,
    discount: str | None,
    rated: Rated,
    uses_changed: bool = False,
) -> list[Any] | None:
    """The correction of a record priced again (in the order of
    ``CORRECTION_COLUMNS``), or None when its charge and discount are the
    same (and ``uses_changed`` does not say its free units changed)."""
    old_charge = Decimal(charge) if charge else ZERO
    old_discount = Decimal(discount) if discount else ZERO
    new_discount = rated.discount or ZERO
    if rated.charge == old_charge and new_discount == old_discount and not uses_changed:
        return None
    delta = (rated.charge - new_discount) - (old_charge - old_discount)
    return [
        record_id,
        batch_id,
        payment,
        subscription_id,
        charge,
        str(rated.charge),
        str(delta),
        discount,
        None if not rated.discount else str(rated.discount),
        rated.as_json(),
    ]


# What reallocating free units reads of a usage view row, in this order.
REALLOCATION_COLUMNS: Final = (
    "record_id",
    "batch_id",
    "subscription_id",
    "usage_class",
    "start_time",
    "duration_seconds",
    "volume_bytes",
    "units",
    "called_number",
    "mcc",
    "mnc",
    "charge",
    "discount",
)


@dataclass
class Reallocation:
    """Free units given again in time order: the pure part of an
    allowance-order run, for one subscription's bill period from a time on.

    ``rows`` (of :data:`REALLOCATION_COLUMNS`, with their payment type) are
    the usage to price again, in time order; ``used`` what the allowances
    gave to usage before it in the period; ``taken`` the free units each
    record took until now, by record id. Each record takes what the records
    before it left, and is corrected when its charge, discount or free units
    change. A record that can no longer be priced keeps its charge and its
    free units, and is listed as refused.
    """

    plan: str  # the subscription's rate plan
    tariff_of: TariffOf
    home_mcc: str | None
    home_mnc: str | None

    def reprice(
        self,
        rows: list[tuple[str, Row]],
        used: Mapping[str, int],
        taken: Mapping[str, Mapping[str, int]],
    ) -> tuple[list[list[Any]], list[Refusal]]:
        given = dict(used)
        corrections: list[list[Any]] = []
        refused: list[Refusal] = []
        for payment, (
            record_id,
            batch_id,
            subscription_id,
            usage_class,
            start_time,
            duration_seconds,
            volume_bytes,
            units,
            called_number,
            mcc,
            mnc,
            charge,
            discount,
        ) in rows:
            at = datetime.fromisoformat(start_time)
            took = taken.get(record_id, {})
            try:
                tariff = self.tariff_of(self.plan, at)
                state = None
                if tariff.allowances.get(usage_class):
                    state = AllowanceState(
                        {
                            a.code: max(0, a.units - given.get(a.code, 0))
                            for a in tariff.tariff.allowances
                        }
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
                        home_mcc=self.home_mcc,
                        home_mnc=self.home_mnc,
                    ),
                    state,
                )
            except RatingError as error:
                refused.append([record_id, error.code, error.message])
                for code, count in took.items():  # it keeps what it had
                    given[code] = given.get(code, 0) + count
                continue
            uses = {use.code: use.units for use in rated.allowances}
            for code, count in uses.items():
                given[code] = given.get(code, 0) + count
            correction = _correction(
                record_id,
                batch_id,
                payment,
                subscription_id,
                charge,
                discount,
                rated,
                uses_changed=uses != dict(took),
            )
            if correction is not None:
                corrections.append(correction)
        return corrections, refused


def allowance_classes(book: TariffBook) -> set[str]:
    """The usage classes to which any tariff version of the book gives free
    units."""
    return {
        usage_class
        for tariff in book.tariffs
        for allowance in tariff.allowances
        for usage_class in allowance.usage_classes
    }
