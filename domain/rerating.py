"""The RerateRun aggregate: one offline rerating of a usage class over a period.

After a tariff was wrong and has been fixed, an operator reruns the pricing
of one usage class code for a From/To period (or all time). The run's stream
is the audit of it: what was asked and by whom, and per changed record the old
charge, the new charge and the delta, with the new breakdown. A record whose
price did not change is not corrected, so running the same rerate again
records a run with no corrections.

Corrections are lists in the order of :data:`CORRECTION_COLUMNS`, amounts
as strings, and the breakdown as the JSON text the usage views store: a
rerate of a million records writes a million of them, so they are neither
objects nor re-encoded on the way (one event per page of records).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from eventsourcing.domain import Aggregate, event

CORRECTION_COLUMNS: Final = (
    "record_id",
    "batch_id",
    "payment_type",
    "subscription_id",
    "old_charge",
    "new_charge",
    "delta",  # new net - old net (charge less discount)
    "old_discount",
    "new_discount",
    "breakdown",  # JSON text: how the new charge came about (Rated.as_dict())
)


class RerateRun(Aggregate):
    TOPIC = "monetise.rerating:RerateRun"
    class_version = 1

    class Created(Aggregate.Created):
        """A rerate was requested."""

        TOPIC = "monetise.rerating:RerateRun.Created"
        class_version = 1
        usage_class: str
        period_from: datetime | None
        period_to: datetime | None
        requested_by: str

    class ChargesCorrected(Aggregate.Event):
        TOPIC = "monetise.rerating:RerateRun.ChargesCorrected"
        class_version = 1
        corrections: list[list[Any]]

    class Completed(Aggregate.Event):
        TOPIC = "monetise.rerating:RerateRun.Completed"
        class_version = 1
        counts: dict[str, int]
        refused: list[list[str]]  # record id, code, message: not repriced

    class Interrupted(Aggregate.Event):
        """The rerate stopped before the end of its selection (its process
        died). The corrections it recorded stand, and the prepaid balances
        have taken them; a rerate run again does the rest."""

        TOPIC = "monetise.rerating:RerateRun.Interrupted"
        class_version = 1
        changed: int  # the corrections recorded before it stopped
        prepaid_charged: int  # subscriptions whose balance took them

    @event(Created)
    def __init__(
        self,
        usage_class: str,
        period_from: datetime | None,
        period_to: datetime | None,
        requested_by: str,
    ) -> None:
        self.usage_class = usage_class
        self.period_from = period_from
        self.period_to = period_to
        self.selected = 0
        self.changed = 0
        self.refused: list[list[str]] = []
        self.completed = False
        self.interrupted = False

    def correct(self, corrections: list[list[Any]], selected: int) -> None:
        """Record the corrections of a page of ``selected`` records."""
        self.selected += selected
        if corrections:
            self._correct(corrections=corrections)

    def refuse(self, record_id: str, code: str, message: str) -> None:
        self.refused.append([record_id, code, message])

    def complete(self) -> None:
        self._complete(
            counts={
                "selected": self.selected,
                "changed": self.changed,
                "unchanged": self.selected - self.changed - len(self.refused),
                "refused": len(self.refused),
            },
            refused=list(self.refused),
        )

    def interrupt(self, prepaid_charged: int) -> None:
        """Close a run whose process died, after its prepaid deltas were
        charged (``prepaid_charged`` subscriptions)."""
        if self.completed or self.interrupted:
            raise ValueError(f"rerate run {self.id} has ended already")
        self._interrupt(changed=self.changed, prepaid_charged=prepaid_charged)

    @event(Interrupted)
    def _interrupt(self, changed: int, prepaid_charged: int) -> None:
        self.interrupted = True

    @event(ChargesCorrected)
    def _correct(self, corrections: list[list[Any]]) -> None:
        self.changed += len(corrections)

    @event(Completed)
    def _complete(self, counts: dict[str, int], refused: list[list[str]]) -> None:
        self.completed = True
        self.selected = counts["selected"]
