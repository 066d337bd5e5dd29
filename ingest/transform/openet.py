"""Openet rated events: a delimited layout mapped by a field-mapping profile.

The layout of the file lives in a profile (``ingest/profiles/openet-default.yaml``
documents every key), not in code: mapping another vendor's delimited rated
events is a second profile file. One line is one rated event; quoted cells may
hold the delimiter but not a line break.
"""

from __future__ import annotations

import codecs
import csv
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.transform.common import FileRefusedError, TransformResult
from ingest.transform.converters import ConversionError, Step, build_steps, run_steps
from ingest.transform.generic import (
    GENERIC_FIELDS,
    QUANTITY_FIELDS,
    Problem,
    build_record,
)
from ingest.transform.profiles import Checker, at, join, read_document

DEFAULT_PROFILE = (
    Path(__file__).resolve().parent.parent / "profiles" / ("openet-default.yaml")
)

_REQUIRED_TARGETS = (
    "record_id",
    "usage_class",
    "start_time",
    "direction",
    "charge.amount",
    "charge.currency",
)
_FIELD_KEYS = ("column", "convert", "required", "empty_values", "description")
_PROFILE_KEYS = (
    "name",
    "description",
    "delimiter",
    "header",
    "quote_char",
    "encoding",
    "skip_prefixes",
    "columns",
    "fields",
)


@dataclass(frozen=True)
class FieldMapping:
    """How one generic field is read: from which column, converted how."""

    target: str
    column: int | str | None
    """1-based position, or header name; ``None`` for a constant."""
    steps: tuple[Step, ...]
    required: bool
    empty_values: frozenset[str]

    @property
    def label(self) -> str:
        return f"column {self.column}"


@dataclass(frozen=True)
class Profile:
    """A checked field-mapping profile; build it with :func:`load_profile`."""

    name: str
    delimiter: str
    header: bool
    quote_char: str | None
    encoding: str
    skip_prefixes: tuple[str, ...]
    columns: int | None
    fields: tuple[FieldMapping, ...]


def load_profile(path: str | os.PathLike[str] = DEFAULT_PROFILE) -> Profile:
    """Read and check a profile file; raise ``ProfileError`` naming each bad key."""
    document, origin = read_document(path)
    return parse_profile(document, origin)


def parse_profile(document: Mapping[str, Any], origin: str = "profile") -> Profile:
    """Check a profile given as a mapping (the YAML document, already read)."""
    check = Checker()
    check.keys(
        document, "", required=("name", "delimiter", "fields"), optional=_PROFILE_KEYS
    )
    name = check.text(document.get("name"), "name")
    delimiter = check.text(document.get("delimiter"), "delimiter")
    if delimiter is not None and len(delimiter) != 1:
        check.fail("delimiter", 'must be one character, e.g. "|", ",", ";" or "\\t"')
    header = check.boolean(document.get("header", False), "header")
    quote_char = document.get("quote_char", '"')
    if quote_char is not None and (
        not isinstance(quote_char, str) or len(quote_char) != 1
    ):
        check.fail("quote_char", "must be one character, or null for no quoting")
    if quote_char is not None and quote_char == delimiter:
        check.fail("quote_char", "must differ from the delimiter")
    encoding = check.text(document.get("encoding", "utf-8"), "encoding")
    if encoding is not None:
        _check_encoding(encoding, check)
    skip = check.sequence(document.get("skip_prefixes", []), "skip_prefixes") or []
    skip_prefixes = tuple(
        prefix
        for index, item in enumerate(skip)
        if (prefix := check.text(item, at("skip_prefixes", index))) is not None
    )
    columns = document.get("columns")
    if columns is not None:
        columns = check.integer(columns, "columns", minimum=1)
    raw_fields = check.mapping(document.get("fields"), "fields") or {}
    fields = [
        mapping
        for target, spec in raw_fields.items()
        if (mapping := _field(target, spec, check, header)) is not None
    ]
    if raw_fields:
        _check_coverage(set(raw_fields), check)
    check.raise_if_any(origin)
    assert name is not None and delimiter is not None and encoding is not None
    return Profile(
        name=name,
        delimiter=delimiter,
        header=bool(header),
        quote_char=quote_char,
        encoding=encoding,
        skip_prefixes=skip_prefixes,
        columns=columns,
        fields=tuple(fields),
    )


