"""The rating engine: prices one usage against a tariff, exactly, and explains
how (``TARIFFS.md`` states the semantics; this is the order they apply in).

1. Zone: a roaming usage takes the most specific zone naming its serving
   network that has rates for its usage class (``no_zone``, ``no_rate``).
2. Destination: the longest prefix of the called number (``+`` dropped) among
   the destinations that have rates for the usage class; among destinations
   sharing that prefix, the one whose rate active at the start weighs most.
   Failing that, the ``*`` destination (``no_destination``, ``no_rate``).
3. Allowances: the first units of the usage are free, taken from the
   allowances of its usage class in the order written.
4. Parts: voice from the end of the free units to the end of the usage, cut at
   local midnight, where a band of the destination's rates starts or ends,
   and where a slab begins; data and events only where a slab begins, all
   priced by the rate active at the start. Each part: the rate chosen at its
   start (``no_rate`` for a gap), the slab by units elapsed since the usage
   began, ``billed = ceil(quantity / increment) * increment``,
   ``cost = billed * price / per``.
5. ``subtotal`` = connect fee of the first part's rate + the parts, as an
   exact fraction; rounded once with the rounding of most decimals among the
   parts' rates (the first such); capped at the lowest ``max_cost`` among
   them. No part (a usage of zero units, or all of it free): charge 0.
6. Discount of the usage class off the charge, rounded the same way.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from decimal import ROUND_DOWN, Decimal
from typing import Final

from domain.rating.bands import SECOND, DayPlan, epoch_us
from domain.rating.compiled import (
    Candidates,
    CompiledRate,
    CompiledTariff,
    RateGroup,
    pieces,
)
from domain.rating.errors import RatingError
from domain.rating.pricing import (
    add,
    discount_of,
    on_grid,
    rounded,
    voice_parts,
    volume_parts,
)
from domain.rating.rated import EXACT, AllowanceState, AllowanceUse, Part, Rated, Usage
from domain.rating.tariff import Allowance, Tariff

EMPTY: Final = AllowanceState()
NOTHING: Final[tuple[AllowanceUse, ...]] = ()


def compile_tariff(tariff: Tariff) -> CompiledTariff:
    """Build a tariff's lookups once, to rate many usages with it."""
    return CompiledTariff(tariff)


def quote(
    tariff: Tariff | CompiledTariff,
    usage: Usage,
    allowances: AllowanceState | None = None,
) -> Rated:
    """Rate one usage, taking free units from ``allowances`` (units left of
    each allowance; ``None``: all of them) — the rated usage carries the
    state to rate the next one with. Raises ``RatingError`` when the usage
    cannot be rated (a configuration error of the tariff, or a bad usage)."""
    compiled = tariff if isinstance(tariff, CompiledTariff) else CompiledTariff(tariff)
    return rate_usage(compiled, usage, EMPTY if allowances is None else allowances)


def rate_records(
    tariff: Tariff | CompiledTariff,
    usages: Sequence[Usage],
    allowances: AllowanceState | None = None,
) -> tuple[list[Rated | RatingError], AllowanceState]:
    """Rate usages of one subscriber and bill period, in the order given.

    Allowances are consumed in time order (by start, then as given); a usage
    that cannot be rated gets its ``RatingError`` and takes nothing.
    """
    compiled = tariff if isinstance(tariff, CompiledTariff) else CompiledTariff(tariff)
    state = EMPTY if allowances is None else allowances
    results: dict[int, Rated | RatingError] = {}
    for index in sorted(range(len(usages)), key=lambda i: usages[i].start):
        try:
            rated = rate_usage(compiled, usages[index], state)
        except RatingError as error:
            results[index] = error
            continue
        results[index] = rated
        state = rated.remaining
    return [results[index] for index in range(len(usages))], state


def rate_usage(ct: CompiledTariff, usage: Usage, state: AllowanceState) -> Rated:
    """Steps 1 to 6 of the module's docstring."""
    kind, quantity = quantity_of(usage)
    if usage.start.utcoffset() is None:
        raise RatingError("bad_usage", "the start of the usage has no time zone")
    t0 = epoch_us(usage.start)
    zone = zone_of(ct, usage)
    group = ct.groups.get((usage.usage_class, zone))
    if group is None:
        where = "at home" if zone is None else f"in zone {zone}"
        raise RatingError(
            "no_rate", f"no rate for usage class {usage.usage_class} {where}"
        )
    plan = ct.calendar.day_of(t0)
    candidates, prefix, first = destination_of(group, usage, plan, t0)
    free, uses, remaining = 0, NOTHING, state
    allowances = ct.allowances.get(usage.usage_class)
    if allowances and quantity:
        free, uses, remaining = take_allowances(allowances, quantity, state)
    parts: list[Part] = []
    used: list[CompiledRate] = []
    if kind == "voice":
        num, den = voice_parts(
            ct,
            candidates,
            plan,
            t0,
            t0 + free * SECOND,
            t0 + quantity * SECOND,
            parts,
            used,
        )
    else:
        num, den = volume_parts(first, free, quantity, parts, used)
    rounding_rate = first
    cap: Decimal | None = None
    if used:
        num, den = add(num, den, used[0].fee_num, used[0].fee_den)
        rounding_rate = used[0]
        for rate in used:
            if rate.rounding.decimals > rounding_rate.rounding.decimals:
                rounding_rate = rate
            if rate.max_cost is not None and (cap is None or rate.max_cost < cap):
                cap = rate.max_cost
    rounding = rounding_rate.rounding
    charge = rounded(num, den, rounding_rate)
    capped = cap is not None and charge > cap
    if capped and cap is not None:
        charge = on_grid(cap, rounding_rate, ROUND_DOWN)
    discount = discount_of(ct, usage.usage_class, charge, rounding_rate)
    # Positional, in the order of Rated's fields: named arguments cost twice
    # as much, for every record (each field is checked by
    # test_a_rated_usage_carries_each_value_under_its_own_name).
    return Rated(
        ct.tariff.code,  # tariff
        ct.tariff.currency,  # currency
        usage.usage_class,  # usage_class
        kind,  # kind
        usage.start,  # start
        quantity,  # quantity
        candidates.destination,  # destination
        prefix,  # prefix
        zone,  # zone
        used[0].rate.connect_fee if used else Decimal(0),  # connect_fee
        tuple(parts),  # parts
        (num, den),  # fraction
        rounding,  # rounding
        cap,  # max_cost
        capped,  # capped
        charge,  # charge
        discount,  # discount
        EXACT.subtract(charge, discount),  # net
        uses,  # allowances
        remaining,  # remaining
    )


