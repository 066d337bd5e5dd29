"""Usage records in the generic usage format, checked on the loader's hot path.

The rules are those of the published schemas, ``ingest/schemas/usage-rated``
and ``usage-unrated.schema.json``, written out by hand because the
``jsonschema`` package is several times too slow for a file loader; the
property tests in ``tests/unit/test_usage_schema_agreement.py`` show that
:func:`validate_record` accepts exactly what the schemas accept.

A usage batch lists one error per refused record: the first problem found,
looking in this order: the record is not an object; a field the format does
not know, or charge or discount in unrated usage (in the order written); then
the fields in the schema's order, with "no subscriber" after ``imsi`` and "no
quantity" after ``units``. Within a field: missing, wrong JSON type, out of
range, bad format. An error's ``path`` is a JSON Pointer (RFC 6901) from the
root of the file, such as ``/records/17/start_time`` or ``/header/file_id``;
for a missing field it names the field.

As in JSON Schema, a number with a zero fraction (``125.0``) is an integer and
``true`` is not.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final, NamedTuple, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

KINDS: Final = ("rated", "unrated")

_ABSENT: Final = object()
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One use of the network, as a valid record of a usage file says."""

    record_id: str
    msisdn: str | None
    imsi: str | None
    usage_class: str
    start_time: datetime  # aware, in UTC
    duration_seconds: int | None
    volume_bytes: int | None
    units: int | None
    direction: str  # "MO" or "MT"
    called_number: str | None
    mcc: str | None
    mnc: str | None
    charge: Decimal | None  # rated only: the price before discount
    currency: str | None
    discount: Decimal | None


@dataclass(frozen=True, slots=True)
class Header:
    """The header of a usage file."""

    file_id: str
    source: str
    created_at: datetime  # aware, in UTC
    kind: str  # "rated" or "unrated"
    record_count: int


@dataclass(frozen=True, slots=True)
class RecordError:
    """Why a record (or a file's header) was refused.

    ``code`` is one of ``missing_field``, ``wrong_type``, ``out_of_range``,
    ``bad_format``, ``unknown_field``, ``forbidden_field``, ``no_subscriber``,
    ``no_quantity``, ``wrong_kind``, ``count_mismatch``; ``record_id`` is set
    when the record has a valid one.
    """

    record_id: str | None
    code: str
    message: str
    path: str
    error_class: str = "schema"


class _Rule(NamedTuple):
    pattern: re.Pattern[str]
    text: str


_RECORD_ID = _Rule(re.compile(r"[A-Za-z0-9._:-]{1,64}"), "1-64 of A-Z a-z 0-9 . _ : -")
_MSISDN = _Rule(re.compile(r"[0-9]{6,15}"), "6-15 digits without '+'")
_IMSI = _Rule(re.compile(r"[0-9]{14,15}"), "14-15 digits")
_USAGE_CLASS = _Rule(re.compile(r"[A-Z0-9_]{1,32}"), "1-32 of A-Z 0-9 _")
_CALLED_NUMBER = _Rule(re.compile(r"[0-9]{1,32}"), "1-32 digits without '+'")
_MCC = _Rule(re.compile(r"[0-9]{3}"), "3 digits")
_MNC = _Rule(re.compile(r"[0-9]{2,3}"), "2-3 digits")
_AMOUNT = _Rule(
    re.compile(r"-?(?:0|[1-9][0-9]{0,11})(?:\.[0-9]{1,6})?"),
    "a decimal string with up to 12 integer and 6 fraction digits, such as '0.2500'",
)
_CURRENCY = _Rule(re.compile(r"[A-Z]{3}"), "an ISO 4217 code such as 'GBP'")
_FILE_ID = _Rule(re.compile(r"[A-Za-z0-9._-]{1,64}"), "1-64 of A-Z a-z 0-9 . _ -")
_SOURCE = _Rule(re.compile(r"[A-Za-z0-9._-]{1,32}"), "1-32 of A-Z a-z 0-9 . _ -")
# The shape of RFC 3339 with an offset; fromisoformat then refuses a day that
# the month does not have.
_DATE_TIME = re.compile(
    r"(?:19|2[0-9])[0-9]{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
_DATE_TIME_TEXT = (
    "an RFC 3339 date-time in the years 1900-2999 with an offset, "
    "such as '2026-11-21T09:58:01Z' or '2026-11-21T10:58:01+01:00'"
)
_NO_OFFSET = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9:.]+")