def _check_encoding(encoding: str, check: Checker) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        check.fail("encoding", f"unknown encoding {encoding!r}")
        return
    # Lines are split on b"\n" before decoding, so the encoding must keep ASCII.
    sample = b"\n|,;\t\"'AZaz09"
    try:
        same = sample.decode(encoding) == sample.decode("ascii")
    except (UnicodeDecodeError, LookupError):
        same = False
    if not same:
        check.fail("encoding", "must be ASCII-compatible (utf-8, latin-1, cp1252…)")


def _field(
    target: object, spec: object, check: Checker, header: bool | None
) -> FieldMapping | None:
    path = join("fields", target)
    if not isinstance(target, str) or target not in GENERIC_FIELDS:
        known = ", ".join(GENERIC_FIELDS)
        check.fail(path, f"is not a generic field (known: {known})")
        return None
    spec = check.mapping(spec, path)
    if spec is None:
        return None
    check.keys(spec, path, optional=_FIELD_KEYS)
    steps = build_steps(
        spec.get("convert"), join(path, "convert"), check, GENERIC_FIELDS[target]
    )
    constant = steps is not None and steps[0].name == "constant"
    column = spec.get("column")
    column_path = join(path, "column")
    if constant:
        if column is not None:
            check.fail(column_path, "is not used by a constant; remove it")
    elif column is None:
        check.fail(column_path, "is required (a 1-based position or a header name)")
    elif isinstance(column, str):
        if not header:
            check.fail(column_path, "names a header column, but header is false")
    else:
        column = check.integer(column, column_path, minimum=1)
    required = check.boolean(spec.get("required", True), join(path, "required"))
    empty = check.sequence(spec.get("empty_values", [""]), join(path, "empty_values"))
    empty_values = frozenset(
        value.strip()
        for index, item in enumerate(empty or [])
        if (
            value := check.text(item, at(join(path, "empty_values"), index), empty=True)
        )
        is not None
    )
    if target in _REQUIRED_TARGETS and required is False:
        check.fail(join(path, "required"), f"{target} is always required")
    if steps is None or required is None:
        return None
    return FieldMapping(
        target=target,
        column=column,
        steps=steps,
        required=required,
        empty_values=empty_values,
    )


def _check_coverage(targets: set[str], check: Checker) -> None:
    for target in _REQUIRED_TARGETS:
        if target not in targets:
            check.fail(
                join("fields", target), "is required: map it or make it a constant"
            )
    if not targets & {"msisdn", "imsi"}:
        check.fail("fields", "maps no subscriber: map msisdn, imsi or both")
    if not targets & set(QUANTITY_FIELDS):
        check.fail(
            "fields", "maps no quantity: duration_seconds, volume_bytes or units"
        )


def transform(
    lines: Iterable[str | bytes], profile: Profile, source: str
) -> TransformResult:
    """Transform rated events into generic rated records.

    ``lines`` are the file's lines: text (an open text file), or bytes (a file
    opened in binary mode), decoded here with the profile's encoding. Lines that
    cannot be transformed become error entries and the rest go on. Raises
    :class:`FileRefusedError` when the header line lacks a column the profile
    names.
    """
    result = TransformResult(source=source)
    reader = _LineReader(profile)
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                text = raw.decode(profile.encoding)
            except UnicodeDecodeError as error:
                result.lines_read += 1
                shown = raw.decode(profile.encoding, errors="replace")
                problem = Problem(
                    "line", f"is not valid {profile.encoding}: {error.reason}"
                )
                result.reject(line=number, problems=[problem], raw=shown)
                continue
        else:
            text = raw
        text = text.rstrip("\r\n")
        if number == 1:
            text = text.removeprefix("\ufeff")
        if not text.strip() or text.startswith(profile.skip_prefixes):
            continue
        if reader.expects_header:
            reader.read_header(text)
            continue
        result.lines_read += 1
        reader.transform_line(number, text, result)
    return result


