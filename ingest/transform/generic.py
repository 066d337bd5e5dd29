"""The generic rated record: its fields, its rules, and how values are written.

The rules follow ``ingest/schemas/usage-rated.schema.json`` so that a record
that passes :func:`build_record` is one the loader accepts; a transformation
reports a record that breaks them as an error instead of writing a file the
loader would refuse as a whole.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ingest.transform.times import format_utc

MAX_DURATION_SECONDS = 31 * 24 * 3600
MAX_VOLUME_BYTES = 2**63 - 1
MAX_UNITS = 1_000_000_000

RECORD_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
MSISDN = re.compile(r"[0-9]{6,15}")
IMSI = re.compile(r"[0-9]{14,15}")
USAGE_CLASS = re.compile(r"[A-Z0-9_]{1,32}")
CALLED_NUMBER = re.compile(r"[0-9]{1,32}")
MCC = re.compile(r"[0-9]{3}")
MNC = re.compile(r"[0-9]{2,3}")
CURRENCY = re.compile(r"[A-Z]{3}")

GENERIC_FIELDS: Mapping[str, type] = {
    "record_id": str,
    "msisdn": str,
    "imsi": str,
    "usage_class": str,
    "start_time": datetime,
    "duration_seconds": int,
    "volume_bytes": int,
    "units": int,
    "direction": str,
    "called_number": str,
    "mcc": str,
    "mnc": str,
    "charge.amount": Decimal,
    "charge.currency": str,
    "discount.amount": Decimal,
}
"""The generic record's fields (nested ones dotted) and the type each takes."""

QUANTITY_FIELDS = ("duration_seconds", "volume_bytes", "units")
_QUANTITY_LIMITS = {
    "duration_seconds": MAX_DURATION_SECONDS,
    "volume_bytes": MAX_VOLUME_BYTES,
    "units": MAX_UNITS,
}


@dataclass(frozen=True)
class Problem:
    """Why one field of one input record cannot be transformed."""

    field: str
    reason: str


def shift_decimal(value: Decimal, places: int) -> Decimal:
    """``value * 10**places``, exactly (no context rounding, unlike arithmetic)."""
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise ValueError(f"{value} is not a finite number")
    return Decimal((sign, digits, exponent + places))


def money_text(amount: Decimal) -> str:
    """A money amount as the generic format writes it: a decimal string with at
    least four decimal places (``"0.2500"``) and never rounded.

    Raises ``ValueError`` when the amount needs more than 6 decimal places or 12
    integer digits, which the generic format cannot hold without rounding.
    """
    if not amount.is_finite():
        raise ValueError(f"{amount} is not a finite number")
    sign, digits, exponent = amount.as_tuple()
    assert isinstance(exponent, int)
    # Trailing zeros carry no value; dropping them first keeps a huge exponent
    # from turning into a huge string.
    significant = list(digits)
    while len(significant) > 1 and significant[-1] == 0:
        significant.pop()
        exponent += 1
    if significant == [0]:
        sign, exponent = 0, 0
    if exponent < -6:
        raise ValueError(
            f"{amount} has more than 6 decimal places; the generic format "
            "would have to round it"
        )
    if len(significant) + exponent > 12:
        raise ValueError(f"{amount} has more than 12 integer digits")
    exact = Decimal((0, tuple(significant), exponent))
    whole, _, fraction = format(exact, "f").partition(".")
    return f"{'-' if sign else ''}{whole}.{fraction.ljust(4, '0')}"


