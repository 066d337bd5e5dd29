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
from datetime import datetime, timedelta, timezone
from decimal import Context, Decimal
from typing import Any, Final, NamedTuple

from domain.rating.tariff import Rounding, Tariff
from domain.usage_records import UsageRecord

EXACT: Final = Context(prec=34)  # the engine's own: whatever the caller's context


class Usage(NamedTuple):
    """One use of the network to be rated.

    Exactly one quantity is given: ``duration_seconds`` (voice: split by time
    bands), ``volume_bytes`` (data) or ``units`` (events such as SMS). The
    serving network (``mcc``/``mnc``) is compared with the subscriber's home
    network (``home_mcc``/``home_mnc``): a usage is roaming when both MCCs
    are known and the networks differ (the MNCs are compared when both sides
    have one).

    A named tuple, not a frozen dataclass: offline rating and rerating build
    one for each of millions of records, and a frozen dataclass's
    constructor cost twice as much (1.5 against 0.7 µs).
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
        on the dict than on pricing. What depends only on the tariff (its
        texts, amounts and rounding) is formatted once per process, and so is
        all that a part of a slab shows besides its bounds, by its length;
        each clock time is formatted once (a part ends where the next
        begins), and those of a fixed UTC offset from the start's.
        """
        start = self.start
        start_text = start.isoformat()
        after_charge, after_net, after_quantity, after_subtotal = _head(self)
        num, den = self.fraction
        whole, rest = divmod(num, den)
        head = (
            f'{{"charge":"{format(self.charge, "f")}"{after_charge}'
            f'{_static_amount(self.discount)}","net":"{format(self.net, "f")}"'
            f'{after_net}{start_text}","quantity":{self.quantity}{after_quantity}'
            # str(whole) is the text of Decimal(whole): an int has no exponent
            f"{format(EXACT.divide(num, den), 'f') if rest else whole}"
            f"{after_subtotal}"
        )
        uses = (
            ",".join(
                [
                    f'{{"code":{_quoted(u.code)},"units":{u.units},"left":{u.left}}}'
                    for u in self.allowances
                ]
            )
            if self.allowances
            else ""
        )
        if self.kind == "voice":
            at = _Clock(start, start_text).at
            parts = [
                f'{{"from":"{_units_text(p[0], p[2])}",'
                f'"to":"{_units_text(p[1], p[2])}",'
                f'"start":"{at(p[0])}","end":"{at(p[1])}",{_part_tail(p)}'
                for p in self.parts
            ]
        else:
            parts = [
                f'{{"from":"{_units_text(p[0], p[2])}",'
                f'"to":"{_units_text(p[1], p[2])}",{_part_tail(p)}'
                for p in self.parts
            ]
        return f'{head}{uses}],"breakdown":[{",".join(parts)}]}}'


# The texts between a rated usage's own values that depend only on what its
# tariff gave it, by those values. Amounts and the rounding are also keyed by
# their ids (0.10 equals 0.1 but prints otherwise), and held by the entry so
# that no other object can take their ids meanwhile.
_HEADS: dict[tuple[Any, ...], tuple[Rounding, tuple[str, str, str, str]]] = {}


def _head(rated: Rated) -> tuple[str, str, str, str]:
    """The texts after the charge (through ``"discount":"``), the net
    (through ``"start":"``), the quantity (through ``"subtotal":"``) and the
    subtotal (through ``"allowances":[``)."""
    rounding, connect_fee, max_cost = rated.rounding, rated.connect_fee, rated.max_cost
    key = (
        rated[:4],  # tariff, currency, usage class, kind
        rated[6:9],  # destination, prefix, zone
        connect_fee,
        id(connect_fee),
        id(rounding),
        max_cost,
        id(max_cost),
        rated.capped,
    )
    known = _HEADS.get(key)
    if known is not None and known[0] is rounding:
        return known[1]
    cap = "null" if max_cost is None else f'"{format(max_cost, "f")}"'
    texts = (
        f',"currency":{_quoted(rated.currency)},"discount":"',
        f',"tariff":{_quoted(rated.tariff)},'
        f'"usage_class":{_quoted(rated.usage_class)},'
        f'"kind":{_quoted(rated.kind)},"start":"',
        f',"destination":{_quoted(rated.destination)},'
        f'"prefix":{_quoted(rated.prefix)},"zone":{_quoted(rated.zone)},'
        f'"connect_fee":"{format(connect_fee, "f")}","subtotal":"',
        f'","rounding":{{"method":{_quoted(rounding.method)},'
        f'"decimals":{rounding.decimals}}},"max_cost":{cap},'
        f'"capped":{"true" if rated.capped else "false"},"allowances":[',
    )
    if len(_HEADS) >= 10_000:  # a tariff's few; a cache, never a leak
        _HEADS.clear()
    _HEADS[key] = (rounding, texts)
    return texts