def quantity_of(usage: Usage) -> tuple[str, int]:
    duration, volume, units = usage.duration_seconds, usage.volume_bytes, usage.units
    if duration is not None and volume is None and units is None:
        kind, value = "voice", duration
    elif volume is not None and duration is None and units is None:
        kind, value = "data", volume
    elif units is not None and duration is None and volume is None:
        kind, value = "event", units
    else:
        raise RatingError(
            "bad_usage",
            "a usage has exactly one of duration_seconds, volume_bytes, units",
        )
    if value.__class__ is not int and (
        isinstance(value, bool) or not isinstance(value, int)
    ):
        raise RatingError(
            "bad_usage", f"the quantity must be a whole number: {value!r}"
        )
    if value < 0:
        raise RatingError("bad_usage", f"the quantity must not be negative: {value}")
    return kind, value


def zone_of(ct: CompiledTariff, usage: Usage) -> str | None:
    """``None`` at home; the roaming zone with rates for the usage class."""
    if usage.mcc is None or usage.home_mcc is None:
        return None
    if usage.mcc == usage.home_mcc and (
        usage.mnc == usage.home_mnc or usage.mnc is None or usage.home_mnc is None
    ):
        return None  # the usual case, without reading the numbers
    numbers = (usage.mcc, usage.mnc or "0", usage.home_mcc, usage.home_mnc or "0")
    if not all(number.isdigit() for number in numbers):
        raise RatingError("bad_usage", "an MCC or MNC of the usage is not digits")
    mcc, home = int(usage.mcc), int(usage.home_mcc)
    mnc = None if usage.mnc is None else int(usage.mnc)
    home_mnc = None if usage.home_mnc is None else int(usage.home_mnc)
    if mcc == home and (mnc is None or home_mnc is None or mnc == home_mnc):
        return None
    zones = ct.zones_of(mcc, mnc)
    if not zones:
        raise RatingError("no_zone", f"no zone names network {usage.mcc}/{usage.mnc}")
    for zone in zones:
        if (usage.usage_class, zone) in ct.groups:
            return zone
    raise RatingError(
        "no_rate", f"no rate for usage class {usage.usage_class} in zone {zones[0]}"
    )


def rate_at(plan: DayPlan, candidates: Candidates, instant: int) -> CompiledRate | None:
    cut = pieces(plan, candidates)
    return cut.rates[bisect_right(cut.starts, instant) - 1]


def destination_of(
    group: RateGroup, usage: Usage, plan: DayPlan, t0: int
) -> tuple[Candidates, str | None, CompiledRate]:
    number = usage.called_number or ""
    digits = number[1:] if number.startswith("+") else number
    matched = False
    for length in group.lengths:
        found = group.prefixes.get(digits[:length]) if length <= len(digits) else None
        if found is None:
            continue
        matched = True
        best: tuple[Candidates, CompiledRate] | None = None
        for candidates in found:
            rate = rate_at(plan, candidates, t0)
            if rate is not None and (
                best is None
                or (rate.weight, rate.begins) > (best[1].weight, best[1].begins)
            ):
                best = (candidates, rate)
        if best is not None:
            return best[0], digits[:length], best[1]
    if group.anywhere is not None:
        rate = rate_at(plan, group.anywhere, t0)
        if rate is not None:
            return group.anywhere, None, rate
        matched = True
    if matched:
        raise RatingError(
            "no_rate",
            f"no {usage.usage_class} rate for {number or 'the usage'} "
            f"is in force at {usage.start.isoformat()}",
        )
    raise RatingError(
        "no_destination", f"no destination matches {number!r} for {usage.usage_class}"
    )


def take_allowances(
    allowances: tuple[Allowance, ...], quantity: int, state: AllowanceState
) -> tuple[int, tuple[AllowanceUse, ...], AllowanceState]:
    free = 0
    uses = []
    for allowance in allowances:
        left = state.left(allowance.code, allowance.units)
        take = min(left, quantity - free)
        if take > 0:
            free += take
            uses.append(AllowanceUse(allowance.code, take, left - take))
        if free == quantity:
            break
    if not uses:
        return 0, NOTHING, state
    return free, tuple(uses), state.after({use.code: use.left for use in uses})
