"""What the transformations share: the generic rated record, errors, output files.

A transformation turns each input record into a record of the generic usage
format (kind ``rated``, see ``ingest/schemas/usage-rated.schema.json``) or into an
error entry; one bad record never stops the others. :func:`write_outputs` then
writes the generic file and, beside it, the error file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ingest.transform.times import format_utc, parse_rfc3339

RAW_EXCERPT_LENGTH = 200
"""How much of a refused line the error entry quotes."""

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
FILE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
SOURCE = re.compile(r"[A-Za-z0-9._-]{1,32}")

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


class FileRefusedError(ValueError):
    """The whole input file cannot be transformed, e.g. its header does not fit
    the profile; the daemon moves such a file to ``quarantine/``."""


@dataclass
class TransformResult:
    """The generic records made from one input, and the entries for the rest.

    Each error entry stands for one input record that was not transformed (an
    input line, or in OCS one unit usage or used-unit container of a line):
    ``line`` (1-based), ``record_ref`` (its id as far as it could be read, or
    ``None``), ``field`` and ``reason`` of its first problem, ``problems`` (all
    of them) and ``raw`` (the start of the input line).
    """

    source: str
    records: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    lines_read: int = 0

    @property
    def record_count(self) -> int:
        return len(self.records)

    @property
    def error_count(self) -> int:
        return len(self.errors)

    def reject(
        self,
        *,
        line: int,
        problems: Sequence[Problem],
        raw: str,
        record_ref: str | None = None,
    ) -> None:
        """Record that one input record was not transformed, and why."""
        if not problems:
            raise ValueError("a rejected record needs at least one problem")
        self.errors.append(
            {
                "line": line,
                "record_ref": record_ref,
                "field": problems[0].field,
                "reason": problems[0].reason,
                "problems": [
                    {"field": problem.field, "reason": problem.reason}
                    for problem in problems
                ],
                "raw": excerpt(raw),
            }
        )


def excerpt(raw: str) -> str:
    """The start of an input line, short enough for an error entry."""
    text = raw.rstrip("\r\n")
    if len(text) <= RAW_EXCERPT_LENGTH:
        return text
    return text[:RAW_EXCERPT_LENGTH] + "…"


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
    whole, _, fraction = format(abs(amount), "f").partition(".")
    fraction = fraction.rstrip("0").ljust(4, "0")
    if len(fraction) > 6:
        raise ValueError(
            f"{amount} has more than 6 decimal places; the generic format "
            "would have to round it"
        )
    if len(whole) > 12:
        raise ValueError(f"{amount} has more than 12 integer digits")
    negative = amount.is_signed() and amount != 0
    return f"{'-' if negative else ''}{whole}.{fraction}"


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


@dataclass(frozen=True)
class WrittenOutputs:
    """Where :func:`write_outputs` put the generic file and its error file."""

    path: Path
    errors_path: Path | None
    record_count: int
    error_count: int


def write_outputs(
    result: TransformResult,
    header_fields: Mapping[str, Any],
    target_dir: str | os.PathLike[str],
    name: str,
) -> WrittenOutputs:
    """Write the generic rated file ``NAME`` (``.json`` is added when missing)
    into ``target_dir`` and, when there were errors, ``STEM.errors.json`` beside
    it.

    ``header_fields`` gives ``file_id`` and ``source`` (default: the result's
    source) and may give ``created_at`` (a datetime or RFC 3339 text; default:
    now); ``kind`` and ``record_count`` are set here. Each file is written as
    ``….tmp`` and renamed, so a loader that skips ``*.tmp`` only ever sees
    complete files; the error file is in place before the generic file appears.
    The generic file is written even when it holds no records, so that every
    input leaves a trace.
    """
    if "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"{name!r} is not a plain file name")
    file_name = name if name.endswith(".json") else name + ".json"
    stem = file_name.removesuffix(".json")
    directory = Path(target_dir)
    header = _header(result, header_fields)

    errors_path: Path | None = None
    if result.errors:
        errors_path = directory / f"{stem}.errors.json"
        document = {
            "file_id": header["file_id"],
            "source": header["source"],
            "output": file_name,
            "created_at": header["created_at"],
            "record_count": result.record_count,
            "error_count": result.error_count,
            "errors": result.errors,
        }
        text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
        _write_atomically(errors_path, [text])

    path = directory / file_name
    _write_atomically(path, _generic_document(header, result.records))
    return WrittenOutputs(path, errors_path, result.record_count, result.error_count)


def _header(result: TransformResult, fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - {"file_id", "source", "created_at"}
    if unknown:
        raise ValueError(f"unknown header fields: {', '.join(sorted(unknown))}")
    file_id = fields.get("file_id")
    source = fields.get("source", result.source)
    for label, value, pattern in (
        ("file_id", file_id, FILE_ID),
        ("source", source, SOURCE),
    ):
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ValueError(
                f"header {label} {value!r} is not made of A-Z a-z 0-9 . _ - "
                f"(up to {64 if label == 'file_id' else 32})"
            )
    created_at = fields.get("created_at") or datetime.now(UTC)
    if isinstance(created_at, str):
        created_at = parse_rfc3339(created_at)
    if not isinstance(created_at, datetime):
        raise ValueError(f"header created_at {created_at!r} is not a time")
    created_at = format_utc(created_at)
    return {
        "file_id": file_id,
        "source": source,
        "created_at": created_at,
        "kind": "rated",
        "record_count": result.record_count,
    }


def _generic_document(
    header: Mapping[str, Any], records: Sequence[Mapping[str, Any]]
) -> list[str]:
    # One record a line: large files stay readable and diff-able.
    chunks = ['{"header": ', json.dumps(header, ensure_ascii=False), ',\n"records": [']
    for index, record in enumerate(records):
        chunks.append(("\n" if index == 0 else ",\n") + json.dumps(record))
    chunks.append("\n]}\n" if records else "]}\n")
    return chunks


def _write_atomically(path: Path, chunks: Sequence[str]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    try:
        with temporary.open("w", encoding="utf-8") as stream:
            for chunk in chunks:
                stream.write(chunk)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