_MAX_DURATION: Final = 2_678_400
_MAX_VOLUME: Final = 2**63 - 1
_MAX_UNITS: Final = 10**9
_MAX_RECORD_COUNT: Final = 10**9

_RECORD_FIELDS = [
    "record_id",
    "msisdn",
    "imsi",
    "usage_class",
    "start_time",
    "duration_seconds",
    "volume_bytes",
    "units",
    "direction",
    "called_number",
    "mcc",
    "mnc",
]
_RATED_FIELDS: Final = frozenset([*_RECORD_FIELDS, "charge", "discount"])
_UNRATED_FIELDS: Final = frozenset(_RECORD_FIELDS)
_CHARGE_FIELDS: Final = frozenset(["amount", "currency"])
_DISCOUNT_FIELDS: Final = frozenset(["amount"])
_HEADER_FIELDS: Final = frozenset(
    ["file_id", "source", "created_at", "kind", "record_count"]
)
_FILE_FIELDS: Final = frozenset(["header", "records"])


class _Problem(Exception):
    def __init__(self, where: str, code: str, message: str) -> None:
        self.where = where  # JSON Pointer relative to the record or header
        self.code = code
        self.message = message


def validate_record(raw: object, kind: str, index: int) -> UsageRecord | RecordError:
    """Check one record of a ``rated`` or ``unrated`` file (the record at
    ``records[index]``): the record, or the first problem found in it."""
    if kind not in KINDS:
        raise ValueError(f"kind must be 'rated' or 'unrated', not {kind!r}")
    rated = kind == "rated"
    allowed = _RATED_FIELDS if rated else _UNRATED_FIELDS
    record_id = None
    try:
        if not isinstance(raw, dict):
            message = f"a record must be an object, not {json_type(raw)}"
            raise _Problem("", "wrong_type", message)
        candidate = raw.get("record_id")
        if isinstance(candidate, str) and _RECORD_ID.pattern.fullmatch(candidate):
            record_id = candidate  # named in the error even if it is elsewhere
        if not raw.keys() <= allowed:
            raise _unexpected_field(raw, allowed)
        record_id = _text(raw, "record_id", _RECORD_ID)
        msisdn = _optional_text(raw, "msisdn", _MSISDN)
        imsi = _optional_text(raw, "imsi", _IMSI)
        if msisdn is None and imsi is None:
            raise _Problem("", "no_subscriber", "a record needs an msisdn or an imsi")
        usage_class = _text(raw, "usage_class", _USAGE_CLASS)
        start_time = _moment(raw, "start_time")
        duration = _count(raw, "duration_seconds", _MAX_DURATION)
        volume = _count(raw, "volume_bytes", _MAX_VOLUME)
        units = _count(raw, "units", _MAX_UNITS)
        if duration is None and volume is None and units is None:
            raise _Problem(
                "",
                "no_quantity",
                "a record needs duration_seconds, volume_bytes or units",
            )
        direction = _direction(raw)
        called_number = _optional_text(raw, "called_number", _CALLED_NUMBER)
        mcc = _optional_text(raw, "mcc", _MCC)
        mnc = _optional_text(raw, "mnc", _MNC)
        charge = currency = discount = None
        if rated:
            charge, currency = _charge(raw)
            if "discount" in raw:
                discount = _discount(raw)
    except _Problem as problem:
        path = f"/records/{index}{problem.where}"
        return RecordError(record_id, problem.code, problem.message, path)
    return UsageRecord(
        record_id,
        msisdn,
        imsi,
        usage_class,
        start_time,
        duration,
        volume,
        units,
        direction,
        called_number,
        mcc,
        mnc,
        charge,
        currency,
        discount,
    )


