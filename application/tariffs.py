"""The tariff service: import and export tariffs, and the book rating reads.

The rating job asks for :meth:`TariffService.book` and
:meth:`TariffService.compiled` for every chunk of records: the book is parsed
once per version of the tariff catalogue and each tariff version compiled once,
so that both cost one cheap query when nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from domain.catalogue.fields import Problem
from domain.rating.book import (
    TARIFF_CATALOGUE_ID,
    TariffCatalogue,
    UnknownTariff,
    instant_text,
)
from domain.rating.compiled import CompiledTariff
from domain.rating.document import read_tariff_book, write_tariffs
from domain.rating.engine import compile_tariff, quote
from domain.rating.rated import Rated, Usage
from domain.rating.tariff import Tariff, TariffBook

T = TypeVar("T")

_RETRIES = 10


class TariffsRejected(Exception):
    """A tariff document was refused; nothing of it was recorded."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in self.problems))


def read_document(document: object) -> TariffBook:
    """The book of a tariff document; TariffsRejected lists every problem."""
    book, problems = read_tariff_book(document)
    if problems:
        raise TariffsRejected(problems)
    return book


def price(book: TariffBook, code: str, usage: Usage) -> Rated:
    """Rate one usage with the version of tariff ``code`` in force at its start.

    Raises UnknownTariff when the book has no tariff ``code`` at all, and
    RatingError for a usage that cannot be rated (``no_tariff`` when no
    version is in force yet).
    """
    if not book.versions(code):
        raise UnknownTariff(f"there is no tariff {code!r}")
    return quote(book.in_force(code, usage.start), usage)


class TariffService(Application[UUID]):
    """Every change of the tariffs is an event with its actor and time."""

    name = "tariffs"
    snapshotting_intervals = {TariffCatalogue: 50}

    def __init__(self, env: Mapping[str, str] | None = None):
        super().__init__(env)
        self._book: tuple[int, TariffBook] | None = None
        self._compiled: dict[
            tuple[str, datetime | None], tuple[Tariff, CompiledTariff]
        ] = {}

    # --- reading -----------------------------------------------------------

    def book(self) -> TariffBook:
        """Every tariff version and rate plan, parsed once per catalogue version.

        One cheap query per call checks for newer events, so a tariff changed
        by another process a moment ago is already the one rated with.
        """
        cached = self._book
        if cached is not None:
            newer = list(self.events.get(TARIFF_CATALOGUE_ID, gt=cached[0], limit=1))
            if not newer:
                return cached[1]
        catalogue = self._stored()
        if catalogue is None:
            self._book = (0, TariffBook())
            return self._book[1]
        book = catalogue.book()
        self._book = (catalogue.version, book)
        return book

    def compiled(self, tariff: Tariff) -> CompiledTariff:
        """The tariff version compiled for rating, compiled once per definition.

        Kept by code and ``effective_from``; a redefined version (a tariff
        that is not equal to the one compiled) is compiled again.
        """
        key = (tariff.code, tariff.effective_from)
        found = self._compiled.get(key)
        if found is not None:
            if found[0] is tariff:
                return found[1]
            if found[0] == tariff:  # the same version, from a book read again
                self._compiled[key] = (tariff, found[1])
                return found[1]
        compiled = compile_tariff(tariff)
        self._compiled[key] = (tariff, compiled)
        return compiled

    def quote(self, code: str, usage: Usage) -> Rated:
        """Price one usage with stored tariff ``code``; records nothing.

        UnknownTariff for a code without any version; RatingError when the
        usage cannot be rated.
        """
        book = self.book()
        if not book.versions(code):
            raise UnknownTariff(f"there is no tariff {code!r}")
        return quote(self.compiled(book.in_force(code, usage.start)), usage)

    def tariff_catalogue(self) -> TariffCatalogue:
        """The tariff catalogue as it is now (an empty one before any import)."""
        return self._stored() or TariffCatalogue(actor="system")

    def _stored(self) -> TariffCatalogue | None:
        try:
            catalogue: TariffCatalogue = self.repository.get(TARIFF_CATALOGUE_ID)
        except AggregateNotFoundError:
            return None
        return catalogue

    def export(self) -> dict[str, Any]:
        """Every version and rate plan as one document; importing it changes
        nothing."""
        book = self.book()
        return write_tariffs(book.tariffs, book.rate_plans)

    def list_versions(self) -> list[dict[str, Any]]:
        """One row per tariff version: code, start, currency, its rate plans."""
        book = self.book()
        plans: dict[str, list[str]] = {}
        for plan, code in sorted(book.rate_plans.items()):
            plans.setdefault(code, []).append(plan)
        rows = [
            {
                "code": tariff.code,
                "effective_from": (
                    None
                    if tariff.effective_from is None
                    else instant_text(tariff.effective_from)
                ),
                "currency": tariff.currency,
                "timezone": tariff.timezone,
                "description": tariff.description,
                "rate_plans": plans.get(tariff.code, []),
            }
            for tariff in book.tariffs
        ]
        return sorted(rows, key=lambda r: (r["code"], r["effective_from"] or ""))

    def history(self) -> list[dict[str, Any]]:
        """Each change of the tariffs: what changed, who changed it, and when."""
        changes: list[dict[str, Any]] = []
        stored: Any
        for stored in self.events.get(TARIFF_CATALOGUE_ID):
            change = _CHANGE_NAMES.get(type(stored).__name__)
            if change is None:
                continue
            row: dict[str, Any] = {
                "version": stored.originator_version,
                "change": change,
                "actor": stored.actor,
                "at": stored.timestamp.isoformat(),
            }
            if change == "assigned":
                row.update(rate_plan=stored.rate_plan, tariff=stored.tariff)
            else:
                moment = stored.effective_from
                row.update(
                    tariff=stored.code,
                    effective_from=None if moment is None else instant_text(moment),
                )
            changes.append(row)
        return changes

    # --- changing ----------------------------------------------------------

    def import_document(self, document: object, actor: str) -> dict[str, int]:
        """Apply a whole tariff document, all or nothing; a repeat records no
        event.

        Raises TariffsRejected listing every problem with its path.
        """
        book = read_document(document)
        return self._change(
            lambda c: c.apply_document(book.tariffs, book.rate_plans, actor)
        )

    def _change(self, command: Callable[[TariffCatalogue], T]) -> T:
        """Run a command on the catalogue, retrying when another writer won."""
        for attempt in range(_RETRIES):
            catalogue = self.tariff_catalogue()
            result = command(catalogue)
            if all(
                isinstance(pending, TariffCatalogue.Created)
                for pending in catalogue.pending_events
            ):
                return result  # nothing changed: not even an empty catalogue
            try:
                self.save(catalogue)
            except IntegrityError:
                if attempt == _RETRIES - 1:
                    raise
                continue
            return result
        raise AssertionError("unreachable")


_CHANGE_NAMES = {
    "TariffVersionDefined": "defined",
    "TariffVersionRedefined": "redefined",
    "RatePlanAssigned": "assigned",
}


__all__ = [
    "TariffService",
    "TariffsRejected",
    "UnknownTariff",
    "price",
    "read_document",
]