_DAY_US: Final = 86_400_000_000
# "HH:MM:" of each minute of a day and "SS" of each second of a minute.
_MINUTES: Final = tuple(f"{m // 60:02d}:{m % 60:02d}:" for m in range(1440))
_SECONDS: Final = tuple(f"{s:02d}" for s in range(60))


class _Clock:
    """The clock times of a voice usage's parts: ``_at(start, us)``.

    Each instant is formatted once. For a start of a fixed UTC offset (a
    ``timezone``: what the views' UTC text parses to), adding time changes
    only the wall clock: up to midnight the time of day is looked up, and
    the start's date and offset kept.
    """

    __slots__ = ("day_us", "prefix", "start", "suffix", "texts")

    def __init__(self, start: datetime, start_text: str):
        self.start = start
        # Adding time drops a fold: only a start without one is its own
        # first instant.
        self.texts = {} if start.fold else {0: start_text}
        self.day_us = _DAY_US  # (no instant is on the start's day)
        self.prefix = self.suffix = ""
        if type(start) is datetime and type(start.tzinfo) is timezone:
            micro = start.microsecond
            self.prefix = start_text[:11]  # "YYYY-MM-DDT"
            self.suffix = start_text[26 if micro else 19 :]  # the offset
            seconds = (start.hour * 60 + start.minute) * 60 + start.second
            self.day_us = seconds * 1_000_000 + micro

    def at(self, microseconds: int) -> str:
        text = self.texts.get(microseconds)
        if text is None:
            t = self.day_us + microseconds
            if t < _DAY_US:  # the start's day (a day of a fixed offset: 24 h)
                seconds, micro = divmod(t, 1_000_000)
                minute, second = divmod(seconds, 60)
                if micro:
                    text = (
                        f"{self.prefix}{_MINUTES[minute]}{_SECONDS[second]}"
                        f".{micro:06d}{self.suffix}"
                    )
                else:
                    text = (
                        f"{self.prefix}{_MINUTES[minute]}{_SECONDS[second]}"
                        f"{self.suffix}"
                    )
            else:
                text = _at(self.start, microseconds)
            self.texts[microseconds] = text
        return text


# What a part shows after its bounds and clock times, through its closing
# brace, by its fields after the bounds (the price held there, and keyed by
# its id too: 0.10 equals 0.1 but prints otherwise) and its length.
_TAILS: dict[tuple[tuple[Any, ...], int, int], str] = {}
_MAX_TAILS: Final = 50_000


def _part_tail(part: Part) -> str:
    # part[2:]: unit, band, rate, weight, slab, increment, increments,
    # billed, price, per
    key = (part[2:], id(part.price), part.end - part.begin)
    tail = _TAILS.get(key)
    if tail is None:
        tail = (
            f'"band":{_quoted(part.band)},"rate":{part.rate},'
            f'"weight":{part.weight},"slab":{part.slab},'
            f'"quantity":"{_units_text(part.end - part.begin, part.unit)}",'
            f'"increment":{part.increment},"increments":{part.increments},'
            f'"billed":{part.billed},"price":"{format(part.price, "f")}",'
            f'"per":{part.per},"cost":"{format(part.cost, "f")}"}}'
        )
        if len(_TAILS) >= _MAX_TAILS:  # a cache, never a leak
            _TAILS.clear()
        _TAILS[key] = tail
    return tail


# Texts of amounts that come from the tariff (the zero of a rounding, as a
# discount), by id: each held beside its text, so that no other object can
# take its id while it is here.
_AMOUNTS: dict[int, tuple[Decimal, str]] = {}


def _static_amount(amount: Decimal) -> str:
    """``format(amount, "f")``, kept for the same object."""
    known = _AMOUNTS.get(id(amount))
    if known is not None and known[0] is amount:
        return known[1]
    text = format(amount, "f")
    if len(_AMOUNTS) < 10_000:  # a tariff's amounts: few; never unbounded
        _AMOUNTS[id(amount)] = (amount, text)
    return text


_QUOTED: dict[str | None, str] = {None: "null"}


def _quoted(text: str | None) -> str:
    """A string (or None) as JSON text; the tariff's few texts are cached."""
    quoted = _QUOTED.get(text)
    if quoted is None:
        quoted = json.dumps(text)
        if len(_QUOTED) < 10_000:  # tariff texts: few; never unbounded
            _QUOTED[text] = quoted
    return quoted


def _units_text(value: int, unit: int) -> str:
    """``str(_units(value, unit))`` without a Decimal when it is whole."""
    if unit == 1:
        return str(value)
    whole, fraction = divmod(value, unit)
    return str(whole) if not fraction else str(EXACT.divide(value, unit))
