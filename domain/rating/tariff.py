"""Tariffs: the price lists that unrated usage is rated against.

A tariff is a value: frozen dataclasses read from a document by
:func:`domain.rating.document.read_tariffs` and written back by
``write_tariffs``. ``TARIFFS.md`` beside this module documents the document
and the pricing semantics; the rating engine (``engine.py``) applies them.

Versions: a tariff code may appear several times, each entry with its own
``effective_from`` (``None`` is the beginning of time); the version in force at
an instant is the one with the latest ``effective_from`` at or before it
(:func:`tariff_in_force`). Subscriptions reach a tariff through their rate
plan: a document's ``rate_plans`` section maps a rate-plan code to a tariff
code (:class:`TariffBook`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

from domain.rating.errors import RatingError

ANY: Final = "*"
ROUNDING_METHODS: Final = ("up", "down", "half_up")
MAX_COST_STRATEGIES: Final = ("cap",)
BEGINNING_OF_TIME: Final = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class TimeBand:
    """A time of day from which a band runs, on some weekdays or dates.

    ``weekdays`` are ISO numbers (1 = Monday … 7 = Sunday); ``dates`` are
    ``MM-DD`` (every year) or ``YYYY-MM-DD`` (one day); with neither, the band
    applies every day. ``start`` is seconds after local midnight. Bands with
    the same weekdays and dates form one day schedule: a band runs from its
    start until the next band of its schedule starts that day, or midnight.
    """

    code: str
    start: int
    weekdays: tuple[int, ...] = ()
    dates: tuple[str, ...] = ()

    @property
    def schedule(self) -> tuple[frozenset[int], frozenset[str]]:
        """What the band shares with the other bands of its day schedule."""
        return frozenset(self.weekdays), frozenset(self.dates)


@dataclass(frozen=True)
class Destination:
    """Called-number prefixes priced alike (``NAT: ["441", "442"]``)."""

    code: str
    prefixes: tuple[str, ...]


@dataclass(frozen=True)
class Network:
    """A serving network: a country code, and optionally one operator in it."""

    mcc: str
    mnc: str | None = None


@dataclass(frozen=True)
class Zone:
    """Roaming networks priced alike (``EU``)."""

    code: str
    networks: tuple[Network, ...]


@dataclass(frozen=True)
class Slab:
    """``price`` per ``per`` units, billed in steps of ``increment`` units,
    from ``start`` units elapsed since the usage began (the document's
    ``from``). Units are seconds (voice), bytes (data) or units (events)."""

    start: int
    price: Decimal
    per: int
    increment: int


@dataclass(frozen=True)
class Rounding:
    """How a charge is rounded: ``up``, ``down`` or ``half_up`` to ``decimals``
    places; ``decimals`` 0 means no rounding at all."""

    method: str = "half_up"
    decimals: int = 0


NO_ROUNDING: Final = Rounding()


@dataclass(frozen=True)
class MaxCost:
    """The most one usage may cost; with ``cap`` the charge never exceeds it."""

    amount: Decimal
    strategy: str = "cap"


@dataclass(frozen=True)
class Rate:
    """How one usage class is priced to a destination, in a band, in a zone.

    ``destination`` and ``time_band`` are codes of the tariff or ``*`` (any);
    ``zone`` is ``None`` for usage on the home network and a zone code for
    roaming usage.
    """

    usage_class: str
    slabs: tuple[Slab, ...]
    destination: str = ANY
    time_band: str = ANY
    zone: str | None = None
    weight: int = 0
    connect_fee: Decimal = Decimal(0)
    rounding: Rounding = NO_ROUNDING
    max_cost: MaxCost | None = None


@dataclass(frozen=True)
class Discount:
    """Taken off every charge of a usage class: a ``percentage`` of it, or a
    fixed ``amount`` (never more than the charge)."""

    usage_class: str
    percentage: Decimal | None = None
    amount: Decimal | None = None


@dataclass(frozen=True)
class Allowance:
    """Free units per bill period, shared by usage classes, in each class's
    unit (seconds, bytes or units)."""

    code: str
    units: int
    usage_classes: tuple[str, ...]


@dataclass(frozen=True)
class Tariff:
    """One version of a tariff."""

    code: str
    currency: str
    timezone: str
    rates: tuple[Rate, ...]
    effective_from: datetime | None = None
    time_bands: tuple[TimeBand, ...] = ()
    destinations: tuple[Destination, ...] = ()
    zones: tuple[Zone, ...] = ()
    discounts: tuple[Discount, ...] = ()
    allowances: tuple[Allowance, ...] = ()
    description: str = ""


def tariff_in_force(versions: Iterable[Tariff], at: datetime) -> Tariff:
    """The version with the latest ``effective_from`` at or before ``at``.

    ``versions`` are versions of one tariff code. Raises ``RatingError``
    ``no_tariff`` when none is in force yet.
    """
    best: Tariff | None = None
    code = ""
    for version in versions:
        code = version.code
        begins = version.effective_from
        if begins is not None and begins > at:
            continue
        if best is None or _begins(version) > _begins(best):
            best = version
    if best is None:
        raise RatingError(
            "no_tariff", f"no version of tariff {code!r} is in force at {at}"
        )
    return best


def _begins(tariff: Tariff) -> datetime:
    return tariff.effective_from or BEGINNING_OF_TIME


@dataclass(frozen=True)
class TariffBook:
    """Every version of every tariff of a document, and the rate plans."""

    tariffs: tuple[Tariff, ...] = ()
    rate_plans: Mapping[str, str] = field(default_factory=dict)

    def versions(self, code: str) -> list[Tariff]:
        return [tariff for tariff in self.tariffs if tariff.code == code]

    def in_force(self, code: str, at: datetime) -> Tariff:
        """The version of tariff ``code`` in force at ``at`` (``no_tariff``)."""
        versions = self.versions(code)
        if not versions:
            raise RatingError("no_tariff", f"there is no tariff {code!r}")
        return tariff_in_force(versions, at)

    def for_rate_plan(self, rate_plan: str, at: datetime) -> Tariff:
        """The tariff of a subscription's rate plan, as in force at ``at``."""
        code = self.rate_plans.get(rate_plan)
        if code is None:
            raise RatingError(
                "no_tariff", f"rate plan {rate_plan!r} is not assigned a tariff"
            )
        return self.in_force(code, at)
