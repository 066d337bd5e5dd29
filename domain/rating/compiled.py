"""A tariff prepared for rating many usages: built once, then only looked up.

- Rates are grouped by usage class and zone (``None`` at home), then by
  destination; within a destination they are kept in the order of choice:
  highest weight first, then the band that starts latest in the day (an
  any-band rate counts as starting at midnight), then the order written.
- Each group has a dict of prefixes (``+`` dropped) to the destinations that
  have rates in the group, and the prefix lengths to try, longest first.
- Slabs carry their thresholds and increments in microseconds for voice and
  their prices as integer fractions, so the engine sums costs exactly.
- The day plans of the time bands are cached in a :class:`BandCalendar`;
  each plan keeps, per destination's rates, the pieces of the day where the
  choice among those rates may change (see :func:`pieces`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from domain.rating.bands import SECOND, BandCalendar, DayPlan
from domain.rating.tariff import ANY, Allowance, Discount, Rate, Rounding, Tariff


@dataclass(frozen=True, slots=True)
class CompiledSlab:
    index: int
    start: int
    start_us: int
    price: Decimal
    price_num: int  # price == price_num / price_den
    price_den: int
    per: int
    per_decimal: Decimal
    increment: int
    increment_us: int


@dataclass(frozen=True, slots=True)
class CompiledRate:
    index: int
    rate: Rate
    band: str
    weight: int
    begins: int  # second of the day the band starts (0 for "*")
    slabs: tuple[CompiledSlab, ...]
    fee_num: int
    fee_den: int
    rounding: Rounding
    scale: int  # 10 ** rounding.decimals
    zero: Decimal  # 0 with the rounding's decimals
    max_cost: Decimal | None


@dataclass(frozen=True, slots=True)
class Pieces:
    starts: list[int]  # instant each piece starts; the first is midnight
    rates: list[CompiledRate | None]  # the rate chosen in each piece


@dataclass(frozen=True, slots=True)
class Candidates:
    """The rates of one usage class, zone and destination."""

    key: int  # unique within the compiled tariff: the cache key of pieces
    destination: str
    rates: tuple[CompiledRate, ...]  # in the order of choice
    bands: frozenset[str]  # the bands these rates name ("*" not included)

    def choose(self, active: frozenset[str]) -> CompiledRate | None:
        for rate in self.rates:
            if rate.band == ANY or rate.band in active:
                return rate
        return None


@dataclass(frozen=True, slots=True)
class RateGroup:
    """The rates of one usage class in one zone (or at home)."""

    prefixes: dict[str, tuple[Candidates, ...]]
    lengths: tuple[int, ...]  # prefix lengths, longest first
    anywhere: Candidates | None  # the rates of destination "*"


def pieces(calendar_day: DayPlan, candidates: Candidates) -> Pieces:
    """The local day cut wherever a band that the rates name starts or ends,
    with the rate chosen in each piece (cached in the day plan)."""
    cached: Pieces | None = calendar_day.pieces.get(candidates.key)
    if cached is not None:
        return cached
    result = Pieces([], [])
    last: frozenset[str] | None = None
    for start, active in zip(calendar_day.starts, calendar_day.active, strict=True):
        named = active & candidates.bands
        if named == last:
            continue
        result.starts.append(start)
        result.rates.append(candidates.choose(active))
        last = named
    calendar_day.pieces[candidates.key] = result
    return result


class CompiledTariff:
    """A tariff with its lookups built; rate usages with ``engine.quote``."""

    def __init__(self, tariff: Tariff):
        self.tariff = tariff
        self.calendar = BandCalendar(tariff.timezone, tariff.time_bands)
        starts = {band.code: band.start for band in tariff.time_bands}
        rates = [
            compile_rate(index, rate, starts.get(rate.time_band, 0))
            for index, rate in enumerate(tariff.rates)
        ]
        self.groups = build_groups(tariff, rates)
        self.zones = [
            (
                int(network.mcc),
                None if network.mnc is None else int(network.mnc),
                zone.code,
            )
            for zone in tariff.zones
            for network in zone.networks
        ]
        self.discounts: dict[str, Discount] = {
            discount.usage_class: discount for discount in tariff.discounts
        }
        self.allowances: dict[str, tuple[Allowance, ...]] = {}
        for allowance in tariff.allowances:
            for usage_class in allowance.usage_classes:
                have = self.allowances.get(usage_class, ())
                self.allowances[usage_class] = (*have, allowance)

    def zones_of(self, mcc: int, mnc: int | None) -> list[str]:
        """The zones naming a serving network, the most specific first: an
        entry with the network's MNC before an entry with its MCC alone, then
        in the order written."""
        exact = [
            code for m, n, code in self.zones if m == mcc and n is not None and n == mnc
        ]
        country = [code for m, n, code in self.zones if m == mcc and n is None]
        return list(dict.fromkeys(exact + country))


def compile_rate(index: int, rate: Rate, begins: int) -> CompiledRate:
    fee_num, fee_den = rate.connect_fee.as_integer_ratio()
    slabs = []
    for slab_index, slab in enumerate(rate.slabs):
        num, den = slab.price.as_integer_ratio()
        slabs.append(
            CompiledSlab(
                index=slab_index,
                start=slab.start,
                start_us=slab.start * SECOND,
                price=slab.price,
                price_num=num,
                price_den=den,
                per=slab.per,
                per_decimal=Decimal(slab.per),
                increment=slab.increment,
                increment_us=slab.increment * SECOND,
            )
        )
    return CompiledRate(
        index=index,
        rate=rate,
        band=rate.time_band,
        weight=rate.weight,
        begins=begins if rate.time_band != ANY else 0,
        slabs=tuple(slabs),
        fee_num=fee_num,
        fee_den=fee_den,
        rounding=rate.rounding,
        scale=10**rate.rounding.decimals,
        zero=Decimal(0).scaleb(-rate.rounding.decimals),
        max_cost=None if rate.max_cost is None else rate.max_cost.amount,
    )


def build_groups(
    tariff: Tariff, rates: list[CompiledRate]
) -> dict[tuple[str, str | None], RateGroup]:
    by_destination: dict[tuple[str, str | None], dict[str, list[CompiledRate]]] = {}
    for compiled in rates:
        rate = compiled.rate
        destinations = by_destination.setdefault((rate.usage_class, rate.zone), {})
        destinations.setdefault(rate.destination, []).append(compiled)
    prefixes_of = {d.code: d.prefixes for d in tariff.destinations}
    order = {d.code: index for index, d in enumerate(tariff.destinations)}
    groups = {}
    key = 0
    for group_key, destinations in by_destination.items():
        prefixes: dict[str, list[Candidates]] = {}
        anywhere = None
        for destination in sorted(destinations, key=lambda code: order.get(code, -1)):
            chosen = sorted(
                destinations[destination], key=lambda r: (-r.weight, -r.begins, r.index)
            )
            candidates = Candidates(
                key=key,
                destination=destination,
                rates=tuple(chosen),
                bands=frozenset(r.band for r in chosen if r.band != ANY),
            )
            key += 1
            if destination == ANY:
                anywhere = candidates
                continue
            for prefix in prefixes_of.get(destination, ()):
                prefixes.setdefault(prefix.lstrip("+"), []).append(candidates)
        groups[group_key] = RateGroup(
            prefixes={prefix: tuple(found) for prefix, found in prefixes.items()},
            lengths=tuple(sorted({len(prefix) for prefix in prefixes}, reverse=True)),
            anywhere=anywhere,
        )
    return groups