QuickRecord = tuple[
    str,  # record_id
    str | None,  # msisdn
    str | None,  # imsi
    str,  # usage_class
    str,  # start_time as fixed-width UTC text (see ``utc_text``)
    int | None,  # duration_seconds
    int | None,  # volume_bytes
    int | None,  # units
    str,  # direction
    str | None,  # called_number
    str | None,  # mcc
    str | None,  # mnc
    str | None,  # charge: the file's decimal string (rated only)
    str | None,  # currency (rated only)
    str | None,  # discount: the file's decimal string (rated only)
]
"""The fields of a valid record as :class:`QuickCheck` vouches for them."""


def usage_record(fields: QuickRecord) -> UsageRecord:
    """The record :func:`validate_record` gives for the fields that
    :class:`QuickCheck` vouched for (its tests hold the two together)."""
    charge, discount = fields[12], fields[14]
    return UsageRecord(
        fields[0],
        fields[1],
        fields[2],
        fields[3],
        datetime.fromisoformat(fields[4]),  # UTC: as the validator gives it
        fields[5],
        fields[6],
        fields[7],
        fields[8],
        fields[9],
        fields[10],
        fields[11],
        None if charge is None else Decimal(charge),
        fields[13],
        None if discount is None else Decimal(discount),
    )


# How many values of one field a QuickCheck remembers before it starts again.
_REMEMBERED: Final = 1 << 16


