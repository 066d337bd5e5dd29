"""The Catalogue aggregate: every change of business configuration, as events."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.catalogue.fields import CatalogueRejected, Problem
from domain.catalogue.items import (
    Item,
    Kind,
    definition_of,
    item_from_definition,
)
from domain.catalogue.rules import Items, check

CATALOGUE_ID = uuid5(UUID("6d6f6e65-7469-7365-0000-000000000000"), "catalogue")

# Items are recorded in this order so that an item follows what it refers to.
KIND_ORDER = (
    Kind.EVENT_TYPES,
    Kind.ACTION_TYPES,
    Kind.TEMPLATES,
    Kind.ACTION_CODES,
    Kind.EVENT_CODES,
    Kind.USAGE_CLASSES,
)


@dataclass(frozen=True)
class Entry:
    """One item of an incoming change, with where it stands in the document."""

    kind: Kind
    item: Item
    path: str
    active: bool = True


@dataclass(frozen=True)
class ChangeSummary:
    defined: int = 0
    redefined: int = 0
    deactivated: int = 0
    reactivated: int = 0
    unchanged: int = 0

    @property
    def events(self) -> int:
        return self.defined + self.redefined + self.deactivated + self.reactivated


class Catalogue(Aggregate):
    """The business configuration of one operator: there is one catalogue."""

    # Stable topics: stored history survives a move or rename of this module.
    TOPIC = "monetise.catalogue:Catalogue"
    class_version = 1

    class Created(Aggregate.Created):
        TOPIC = "monetise.catalogue:Catalogue.Created"
        class_version = 1
        actor: str

    class ItemDefined(Aggregate.Event):
        TOPIC = "monetise.catalogue:Catalogue.ItemDefined"
        class_version = 1
        kind: str
        key: str
        definition: dict[str, Any]
        actor: str

    class ItemRedefined(Aggregate.Event):
        TOPIC = "monetise.catalogue:Catalogue.ItemRedefined"
        class_version = 1
        kind: str
        key: str
        definition: dict[str, Any]
        actor: str

    class ItemDeactivated(Aggregate.Event):
        TOPIC = "monetise.catalogue:Catalogue.ItemDeactivated"
        class_version = 1
        kind: str
        key: str
        actor: str
        reason: str

    class ItemReactivated(Aggregate.Event):
        TOPIC = "monetise.catalogue:Catalogue.ItemReactivated"
        class_version = 1
        kind: str
        key: str
        actor: str

    class ItemRemoved(Aggregate.Event):
        TOPIC = "monetise.catalogue:Catalogue.ItemRemoved"
        class_version = 1
        kind: str
        key: str
        actor: str

    @staticmethod
    def create_id(*_: Any, **__: Any) -> UUID:
        return CATALOGUE_ID

    @event(Created)
    def __init__(self, actor: str) -> None:
        # kind -> key -> {"definition": {...}, "active": bool}
        self.entries: dict[str, dict[str, dict[str, Any]]] = {
            kind.value: {} for kind in Kind
        }

    # --- reading -----------------------------------------------------------

    def items(self, *, include_inactive: bool = True) -> Items:
        """The catalogue's items as values, for checking and for the engine."""
        items = Items()
        for kind in Kind:
            target = items.of(kind)
            for key, entry in self.entries[kind.value].items():
                if include_inactive or entry["active"]:
                    target[key] = item_from_definition(kind, entry["definition"])
        return items

    def is_active(self, kind: Kind, key: str) -> bool:
        entry = self.entries[kind.value].get(key)
        return bool(entry and entry["active"])

    def has(self, kind: Kind, key: str) -> bool:
        return key in self.entries[kind.value]

    # --- commands ----------------------------------------------------------

    def apply_entries(
        self,
        entries: Iterable[Entry],
        actor: str,
        *,
        prune: bool = False,
        problems: Iterable[Problem] = (),
    ) -> ChangeSummary:
        """Define or redefine items, all or nothing; unchanged items record nothing.

        With ``prune``, items missing from ``entries`` are deactivated (a whole
        document replaces the catalogue without deleting history).
        """
        incoming = list(entries)
        problems = list(problems)
        seen: dict[tuple[Kind, str], str] = {}
        for entry in incoming:
            if not _readable(entry.item.key):
                continue
            where = seen.get((entry.kind, entry.item.key))
            if where is not None:
                problems.append(
                    Problem(
                        entry.path,
                        (
                            f"{entry.kind.singular} {entry.item.key} is already "
                            f"defined at {where}"
                        ),
                    )
                )
            seen[(entry.kind, entry.item.key)] = entry.path
        merged = self.items()
        for entry in incoming:
            if _readable(entry.item.key):
                merged.of(entry.kind)[entry.item.key] = entry.item
        locations = {(e.kind, e.item.key): e.path for e in incoming}

        def locate(kind: Kind, key: str) -> str:
            return locations.get((kind, key)) or f"{kind.value}[{key}]"

        problems += check(merged, locate)
        if problems:
            raise CatalogueRejected(_unique(problems))
        return self._record(incoming, actor, prune)

    def deactivate(self, kind: Kind, key: str, actor: str, reason: str = "") -> bool:
        """Deactivate an item; returns False when it was inactive already."""
        self._require(kind, key)
        if not self.is_active(kind, key):
            return False
        self._deactivate(kind.value, key, actor, reason or "deactivated")
        return True

    def reactivate(self, kind: Kind, key: str, actor: str) -> bool:
        self._require(kind, key)
        if self.is_active(kind, key):
            return False
        self._reactivate(kind.value, key, actor)
        return True

    def remove(self, kind: Kind, key: str, actor: str) -> str:
        """Remove an unreferenced item; one that is referenced is deactivated.

        Returns ``"removed"`` or ``"deactivated"``.
        """
        self._require(kind, key)
        referrers = self.items().referrers(kind, key)
        if referrers:
            if self.is_active(kind, key):
                self._deactivate(
                    kind.value,
                    key,
                    actor,
                    "referenced by " + ", ".join(referrers) + "; deactivated",
                )
            return "deactivated"
        self._remove(kind.value, key, actor)
        return "removed"

    # --- events ------------------------------------------------------------

    @event(ItemDefined)
    def _define(
        self, kind: str, key: str, definition: dict[str, Any], actor: str
    ) -> None:
        self.entries[kind][key] = {"definition": definition, "active": True}

    @event(ItemRedefined)
    def _redefine(
        self, kind: str, key: str, definition: dict[str, Any], actor: str
    ) -> None:
        self.entries[kind][key]["definition"] = definition

    @event(ItemDeactivated)
    def _deactivate(self, kind: str, key: str, actor: str, reason: str) -> None:
        self.entries[kind][key]["active"] = False

    @event(ItemReactivated)
    def _reactivate(self, kind: str, key: str, actor: str) -> None:
        self.entries[kind][key]["active"] = True

    @event(ItemRemoved)
    def _remove(self, kind: str, key: str, actor: str) -> None:
        del self.entries[kind][key]

    # --- helpers -----------------------------------------------------------

    def _require(self, kind: Kind, key: str) -> None:
        if not self.has(kind, key):
            raise ItemNotFound(kind, key)

    def _record(self, incoming: list[Entry], actor: str, prune: bool) -> ChangeSummary:
        counts = dict.fromkeys(
            ("defined", "redefined", "deactivated", "reactivated", "unchanged"), 0
        )
        order = {kind: index for index, kind in enumerate(KIND_ORDER)}
        for entry in sorted(incoming, key=lambda e: order[e.kind]):
            kind, key = entry.kind.value, entry.item.key
            definition = definition_of(entry.item)
            current = self.entries[kind].get(key)
            changed = False
            if current is None:
                self._define(kind, key, definition, actor)
                counts["defined"] += 1
                changed = True
            elif current["definition"] != definition:
                self._redefine(kind, key, definition, actor)
                counts["redefined"] += 1
                changed = True
            if entry.active and not self.is_active(entry.kind, key):
                self._reactivate(kind, key, actor)
                counts["reactivated"] += 1
                changed = True
            elif not entry.active and self.is_active(entry.kind, key):
                self._deactivate(kind, key, actor, "deactivated in the document")
                counts["deactivated"] += 1
                changed = True
            if not changed:
                counts["unchanged"] += 1
        if prune:
            present = {(e.kind, e.item.key) for e in incoming}
            for kind_ in KIND_ORDER:
                for key in sorted(self.entries[kind_.value]):
                    if (kind_, key) not in present and self.is_active(kind_, key):
                        self._deactivate(
                            kind_.value, key, actor, "not in the imported document"
                        )
                        counts["deactivated"] += 1
        return ChangeSummary(**counts)


class ItemNotFound(LookupError):
    def __init__(self, kind: Kind, key: str):
        self.kind = kind
        self.key = key
        super().__init__(f"{kind.singular} {key} is not in the catalogue")


def _readable(key: str) -> bool:
    """Whether a key was read whole (a code left out is reported where read)."""
    return all(part for part in key.split(" "))


def _unique(problems: list[Problem]) -> list[Problem]:
    seen: set[Problem] = set()
    out = []
    for problem in problems:
        if problem not in seen:
            seen.add(problem)
            out.append(problem)
    return out


__all__ = ["CATALOGUE_ID", "Catalogue", "ChangeSummary", "Entry", "ItemNotFound"]
