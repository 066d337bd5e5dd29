"""What the transformations share: their result, and writing it out.

A transformation turns each input record into a record of the generic usage
format (kind ``rated``, :mod:`ingest.transform.generic`) or into an error
entry; one bad record never stops the others. :func:`write_outputs` then writes
the generic file and, beside it, the error file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from application.files import write_atomically
from ingest.transform.generic import Problem
from ingest.transform.times import format_utc, parse_rfc3339

RAW_EXCERPT_LENGTH = 200
"""How much of a refused line the error entry quotes."""

FILE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
SOURCE = re.compile(r"[A-Za-z0-9._-]{1,32}")


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
        problems = list(dict.fromkeys(problems))
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
    # NAME.tmp, renamed when whole: the inbound contract's incomplete file.
    write_atomically(path, chunks, temporary=path.with_name(path.name + ".tmp"))