class UsualUnratedRecord(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A record of an unrated file as a typed decoder reads it: each field
    that is there has the JSON type of the format, and no other field is.

    A reader decodes records of this shape in C, several times faster than
    into dicts, and :class:`QuickCheck` checks only what is left: patterns,
    ranges, the fields required together. Whatever a file holds that does not
    fit the shape (``null``, a number for a text, a field of the other kind,
    another field) is read as plain JSON values instead, and takes the checks
    as before. Every field is optional here: missing ones are the validator's
    to name.
    """

    record_id: str | UnsetType = UNSET
    msisdn: str | UnsetType = UNSET
    imsi: str | UnsetType = UNSET
    usage_class: str | UnsetType = UNSET
    start_time: str | UnsetType = UNSET
    duration_seconds: int | UnsetType = UNSET
    volume_bytes: int | UnsetType = UNSET
    units: int | UnsetType = UNSET
    direction: str | UnsetType = UNSET
    called_number: str | UnsetType = UNSET
    mcc: str | UnsetType = UNSET
    mnc: str | UnsetType = UNSET


class _Charge(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    amount: str
    currency: str


class _Discount(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    amount: str


class UsualRatedRecord(UsualUnratedRecord, forbid_unknown_fields=True, gc=False):
    """A record of a rated file as a typed decoder reads it (see
    :class:`UsualUnratedRecord`); a charge and a discount have exactly their
    fields."""

    charge: _Charge | UnsetType = UNSET
    discount: _Discount | UnsetType = UNSET


USUAL_RECORD: Final[dict[str, type[UsualUnratedRecord]]] = {
    "rated": UsualRatedRecord,
    "unrated": UsualUnratedRecord,
}
"""The typed shape of the records of each kind of file."""


def plain_record(value: object) -> object:
    """A record as plain JSON values (dicts, lists, texts, numbers): a
    typed record as the fields it was read from, anything else as it is.

    A typed record holds only fields of its kind, and the last of repeated
    names as plain decoding keeps it, so :func:`validate_record` answers the
    same for it as for the dict the same text decodes to.
    """
    if isinstance(value, UsualUnratedRecord):
        plain: object = msgspec.to_builtins(value)
        return plain
    return value


class QuickCheck:
    """The fast lane of :func:`validate_record`, for records of the usual shape.

    ``check(raw)`` gives the fields of a record that :func:`validate_record`
    accepts — the start time as the fixed-width UTC text of :func:`utc_text`,
    money as the file's decimal strings, which :class:`~decimal.Decimal` reads
    and writes back unchanged — or None for any record it does not vouch for.
    Such a record takes :func:`validate_record`, which accepts it or says
    exactly why not: the fast lane never refuses, it only steps aside. The
    rules are the same; values of the fields that repeat from record to record
    (numbers, usage classes, networks, currencies, days) are remembered once
    they have passed theirs, so that most records cost two or three regular
    expressions instead of a dozen.
    """

    def __init__(self, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be 'rated' or 'unrated', not {kind!r}")
        self.rated = kind == "rated"
        self._usual = USUAL_RECORD[kind]
        self._msisdns: set[str] = set()
        self._imsis: set[str] = set()
        self._classes: set[str] = set()
        self._called: set[str] = set()
        self._mccs: set[str] = set()
        self._mncs: set[str] = set()
        self._currencies: set[str] = set()
        self._amounts: set[str] = set()
        self._days: set[str] = set()

    def check(self, raw: object) -> QuickRecord | None:
        """The fields of ``raw`` (plain JSON values, or a typed record of the
        kind) if it is a valid record of the usual shape."""
        if type(raw) is dict:
            # The lane of typed records, after the same type checks in C.
            try:
                raw = msgspec.convert(raw, self._usual)
            except msgspec.ValidationError:
                return None
        elif type(raw) is not self._usual:
            return None
        return self._check_usual(raw)

    def _utc(self, start: str) -> str | None:
        """A valid start time as the views write it, or None."""
        if _DATE_TIME_MATCH(start) is None:
            return None
        end = start[19:]
        if end == "Z" or end == "+00:00":
            # Whole seconds in UTC: the text is the time's; only the day
            # can still be one that the month does not have.
            day = start[:10]
            if day not in self._days:
                try:
                    datetime.fromisoformat(start)
                except ValueError:
                    return None
                _remember(self._days, day)
            return start[:19] + ".000000+00:00"
        try:
            return utc_text(datetime.fromisoformat(start))
        except ValueError:
            return None

    def _check_usual(self, raw: Any) -> QuickRecord | None:
        """:meth:`check` of a typed record: its decoder has checked the types
        and that no other field is there, so patterns and ranges are left."""
        record_id = raw.record_id
        if record_id is UNSET or _RECORD_ID_MATCH(record_id) is None:
            return None
        usage_class = raw.usage_class
        if usage_class is UNSET or not (
            usage_class in self._classes
            or _learn(usage_class, self._classes, _USAGE_CLASS_MATCH)
        ):
            return None
        direction = raw.direction
        if direction != "MO" and direction != "MT":
            return None
        start = raw.start_time
        if start is UNSET:
            return None
        utc = self._utc(start)
        if utc is None:
            return None
        msisdn = raw.msisdn
        if msisdn is UNSET:
            msisdn = None
        elif not (
            msisdn in self._msisdns or _learn(msisdn, self._msisdns, _MSISDN_MATCH)
        ):
            return None
        imsi = raw.imsi
        if imsi is UNSET:
            if msisdn is None:
                return None
            imsi = None
        elif not (imsi in self._imsis or _learn(imsi, self._imsis, _IMSI_MATCH)):
            return None
        duration = raw.duration_seconds
        if duration is UNSET:
            duration = None
        elif not 0 <= duration <= _MAX_DURATION:
            return None
        volume = raw.volume_bytes
        if volume is UNSET:
            volume = None
        elif not 0 <= volume <= _MAX_VOLUME:
            return None
        units = raw.units
        if units is UNSET:
            if duration is None and volume is None:
                return None
            units = None
        elif not 0 <= units <= _MAX_UNITS:
            return None
        called = raw.called_number
        if called is UNSET:
            called = None
        elif not (
            called in self._called or _learn(called, self._called, _CALLED_MATCH)
        ):
            return None
        mcc = raw.mcc
        if mcc is UNSET:
            mcc = None
        elif not (mcc in self._mccs or _learn(mcc, self._mccs, _MCC_MATCH)):
            return None
        mnc = raw.mnc
        if mnc is UNSET:
            mnc = None
        elif not (mnc in self._mncs or _learn(mnc, self._mncs, _MNC_MATCH)):
            return None
        charge = currency = discount = None
        if self.rated:
            money = raw.charge
            if money is UNSET:
                return None
            charge, currency = money.amount, money.currency
            if _AMOUNT_MATCH(charge) is None or not (
                currency in self._currencies
                or _learn(currency, self._currencies, _CURRENCY_MATCH)
            ):
                return None
            money = raw.discount
            if money is not UNSET:
                discount = money.amount
                if not (
                    discount in self._amounts
                    or _learn(discount, self._amounts, _AMOUNT_MATCH)
                ):
                    return None
        return (
            record_id,
            msisdn,
            imsi,
            usage_class,
            utc,
            duration,
            volume,
            units,
            direction,
            called,
            mcc,
            mnc,
            charge,
            currency,
            discount,
        )


_RECORD_ID_MATCH: Final = _RECORD_ID.pattern.fullmatch
_DATE_TIME_MATCH: Final = _DATE_TIME.fullmatch
_MSISDN_MATCH: Final = _MSISDN.pattern.fullmatch
_IMSI_MATCH: Final = _IMSI.pattern.fullmatch
_USAGE_CLASS_MATCH: Final = _USAGE_CLASS.pattern.fullmatch
_CALLED_MATCH: Final = _CALLED_NUMBER.pattern.fullmatch
_MCC_MATCH: Final = _MCC.pattern.fullmatch
_MNC_MATCH: Final = _MNC.pattern.fullmatch
_AMOUNT_MATCH: Final = _AMOUNT.pattern.fullmatch
_CURRENCY_MATCH: Final = _CURRENCY.pattern.fullmatch


def _learn(
    value: str, passed: set[str], match: Callable[[str], re.Match[str] | None]
) -> bool:
    """Whether ``value``, not among those ``passed`` so far, follows the rule;
    remembered if so."""
    if match(value) is None:
        return False
    _remember(passed, value)
    return True


def _remember(passed: set[str], value: str) -> None:
    if len(passed) >= _REMEMBERED:
        passed.clear()  # a field whose values do not repeat: bounded memory
    passed.add(value)


def utc_text(moment: datetime) -> str:
    """A time as fixed-width RFC 3339 text in UTC, as every view stores times
    (microseconds always written, so that text order is time order)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def validate_header(raw: object, kind: str | None = None) -> Header | list[RecordError]:
    """Check the header of a usage file (the value of its ``header`` field):
    the header, or every problem found in it. With ``kind``, a header of the
    other kind is refused (``wrong_kind``), as the schema of that kind does."""
    if not isinstance(raw, dict):
        message = f"the header must be an object, not {json_type(raw)}"
        return [RecordError(None, "wrong_type", message, "/header")]
    problems = [_unknown(name) for name in raw if name not in _HEADER_FIELDS]
    file_id = _attempt(problems, lambda: _text(raw, "file_id", _FILE_ID))
    source = _attempt(problems, lambda: _text(raw, "source", _SOURCE))
    created_at = _attempt(problems, lambda: _moment(raw, "created_at"))
    file_kind = _attempt(problems, lambda: _kind(raw, kind))
    count = _attempt(
        problems, lambda: _count(raw, "record_count", _MAX_RECORD_COUNT, True)
    )
    if (
        problems
        or file_id is None
        or source is None
        or created_at is None
        or file_kind is None
        or count is None
    ):
        return [
            RecordError(None, problem.code, problem.message, "/header" + problem.where)
            for problem in problems
        ]
    return Header(file_id, source, created_at, file_kind, count)


def check_count(header: Header, actual: int) -> RecordError | None:
    """Refuse a file whose header counts another number of records than it
    holds: a truncated or padded file (JSON Schema cannot say this)."""
    if header.record_count == actual:
        return None
    message = (
        f"the header counts {header.record_count} records but the file holds {actual}"
    )
    return RecordError(None, "count_mismatch", message, "/header/record_count")


def split_batch(raw: object) -> tuple[object, list[object]] | RecordError:
    """The header and the records of a parsed usage file, or why the file is not
    an object with exactly those two fields, the records an array."""
    if not isinstance(raw, dict):
        message = f"a usage file must be an object, not {json_type(raw)}"
        return RecordError(None, "wrong_type", message, "")
    try:
        if not raw.keys() <= _FILE_FIELDS:
            raise _unexpected_field(raw, _FILE_FIELDS)
        for name in ("header", "records"):
            if name not in raw:
                raise _missing(name)
        records = raw["records"]
        if not isinstance(records, list):
            message = f"records must be an array, not {json_type(records)}"
            raise _Problem("/records", "wrong_type", message)
    except _Problem as problem:
        return RecordError(None, problem.code, problem.message, problem.where)
    return raw["header"], records


def _text(raw: dict[str, object], name: str, rule: _Rule) -> str:
    value = raw.get(name, _ABSENT)
    if isinstance(value, str) and rule.pattern.fullmatch(value) is not None:
        return value
    raise _text_problem(name, value, rule)


def _optional_text(raw: dict[str, object], name: str, rule: _Rule) -> str | None:
    value = raw.get(name, _ABSENT)
    if isinstance(value, str) and rule.pattern.fullmatch(value) is not None:
        return value
    if value is _ABSENT:
        return None
    raise _text_problem(name, value, rule)


def _text_problem(name: str, value: object, rule: _Rule) -> _Problem:
    if value is _ABSENT:
        return _missing(name)
    if not isinstance(value, str):
        message = f"{name} must be a string of {rule.text}, not {json_type(value)}"
        return _Problem("/" + name, "wrong_type", message)
    message = f"{name} must be {rule.text}, not {_show(value)}"
    return _Problem("/" + name, "bad_format", message)


def _moment(raw: dict[str, object], name: str) -> datetime:
    value = raw.get(name, _ABSENT)
    if isinstance(value, str) and _DATE_TIME.fullmatch(value) is not None:
        try:
            return datetime.fromisoformat(value).astimezone(UTC)
        except ValueError:
            message = f"{name} {_show(value)} is not a date in the calendar"
            raise _Problem("/" + name, "bad_format", message) from None
    if value is _ABSENT:
        raise _missing(name)
    if not isinstance(value, str):
        message = f"{name} must be a string: {_DATE_TIME_TEXT}, not {json_type(value)}"
        raise _Problem("/" + name, "wrong_type", message)
    if _NO_OFFSET.fullmatch(value):
        message = f"{name} {_show(value)} has no offset: add Z or +hh:mm"
    else:
        message = f"{name} must be {_DATE_TIME_TEXT}, not {_show(value)}"
    raise _Problem("/" + name, "bad_format", message)


def _count(
    raw: dict[str, object], name: str, maximum: int, required: bool = False
) -> int | None:
    value = raw.get(name, _ABSENT)
    if type(value) is int and 0 <= value <= maximum:
        return value
    if value is _ABSENT:
        if required:
            raise _missing(name)
        return None
    if isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        message = f"{name} must be a whole number, not {json_type(value)}"
        raise _Problem("/" + name, "wrong_type", message)
    if 0 <= number <= maximum:
        return number
    shown = f", not {number}" if number.bit_length() < 128 else ""
    message = f"{name} must be from 0 to {maximum:,}{shown}"
    raise _Problem("/" + name, "out_of_range", message)


def _direction(raw: dict[str, object]) -> str:
    value = raw.get("direction", _ABSENT)
    if isinstance(value, str) and (value == "MO" or value == "MT"):
        return value
    if value is _ABSENT:
        raise _missing("direction")
    code = "bad_format" if isinstance(value, str) else "wrong_type"
    message = f"direction must be 'MO' or 'MT', not {_show(value)}"
    raise _Problem("/direction", code, message)


def _kind(raw: dict[str, object], expected: str | None) -> str:
    value = raw.get("kind", _ABSENT)
    if value is _ABSENT:
        raise _missing("kind")
    if not isinstance(value, str) or value not in KINDS:
        code = "bad_format" if isinstance(value, str) else "wrong_type"
        message = f"kind must be 'rated' or 'unrated', not {_show(value)}"
        raise _Problem("/kind", code, message)
    if expected is not None and value != expected:
        message = f"this is {value} usage; {expected} usage was expected"
        raise _Problem("/kind", "wrong_kind", message)
    return value


def _charge(raw: dict[str, object]) -> tuple[Decimal, str | None]:
    value = raw.get("charge")
    if type(value) is dict and len(value) == 2:
        amount = value.get("amount")
        currency = value.get("currency")
        if (
            type(amount) is str
            and type(currency) is str
            and _AMOUNT.pattern.fullmatch(amount) is not None
            and _CURRENCY.pattern.fullmatch(currency) is not None
        ):
            return Decimal(amount), currency
    return _money(raw, "charge", _CHARGE_FIELDS)


def _discount(raw: dict[str, object]) -> Decimal:
    value = raw.get("discount")
    if type(value) is dict and len(value) == 1:
        amount = value.get("amount")
        if type(amount) is str and _AMOUNT.pattern.fullmatch(amount) is not None:
            return Decimal(amount)
    return _money(raw, "discount", _DISCOUNT_FIELDS)[0]


def _money(
    raw: dict[str, object], name: str, fields: frozenset[str]
) -> tuple[Decimal, str | None]:
    """The amount and currency of a charge or a discount, or its problem."""
    value = raw.get(name, _ABSENT)
    if value is _ABSENT:
        raise _missing(name)
    if not isinstance(value, dict):
        message = f"{name} must be an object with {' and '.join(sorted(fields))}"
        raise _Problem("/" + name, "wrong_type", f"{message}, not {json_type(value)}")
    try:
        if not value.keys() <= fields:
            raise _unexpected_field(value, fields)
        amount = _text(value, "amount", _AMOUNT)
        currency = _text(value, "currency", _CURRENCY) if "currency" in fields else None
    except _Problem as problem:
        where = f"/{name}{problem.where}"
        raise _Problem(where, problem.code, f"{name}: {problem.message}") from None
    return Decimal(amount), currency


def _unexpected_field(raw: dict[str, object], allowed: frozenset[str]) -> _Problem:
    name = next(name for name in raw if name not in allowed)
    if allowed is _UNRATED_FIELDS and name in _RATED_FIELDS:
        message = f"{name} is not allowed in unrated usage, which monetise prices"
        return _Problem("/" + name, "forbidden_field", message)
    return _unknown(name)


def _unknown(name: str) -> _Problem:
    where = "/" + name.replace("~", "~0").replace("/", "~1")
    return _Problem(where, "unknown_field", f"{_show(name)} is not a field here")


def _missing(name: str) -> _Problem:
    return _Problem("/" + name, "missing_field", f"{name} is required")


def _attempt(problems: list[_Problem], check: Callable[[], _T]) -> _T | None:
    try:
        return check()
    except _Problem as problem:
        problems.append(problem)
        return None


_JSON_TYPES: Final = {
    type(None): "null",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "an object",
}


def json_type(value: object) -> str:
    """What a parsed JSON value is, as a message says it: 'a string'…"""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _show(value: object) -> str:
    if not isinstance(value, str):
        return json_type(value)
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "...'"
