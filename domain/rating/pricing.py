"""The arithmetic of rating: parts, exact sums, rounding, caps and discounts.

Costs are summed as exact fractions of integers (``billed * price / per``
with the price as a fraction), so that no part is rounded before the total:
the charge is the exact subtotal rounded once. A subtotal that is not rounded
(``decimals: 0``) and does not end in decimal is given to 34 significant
digits. Charges are never negative, so ``up`` rounds away from zero and
``down`` towards it.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from typing import Final

from domain.rating.bands import EPOCH, SECOND, DayPlan
from domain.rating.compiled import (
    Candidates,
    CompiledRate,
    CompiledSlab,
    CompiledTariff,
    pieces,
)
from domain.rating.errors import RatingError
from domain.rating.rated import EXACT, Part

MODES: Final = {"up": ROUND_UP, "down": ROUND_DOWN, "half_up": ROUND_HALF_UP}


def voice_parts(
    ct: CompiledTariff,
    candidates: Candidates,
    plan: DayPlan,
    t0: int,
    begin: int,
    end: int,
    parts: list[Part],
    used: list[CompiledRate],
) -> tuple[int, int]:
    """Cut ``[begin, end)`` (microseconds; the usage began at ``t0``) at
    midnight, band changes and slab thresholds; price each part. Returns the
    exact sum of the parts' costs as a fraction."""
    num, den = 0, 1
    t = begin
    while t < end:
        while t >= plan.end:
            plan = ct.calendar.after(plan)
        cut = pieces(plan, candidates)
        index = bisect_right(cut.starts, t) - 1
        rate = cut.rates[index]
        if rate is None:
            at = (EPOCH + timedelta(microseconds=t)).isoformat()
            raise RatingError(
                "no_rate",
                f"no rate to destination {candidates.destination} is in force at {at}",
            )
        stop = cut.starts[index + 1] if index + 1 < len(cut.starts) else plan.end
        if stop > end:
            stop = end
        elapsed = t - t0
        slabs = rate.slabs
        k = len(slabs) - 1
        while slabs[k].start_us > elapsed:
            k -= 1
        if k + 1 < len(slabs) and t0 + slabs[k + 1].start_us < stop:
            stop = t0 + slabs[k + 1].start_us
        num, den = price_part(
            rate, slabs[k], elapsed, stop - t0, SECOND, num, den, parts
        )
        used.append(rate)
        t = stop
    return num, den


def volume_parts(
    rate: CompiledRate,
    begin: int,
    end: int,
    parts: list[Part],
    used: list[CompiledRate],
) -> tuple[int, int]:
    """Data and events: ``[begin, end)`` units, cut only at slab thresholds,
    all priced by the rate active at the start."""
    num, den = 0, 1
    slabs = rate.slabs
    elapsed = begin
    while elapsed < end:
        k = len(slabs) - 1
        while slabs[k].start > elapsed:
            k -= 1
        stop = end
        if k + 1 < len(slabs) and slabs[k + 1].start < stop:
            stop = slabs[k + 1].start
        num, den = price_part(rate, slabs[k], elapsed, stop, 1, num, den, parts)
        used.append(rate)
        elapsed = stop
    return num, den


def price_part(
    rate: CompiledRate,
    slab: CompiledSlab,
    begin: int,
    end: int,
    unit: int,
    num: int,
    den: int,
    parts: list[Part],
) -> tuple[int, int]:
    """Append the part ``[begin, end)`` (in ``unit``s of the slab's unit) and
    return the running sum with its cost added."""
    increments = -(-(end - begin) // (slab.increment * unit))
    billed = increments * slab.increment
    parts.append(
        Part(
            begin,
            end,
            unit,
            rate.band,
            rate.index,
            rate.weight,
            slab.index,
            slab.increment,
            increments,
            billed,
            slab.price,
            slab.per,
        )
    )
    return add(num, den, billed * slab.price_num, slab.price_den * slab.per)


def add(num: int, den: int, other_num: int, other_den: int) -> tuple[int, int]:
    if den == other_den:
        return num + other_num, den
    return num * other_den + other_num * den, den * other_den


def exact(num: int, den: int) -> Decimal:
    """The fraction as a decimal: exact when it ends, else 34 digits."""
    whole, rest = divmod(num, den)
    return Decimal(whole) if not rest else EXACT.divide(num, den)


def rounded(num: int, den: int, rate: CompiledRate) -> Decimal:
    """The fraction rounded with the rate's rounding, exactly."""
    decimals = rate.rounding.decimals
    if not decimals:
        return exact(num, den)
    whole, rest = divmod(num * rate.scale, den)
    if rest:
        method = rate.rounding.method
        if method == "up" or (method == "half_up" and 2 * rest >= den):
            whole += 1
    return Decimal(whole).scaleb(-decimals)


def on_grid(amount: Decimal, rate: CompiledRate, mode: str | None = None) -> Decimal:
    """An amount rounded to the rate's decimals (unchanged with no rounding)."""
    decimals = rate.rounding.decimals
    if not decimals:
        return amount
    step = Decimal(1).scaleb(-decimals)
    return amount.quantize(step, mode or MODES[rate.rounding.method], EXACT)


def discount_of(
    ct: CompiledTariff, usage_class: str, charge: Decimal, rate: CompiledRate
) -> Decimal:
    """The discount of the usage class off ``charge``, rounded like it; never
    more than the charge."""
    discount = ct.discounts.get(usage_class)
    if discount is None or not charge:
        return rate.zero
    if discount.percentage is not None:
        taken = EXACT.multiply(charge, discount.percentage).scaleb(-2)
    else:
        taken = min(discount.amount or Decimal(0), charge)
    return min(on_grid(taken, rate), charge)
