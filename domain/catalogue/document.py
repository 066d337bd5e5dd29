"""The catalogue as one document (YAML or JSON): reading it and writing it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.catalogue.aggregate import KIND_ORDER, Catalogue, Entry
from domain.catalogue.fields import Problem, type_name
from domain.catalogue.items import Kind, parse_item

DOCUMENT_ORDER = (
    Kind.EVENT_TYPES,
    Kind.EVENT_CODES,
    Kind.ACTION_TYPES,
    Kind.ACTION_CODES,
    Kind.TEMPLATES,
    Kind.USAGE_CLASSES,
)


def read_document(document: object) -> tuple[list[Entry], list[Problem]]:
    """Every item of a catalogue document, and every problem found reading it."""
    problems: list[Problem] = []
    entries: list[Entry] = []
    if not isinstance(document, Mapping):
        return [], [
            Problem("", f"the document must be a mapping, not {type_name(document)}")
        ]
    known = {kind.value for kind in Kind} | {"version"}
    for key in document:
        if key not in known:
            problems.append(
                Problem(
                    str(key),
                    "unknown section; expected one of: "
                    + ", ".join(k.value for k in DOCUMENT_ORDER),
                )
            )
    for kind in DOCUMENT_ORDER:
        section = document.get(kind.value)
        if section is None:
            continue
        if not isinstance(section, list):
            problems.append(
                Problem(kind.value, f"must be a list, not {type_name(section)}")
            )
            continue
        for index, raw in enumerate(section):
            entries.append(read_entry(kind, raw, f"{kind.value}[{index}]", problems))
    return entries, problems


def read_entry(kind: Kind, raw: object, path: str, problems: list[Problem]) -> Entry:
    """One item of ``kind`` with its ``active`` flag (default true)."""
    item = parse_item(kind, raw, path, problems)
    active = raw.get("active", True) if isinstance(raw, Mapping) else True
    if not isinstance(active, bool):
        problems.append(
            Problem(f"{path}.active", f"must be true or false, not {active!r}")
        )
        active = True
    return Entry(kind=kind, item=item, path=path, active=active)


def write_document(catalogue: Catalogue) -> dict[str, Any]:
    """The whole catalogue as a document that imports back with no change."""
    document: dict[str, Any] = {"version": 1}
    for kind in DOCUMENT_ORDER:
        rows = []
        for key in sorted(catalogue.entries[kind.value]):
            entry = catalogue.entries[kind.value][key]
            row = dict(entry["definition"])
            if not entry["active"]:
                row["active"] = False
            rows.append(row)
        document[kind.value] = rows
    return document


__all__ = [
    "DOCUMENT_ORDER",
    "KIND_ORDER",
    "read_document",
    "read_entry",
    "write_document",
]
