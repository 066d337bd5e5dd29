"""The TariffCatalogue aggregate: every change of the tariffs, as events.

There is one tariff catalogue. It holds every version of every tariff, each as
the document entry ``write_tariffs`` writes for it (so an export is what was
imported), and the rate plans that lead subscriptions to their tariffs. A
version is known by its tariff code and ``effective_from``: importing a version
with the same code and start again redefines it (when anything differs), and a
later ``effective_from`` is a new version. Versions and rate plans missing from
a later document are left as they were.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.rating.document import read_tariff_book
from domain.rating.tariff import Tariff, TariffBook
from domain.rating.writing import write_tariff

TARIFF_CATALOGUE_ID = uuid5(UUID("6d6f6e65-7469-7365-0000-000000000000"), "tariffs")

CHANGES = ("defined", "redefined", "assigned", "unchanged")


class UnknownTariff(LookupError):
    """A rate plan was to be assigned a tariff code that has no version."""


class StoredTariffUnreadable(ValueError):
    """A stored version no longer reads as a tariff (an upcaster is missing)."""


def instant_text(moment: datetime) -> str:
    """An instant in UTC as the document writes it: ``2027-01-01T00:00:00Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def version_key(code: str, effective_from: datetime | None) -> str:
    """How a version is known: ``STD`` or ``STD 2027-01-01T00:00:00Z``.

    Tariff codes hold no space, so the key is unambiguous; a string key keeps
    the aggregate's state (and its snapshots) plain JSON.
    """
    if effective_from is None:
        return code
    return f"{code} {instant_text(effective_from)}"


class TariffCatalogue(Aggregate):
    """The tariffs of one operator and the rate plans pointing at them."""

    # Stable topics: stored history survives a move or rename of this module.
    TOPIC = "monetise.tariffs:TariffCatalogue"
    class_version = 1

    class Created(Aggregate.Created):
        TOPIC = "monetise.tariffs:TariffCatalogue.Created"
        class_version = 1
        actor: str

    class TariffVersionDefined(Aggregate.Event):
        TOPIC = "monetise.tariffs:TariffCatalogue.TariffVersionDefined"
        class_version = 1
        code: str
        effective_from: datetime | None
        definition: dict[str, Any]
        actor: str

    class TariffVersionRedefined(Aggregate.Event):
        TOPIC = "monetise.tariffs:TariffCatalogue.TariffVersionRedefined"
        class_version = 1
        code: str
        effective_from: datetime | None
        definition: dict[str, Any]
        actor: str

    class RatePlanAssigned(Aggregate.Event):
        TOPIC = "monetise.tariffs:TariffCatalogue.RatePlanAssigned"
        class_version = 1
        rate_plan: str
        tariff: str
        actor: str

    @staticmethod
    def create_id(*_: Any, **__: Any) -> UUID:
        return TARIFF_CATALOGUE_ID

    @event(Created)
    def __init__(self, actor: str) -> None:
        # version key -> the version's document entry, in the order defined
        self.versions: dict[str, dict[str, Any]] = {}
        # rate plan -> tariff code
        self.rate_plans: dict[str, str] = {}

    # --- reading -----------------------------------------------------------

    def codes(self) -> set[str]:
        return {definition["code"] for definition in self.versions.values()}

    def document(self) -> dict[str, Any]:
        """Every version and rate plan, as one tariff document."""
        document: dict[str, Any] = {
            "version": 1,
            "tariffs": list(self.versions.values()),
        }
        if self.rate_plans:
            document["rate_plans"] = dict(self.rate_plans)
        return document

    def book(self) -> TariffBook:
        """The tariffs as values, rebuilt from the recorded definitions."""
        if not self.versions:
            return TariffBook(rate_plans=dict(self.rate_plans))
        book, problems = read_tariff_book(self.document())
        if problems:
            raise StoredTariffUnreadable(
                "; ".join(f"{p.path}: {p.message}" for p in problems)
            )
        return book

    # --- commands ----------------------------------------------------------

    def apply_document(
        self, tariffs: Iterable[Tariff], rate_plans: Mapping[str, str], actor: str
    ) -> dict[str, int]:
        """Record the versions and rate plans that differ from those recorded.

        Returns how many versions were ``defined`` and ``redefined``, rate
        plans ``assigned``, versions and rate plans ``unchanged``, and the
        ``events`` recorded: importing the same document again records none.
        """
        incoming = [(tariff, write_tariff(tariff)) for tariff in tariffs]
        keys = [version_key(t.code, t.effective_from) for t, _ in incoming]
        if len(set(keys)) != len(keys):
            twice = sorted({key for key in keys if keys.count(key) > 1})
            raise ValueError(f"versions given twice: {', '.join(twice)}")
        known = self.codes() | {tariff.code for tariff, _ in incoming}
        for plan, code in rate_plans.items():
            if code not in known:
                raise UnknownTariff(f"rate plan {plan}: there is no tariff {code!r}")
        counts = dict.fromkeys(CHANGES, 0)
        for key, (tariff, definition) in zip(keys, incoming, strict=True):
            current = self.versions.get(key)
            if current is None:
                self._define(tariff.code, tariff.effective_from, definition, actor)
                counts["defined"] += 1
            elif current != definition:
                self._redefine(tariff.code, tariff.effective_from, definition, actor)
                counts["redefined"] += 1
            else:
                counts["unchanged"] += 1
        for plan, code in rate_plans.items():
            if self.rate_plans.get(plan) == code:
                counts["unchanged"] += 1
            else:
                self._assign(plan, code, actor)
                counts["assigned"] += 1
        counts["events"] = counts["defined"] + counts["redefined"] + counts["assigned"]
        return counts

    # --- events ------------------------------------------------------------

    @event(TariffVersionDefined)
    def _define(
        self,
        code: str,
        effective_from: datetime | None,
        definition: dict[str, Any],
        actor: str,
    ) -> None:
        self.versions[version_key(code, effective_from)] = definition

    @event(TariffVersionRedefined)
    def _redefine(
        self,
        code: str,
        effective_from: datetime | None,
        definition: dict[str, Any],
        actor: str,
    ) -> None:
        self.versions[version_key(code, effective_from)] = definition

    @event(RatePlanAssigned)
    def _assign(self, rate_plan: str, tariff: str, actor: str) -> None:
        self.rate_plans[rate_plan] = tariff


__all__ = [
    "TARIFF_CATALOGUE_ID",
    "StoredTariffUnreadable",
    "TariffCatalogue",
    "UnknownTariff",
    "instant_text",
    "version_key",
]