def build_record(
    values: Mapping[str, Any],
) -> tuple[dict[str, Any] | None, list[Problem]]:
    """Check typed field values (keys from :data:`GENERIC_FIELDS`, absent or
    ``None`` when not given) against the rules of the generic rated format and
    render the record; return ``(record, [])`` or ``(None, problems)``."""
    problems: list[Problem] = []
    record: dict[str, Any] = {}

    def text(name: str, pattern: re.Pattern[str], rule: str) -> None:
        value = values.get(name)
        if value is None:
            return
        if not isinstance(value, str) or not pattern.fullmatch(value):
            problems.append(Problem(name, f"{_show(value)} is not {rule}"))
        else:
            record[name] = value

    for name, expected in GENERIC_FIELDS.items():
        value = values.get(name)
        if value is None or expected is str:
            continue  # text fields are checked with their pattern below
        if isinstance(value, bool) or not isinstance(value, expected):
            problems.append(Problem(name, f"{_show(value)} is not {expected.__name__}"))

    text("record_id", RECORD_ID, "1 to 64 of A-Z a-z 0-9 . _ : -")
    if "record_id" not in record and values.get("record_id") is None:
        problems.append(Problem("record_id", "is missing"))
    text("msisdn", MSISDN, "an MSISDN of 6 to 15 digits")
    text("imsi", IMSI, "an IMSI of 14 or 15 digits")
    if values.get("msisdn") is None and values.get("imsi") is None:
        problems.append(Problem("msisdn", "no subscriber: neither msisdn nor imsi"))
    _required(values, "usage_class", problems)
    text("usage_class", USAGE_CLASS, "a usage class code (A-Z 0-9 _, up to 32)")

    start_time = values.get("start_time")
    if start_time is None:
        problems.append(Problem("start_time", "is missing"))
    elif isinstance(start_time, datetime):
        if start_time.tzinfo is None:
            problems.append(Problem("start_time", "has no time zone"))
        elif not 1900 <= start_time.astimezone(UTC).year <= 2999:
            problems.append(Problem("start_time", "is not in the years 1900 to 2999"))
        else:
            record["start_time"] = format_utc(start_time)

    quantities = [name for name in QUANTITY_FIELDS if values.get(name) is not None]
    if not quantities:
        problems.append(
            Problem("quantity", "none of duration_seconds, volume_bytes, units")
        )
    for name in quantities:
        quantity = values[name]
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            continue
        if not 0 <= quantity <= _QUANTITY_LIMITS[name]:
            limit = _QUANTITY_LIMITS[name]
            problems.append(Problem(name, f"{quantity} is not between 0 and {limit}"))
        else:
            record[name] = quantity

    _required(values, "direction", problems)
    direction = values.get("direction")
    if direction is not None:
        if direction in ("MO", "MT"):
            record["direction"] = direction
        else:
            problems.append(Problem("direction", f"{_show(direction)} is not MO or MT"))
    text("called_number", CALLED_NUMBER, "a number of 1 to 32 digits")
    text("mcc", MCC, "an MCC of 3 digits")
    text("mnc", MNC, "an MNC of 2 or 3 digits")
    if (values.get("mcc") is None) != (values.get("mnc") is None):
        problems.append(Problem("mcc", "mcc and mnc come together or not at all"))

    _required(values, "charge.amount", problems)
    _required(values, "charge.currency", problems)
    charge = _amount(values, "charge.amount", problems)
    currency = values.get("charge.currency")
    if currency is not None and not (
        isinstance(currency, str) and CURRENCY.fullmatch(currency)
    ):
        problems.append(
            Problem("charge.currency", f"{_show(currency)} is not an ISO 4217 code")
        )
    discount = _amount(values, "discount.amount", problems)

    if problems:
        return None, _unique(problems)
    ordered = {name: record[name] for name in GENERIC_FIELDS if name in record}
    ordered["charge"] = {"amount": charge, "currency": currency}
    if discount is not None:
        ordered["discount"] = {"amount": discount}
    return ordered, []


def _required(values: Mapping[str, Any], name: str, problems: list[Problem]) -> None:
    if values.get(name) is None:
        problems.append(Problem(name, "is missing"))


def _amount(
    values: Mapping[str, Any], name: str, problems: list[Problem]
) -> str | None:
    amount = values.get(name)
    if not isinstance(amount, Decimal):
        return None
    try:
        return money_text(amount)
    except ValueError as error:
        problems.append(Problem(name, str(error)))
        return None


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"
