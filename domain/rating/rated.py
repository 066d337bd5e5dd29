"""What the engine takes (a usage, the allowances left) and what it gives back:
a rated usage that explains itself, part by part, for the bill and for disputes.

``Rated.as_dict()`` is the shape that ``monetise price --json`` and
``POST /api/v1/tariffs/{code}/quote`` print: amounts are strings with the
digits the engine computed (``"0.5500"``), quantities of voice are seconds,
of data bytes, of events units.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Context, Decimal
from typing import Any, Final, NamedTuple

from domain.rating.tariff import Rounding, Tariff
from domain.usage_records import UsageRecord

EXACT: Final = Context(prec=34)  # the engine's own: whatever the caller's context


@dataclass(frozen=True, slots=True)
class Usage:
    """One use of the network to be rated.

    Exactly one quantity is given: ``duration_seconds`` (voice: split by time
    bands), ``volume_bytes`` (data) or ``units`` (events such as SMS). The
    serving network (``mcc``/``mnc``) is compared with the subscriber's home
    network (``home_mcc``/``home_mnc``): a usage is roaming when both MCCs
    are known and the networks differ (the MNCs are compared when both sides
    have one).
    """

    usage_class: str
    start: datetime  # aware
    duration_seconds: int | None = None
    volume_bytes: int | None = None
    units: int | None = None
    called_number: str | None = None
    mcc: str | None = None
    mnc: str | None = None
    home_mcc: str | None = None
    home_mnc: str | None = None

    @classmethod
    def from_record(
        cls,
        record: UsageRecord,
        home_mcc: str | None = None,
        home_mnc: str | None = None,
        serving: tuple[str | None, str | None] | None = None,
    ) -> Usage:
        """The usage of a valid record of an unrated usage file; ``serving``
        (MCC, MNC) when known better than the record says (from the IMSI)."""
        mcc, mnc = serving or (record.mcc, record.mnc)
        return cls(
            usage_class=record.usage_class,
            start=record.start_time,
            duration_seconds=record.duration_seconds,
            volume_bytes=record.volume_bytes,
            units=record.units,
            called_number=record.called_number,
            mcc=mcc,
            mnc=mnc,
            home_mcc=home_mcc,
            home_mnc=home_mnc,
        )


@dataclass(frozen=True)
class AllowanceState:
    """Units left of each allowance in the current bill period, by code.

    An allowance the state does not name has all its units left (a fresh bill
    period starts from ``AllowanceState()``).
    """

    remaining: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def fresh(cls, tariff: Tariff) -> AllowanceState:
        return cls({a.code: a.units for a in tariff.allowances})

    def left(self, code: str, units: int) -> int:
        return self.remaining.get(code, units)

    def after(self, used: Mapping[str, int]) -> AllowanceState:
        """The state once ``used`` has been taken (given as units left)."""
        return AllowanceState({**self.remaining, **used})


class AllowanceUse(NamedTuple):
    """Free units a usage took from one allowance: its first units are free."""

    code: str
    units: int
    left: int  # units of the allowance left after this usage

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "units": self.units, "left": self.left}


class Part(NamedTuple):
    """One charged piece of a usage, priced at one band, rate and slab.

    ``begin``/``end`` are counted from the start of the usage in ``unit``ths
    of the slab's unit: microseconds for voice (``unit`` 1,000,000), bytes or
    units for data and events (``unit`` 1); ``elapsed_from``, ``elapsed_to``
    and ``quantity`` give them in seconds, bytes or units. ``billed`` is
    ``increments * increment``: the quantity rounded up to whole increments;
    ``cost`` is ``billed * price / per`` (exact, or 34 significant digits when
    it does not end).
    """

    begin: int
    end: int
    unit: int
    band: str
    rate: int  # index of the rate in the tariff's rates
    weight: int
    slab: int  # index of the slab in the rate
    increment: int
    increments: int
    billed: int
    price: Decimal
    per: int

    @property
    def elapsed_from(self) -> Decimal:
        return _units(self.begin, self.unit)

    @property
    def elapsed_to(self) -> Decimal:
        return _units(self.end, self.unit)

    @property
    def quantity(self) -> Decimal:
        return _units(self.end - self.begin, self.unit)

    @property
    def cost(self) -> Decimal:
        return EXACT.divide(EXACT.multiply(self.price, self.billed), Decimal(self.per))

    def as_dict(self, start: datetime | None) -> dict[str, Any]:
        row: dict[str, Any] = {
            "from": str(self.elapsed_from),
            "to": str(self.elapsed_to),
        }
        if start is not None:  # voice: the instants too
            row["start"] = _at(start, self.begin)
            row["end"] = _at(start, self.end)
        row.update(
            band=self.band,
            rate=self.rate,
            weight=self.weight,
            slab=self.slab,
            quantity=str(self.quantity),
            increment=self.increment,
            increments=self.increments,
            billed=self.billed,
            price=_text(self.price),
            per=self.per,
            cost=_text(self.cost),
        )
        return row


def _units(value: int, unit: int) -> Decimal:
    if unit == 1:
        return Decimal(value)
    whole, fraction = divmod(value, unit)
    return Decimal(whole) if not fraction else EXACT.divide(value, unit)


def _text(amount: Decimal) -> str:
    return format(amount, "f")


def _at(start: datetime, microseconds: int) -> str:
    return (start + timedelta(microseconds=microseconds)).isoformat()


class Rated(NamedTuple):
    """A rated usage: its charge, discount and net, and how they came about.

    ``subtotal`` is the connect fee plus the parts' costs before rounding;
    ``charge`` is the subtotal rounded with ``rounding`` and capped at
    ``max_cost`` (``capped`` says whether the cap bit); ``net`` is ``charge``
    less ``discount``. ``allowances`` lists the free units taken, and
    ``remaining`` is the allowance state to rate the next usage with.
    """

    tariff: str
    currency: str
    usage_class: str
    kind: str  # "voice", "data" or "event"
    start: datetime
    quantity: int
    destination: str | None  # the destination code, "*", or None (no number)
    prefix: str | None  # the prefix of the called number that matched
    zone: str | None  # the roaming zone, None at home
    connect_fee: Decimal
    parts: tuple[Part, ...]
    fraction: tuple[int, int]  # the subtotal, exactly: numerator, denominator
    rounding: Rounding
    max_cost: Decimal | None
    capped: bool
    charge: Decimal
    discount: Decimal
    net: Decimal
    allowances: tuple[AllowanceUse, ...]
    remaining: AllowanceState

    @property
    def subtotal(self) -> Decimal:
        """Connect fee plus the parts' costs, before rounding (34 digits at
        most when the exact value does not end)."""
        num, den = self.fraction
        whole, rest = divmod(num, den)
        return Decimal(whole) if not rest else EXACT.divide(num, den)

    def as_dict(self) -> dict[str, Any]:
        """The rated usage as JSON-ready values, amounts as strings."""
        voice_start = self.start if self.kind == "voice" else None
        return {
            "charge": _text(self.charge),
            "currency": self.currency,
            "discount": _text(self.discount),
            "net": _text(self.net),
            "tariff": self.tariff,
            "usage_class": self.usage_class,
            "kind": self.kind,
            "start": self.start.isoformat(),
            "quantity": self.quantity,
            "destination": self.destination,
            "prefix": self.prefix,
            "zone": self.zone,
            "connect_fee": _text(self.connect_fee),
            "subtotal": _text(self.subtotal),
            "rounding": {
                "method": self.rounding.method,
                "decimals": self.rounding.decimals,
            },
            "max_cost": None if self.max_cost is None else _text(self.max_cost),
            "capped": self.capped,
            "allowances": [use.as_dict() for use in self.allowances],
            "breakdown": [part.as_dict(voice_start) for part in self.parts],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict())

    def as_json(self) -> str:
        """``as_dict()`` as compact JSON text, ASCII only: exactly what
        ``json.dumps(self.as_dict(), separators=(",", ":"))`` writes.

        Built directly rather than through a dict: offline rating and
        rerating store it for every record, and a million records spent more
        on the dict than on pricing. Each clock time is formatted once (a
        part ends where the next begins), and texts from the tariff are
        quoted once per process.
        """
        start_text = self.start.isoformat()
        max_cost = self.max_cost
        rounding = self.rounding
        head = (
            f'{{"charge":"{format(self.charge, "f")}",'
            f'"currency":{_quoted(self.currency)},'
            f'"discount":"{format(self.discount, "f")}",'
            f'"net":"{format(self.net, "f")}",'
            f'"tariff":{_quoted(self.tariff)},'
            f'"usage_class":{_quoted(self.usage_class)},'
            f'"kind":{_quoted(self.kind)},'
            f'"start":"{start_text}",'
            f'"quantity":{self.quantity},'
            f'"destination":{_quoted(self.destination)},'
            f'"prefix":{_quoted(self.prefix)},'
            f'"zone":{_quoted(self.zone)},'
            f'"connect_fee":"{format(self.connect_fee, "f")}",'
            f'"subtotal":"{format(self.subtotal, "f")}",'
            f'"rounding":{{"method":{_quoted(rounding.method)},'
            f'"decimals":{rounding.decimals}}},'
            f'"max_cost":{"null" if max_cost is None else _amount(max_cost)},'
            f'"capped":{"true" if self.capped else "false"},'
            f'"allowances":['
        )
        uses = ",".join(
            f'{{"code":{_quoted(use.code)},"units":{use.units},"left":{use.left}}}'
            for use in self.allowances
        )
        voice = self.kind == "voice"
        start = self.start
        parts = []
        # Clock times by microseconds from the start (adding time drops a
        # fold: only a start without one is its own first instant).
        at = {} if start.fold else {0: start_text}
        for part in self.parts:
            begin, end, unit = part.begin, part.end, part.unit
            if voice:
                begin_at = at.get(begin)
                if begin_at is None:
                    begin_at = at[begin] = _at(start, begin)
                end_at = at[end] = _at(start, end)
                clock = f'"start":"{begin_at}","end":"{end_at}",'
            else:
                clock = ""
            parts.append(
                f'{{"from":"{_units_text(begin, unit)}",'
                f'"to":"{_units_text(end, unit)}",{clock}'
                f'"band":{_quoted(part.band)},"rate":{part.rate},'
                f'"weight":{part.weight},"slab":{part.slab},'
                f'"quantity":"{_units_text(end - begin, unit)}",'
                f'"increment":{part.increment},"increments":{part.increments},'
                f'"billed":{part.billed},"price":"{format(part.price, "f")}",'
                f'"per":{part.per},"cost":"{format(part.cost, "f")}"}}'
            )
        return f'{head}{uses}],"breakdown":[{",".join(parts)}]}}'


_QUOTED: dict[str | None, str] = {None: "null"}


def _quoted(text: str | None) -> str:
    """A string (or None) as JSON text; the tariff's few texts are cached."""
    quoted = _QUOTED.get(text)
    if quoted is None:
        quoted = json.dumps(text)
        if len(_QUOTED) < 10_000:  # tariff texts: few; never unbounded
            _QUOTED[text] = quoted
    return quoted


def _amount(amount: Decimal) -> str:
    return f'"{format(amount, "f")}"'


def _units_text(value: int, unit: int) -> str:
    """``str(_units(value, unit))`` without a Decimal when it is whole."""
    if unit == 1:
        return str(value)
    whole, fraction = divmod(value, unit)
    return str(whole) if not fraction else str(EXACT.divide(value, unit))
