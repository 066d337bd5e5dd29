"""The catalogue service: import, export and change business configuration."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from domain.catalogue.aggregate import (
    CATALOGUE_ID,
    Catalogue,
    ChangeSummary,
    Entry,
    ItemNotFound,
)
from domain.catalogue.document import read_document, read_entry, write_document
from domain.catalogue.fields import CatalogueRejected, Problem
from domain.catalogue.items import Kind
from domain.raising import CatalogueView

T = TypeVar("T")

_RETRIES = 10


class UnknownKind(LookupError):
    pass


def kind_named(name: str) -> Kind:
    """The kind for ``event-codes`` or ``event_codes``; UnknownKind otherwise."""
    try:
        return Kind(name.replace("-", "_"))
    except ValueError:
        known = ", ".join(k.value.replace("_", "-") for k in Kind)
        raise UnknownKind(
            f"{name!r} is not a catalogue kind; use one of: {known}"
        ) from None


class CatalogueService(Application[UUID]):
    """Every change of the catalogue is an event with its actor and time."""

    name = "catalogue"
    snapshotting_intervals = {Catalogue: 50}

    def __init__(self, env: Mapping[str, str] | None = None):
        super().__init__(env)
        self._view: tuple[int, CatalogueView] | None = None

    # --- reading -----------------------------------------------------------

    def view(self) -> CatalogueView:
        """The catalogue as raising needs it, parsed once per catalogue version.

        One cheap query per call checks for newer catalogue events, so a code
        deactivated a moment ago is already refused.
        """
        cached = self._view
        if cached is not None:
            newer = list(self.events.get(CATALOGUE_ID, gt=cached[0], limit=1))
            if not newer:
                return cached[1]
        catalogue = self.catalogue()
        view = CatalogueView(
            items=catalogue.items(),
            active=frozenset(
                (kind, key)
                for kind, entries in catalogue.entries.items()
                for key, entry in entries.items()
                if entry["active"]
            ),
        )
        self._view = (catalogue.version, view)
        return view

    def catalogue(self) -> Catalogue:
        """The catalogue as it is now (an empty one before the first change)."""
        try:
            catalogue: Catalogue = self.repository.get(CATALOGUE_ID)
        except AggregateNotFoundError:
            return Catalogue(actor="system")
        return catalogue

    def export_document(self) -> dict[str, Any]:
        """The whole catalogue as one document; importing it back changes nothing."""
        return write_document(self.catalogue())

    def list_items(
        self, kind: str, *, active: bool | None = None
    ) -> list[dict[str, Any]]:
        entries = self.catalogue().entries[kind_named(kind).value]
        return [
            _presented(entry)
            for _, entry in sorted(entries.items())
            if active is None or entry["active"] == active
        ]

    def get_item(self, kind: str, key: str) -> dict[str, Any]:
        kind_ = kind_named(kind)
        entry = self.catalogue().entries[kind_.value].get(key)
        if entry is None:
            raise ItemNotFound(kind_, key)
        return _presented(entry)

    def history(self, kind: str, key: str) -> list[dict[str, Any]]:
        """Each change of one item: what changed, who changed it, and when."""
        kind_ = kind_named(kind)
        changes: list[dict[str, Any]] = []
        previous: dict[str, Any] = {}
        stored: Any
        for stored in self.events.get(CATALOGUE_ID):
            event = stored
            if getattr(event, "kind", None) != kind_.value or event.key != key:
                continue
            change = {
                "version": event.originator_version,
                "change": _CHANGE_NAMES[type(event).__name__],
                "actor": event.actor,
                "at": event.timestamp.isoformat(),
            }
            definition = getattr(event, "definition", None)
            if definition is not None:
                change["definition"] = definition
                change["fields"] = sorted(
                    name
                    for name in definition.keys() | previous.keys()
                    if definition.get(name) != previous.get(name)
                )
                previous = definition
            if hasattr(event, "reason"):
                change["reason"] = event.reason
            changes.append(change)
        if not changes:
            raise ItemNotFound(kind_, key)
        return changes

    # --- changing ----------------------------------------------------------

    def import_document(
        self, document: object, actor: str, *, prune: bool = False
    ) -> dict[str, int]:
        """Apply a whole document, all or nothing; a repeat records no event.

        Raises CatalogueRejected listing every problem with its path.
        """
        entries, problems = read_document(document)
        summary = self._change(
            lambda c: c.apply_entries(entries, actor, prune=prune, problems=problems)
        )
        return _counts(summary)

    def put_item(
        self, kind: str, key: str, raw: Mapping[str, Any], actor: str
    ) -> dict[str, int]:
        """Define or redefine one item; ``key`` is the code (``TYPE CODE``)."""
        kind_ = kind_named(kind)
        fields = dict(raw)
        problems: list[Problem] = []
        expected = dict(zip(("type", "code"), key.split(" "), strict=False))
        if kind_ is not Kind.EVENT_CODES:
            expected = {"code": key}
        for name, value in expected.items():
            fields.setdefault(name, value)
            if fields[name] != value:
                problems.append(
                    Problem(
                        name,
                        f"{fields[name]!r} does not match {value!r} in the address",
                    )
                )
        entry = read_entry(kind_, fields, "", problems)
        entry = Entry(kind_, entry.item, kind_.value + f"[{key}]", entry.active)
        summary = self._change(
            lambda c: c.apply_entries([entry], actor, problems=problems)
        )
        return _counts(summary)

    def deactivate(self, kind: str, key: str, actor: str, reason: str = "") -> bool:
        kind_ = kind_named(kind)
        return self._change(lambda c: c.deactivate(kind_, key, actor, reason))

    def reactivate(self, kind: str, key: str, actor: str) -> bool:
        kind_ = kind_named(kind)
        return self._change(lambda c: c.reactivate(kind_, key, actor))

    def remove(self, kind: str, key: str, actor: str) -> str:
        """Remove an item, or deactivate it when others refer to it."""
        kind_ = kind_named(kind)
        return self._change(lambda c: c.remove(kind_, key, actor))

    def _change(self, command: Callable[[Catalogue], T]) -> T:
        """Run a command on the catalogue, retrying when another writer won."""
        for attempt in range(_RETRIES):
            catalogue = self._catalogue_for_change()
            result = command(catalogue)
            try:
                self.save(catalogue)
            except IntegrityError:
                if attempt == _RETRIES - 1:
                    raise
                continue
            return result
        raise AssertionError("unreachable")

    def _catalogue_for_change(self) -> Catalogue:
        try:
            catalogue: Catalogue = self.repository.get(CATALOGUE_ID)
        except AggregateNotFoundError:
            return Catalogue(actor="system")
        return catalogue


_CHANGE_NAMES = {
    "ItemDefined": "defined",
    "ItemRedefined": "redefined",
    "ItemDeactivated": "deactivated",
    "ItemReactivated": "reactivated",
    "ItemRemoved": "removed",
}


def _presented(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {**entry["definition"], "active": entry["active"]}


def _counts(summary: ChangeSummary) -> dict[str, int]:
    return {
        "defined": summary.defined,
        "redefined": summary.redefined,
        "deactivated": summary.deactivated,
        "reactivated": summary.reactivated,
        "unchanged": summary.unchanged,
        "events": summary.events,
    }


__all__ = [
    "CatalogueRejected",
    "CatalogueService",
    "ItemNotFound",
    "UnknownKind",
    "kind_named",
]