def transform_file(
    path: str | os.PathLike[str], profile: Profile, source: str
) -> TransformResult:
    """Transform a file on disk, decoding it with the profile's encoding."""
    with Path(path).open("rb") as stream:
        return transform(stream, profile, source)


class _LineReader:
    """Turns the lines of one file into records; knows the header once read."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.expects_header = profile.header
        self.columns = profile.columns
        self.positions: dict[str, int] = {
            mapping.target: mapping.column - 1
            for mapping in profile.fields
            if isinstance(mapping.column, int)
        }
        self.seen: dict[str, int] = {}

    def split(self, text: str) -> list[str]:
        quote = self.profile.quote_char
        return next(
            csv.reader(
                [text],
                delimiter=self.profile.delimiter,
                quotechar=quote or '"',
                quoting=csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE,
                strict=True,
            )
        )

    def read_header(self, text: str) -> None:
        try:
            names = [name.strip().lower() for name in self.split(text)]
        except csv.Error as error:
            raise FileRefusedError(f"the header line cannot be read: {error}") from None
        for mapping in self.profile.fields:
            if not isinstance(mapping.column, str):
                continue
            wanted = mapping.column.strip().lower()
            found = [index for index, name in enumerate(names) if name == wanted]
            if len(found) != 1:
                how = "has no column" if not found else "has more than one column"
                raise FileRefusedError(
                    f"the header line {how} {mapping.column!r} "
                    f"(profile {self.profile.name}, fields.{mapping.target}.column)"
                )
            self.positions[mapping.target] = found[0]
        if self.columns is None:
            self.columns = len(names)
        self.expects_header = False

    def transform_line(self, number: int, text: str, result: TransformResult) -> None:
        problems: list[Problem] = []
        values: dict[str, Any] = {}
        cells: list[str] = []
        try:
            cells = self.split(text)
        except csv.Error as error:
            problems.append(Problem("line", f"cannot be split into columns: {error}"))
        if not problems and self.columns is not None and len(cells) != self.columns:
            problems.append(
                Problem("line", f"has {len(cells)} columns, expected {self.columns}")
            )
        if not problems:
            for mapping in self.profile.fields:
                self._read_field(mapping, cells, values, problems)
        record_id = values.get("record_id")
        ref = record_id if isinstance(record_id, str) else self._raw_ref(cells)
        if not problems and isinstance(record_id, str) and record_id in self.seen:
            problems.append(
                Problem(
                    "record_id", f"duplicates the record on line {self.seen[record_id]}"
                )
            )
        record: dict[str, Any] | None = None
        if not problems:
            record, problems = build_record(values)
        if record is None:
            result.reject(line=number, problems=problems, raw=text, record_ref=ref)
            return
        self.seen[record["record_id"]] = number
        result.records.append(record)

    def _read_field(
        self,
        mapping: FieldMapping,
        cells: list[str],
        values: dict[str, Any],
        problems: list[Problem],
    ) -> None:
        if mapping.column is None:
            values[mapping.target] = run_steps(mapping.steps, "")
            return
        index = self.positions[mapping.target]
        if index >= len(cells):
            problems.append(
                Problem(mapping.target, f"{mapping.label} is missing from the line")
            )
            return
        cell = cells[index]
        if cell.strip() in mapping.empty_values:
            if mapping.required:
                problems.append(Problem(mapping.target, f"{mapping.label} is empty"))
            return
        try:
            values[mapping.target] = run_steps(mapping.steps, cell)
        except ConversionError as error:
            problems.append(Problem(mapping.target, f"{mapping.label}: {error}"))

    def _raw_ref(self, cells: list[str]) -> str | None:
        index = self.positions.get("record_id")
        if index is None or index >= len(cells):
            return None
        return cells[index].strip() or None
