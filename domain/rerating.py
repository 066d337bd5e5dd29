"""The RerateRun aggregate: one offline rerating of a usage class over a period.

After a tariff was wrong and has been fixed, an operator reruns the pricing
of one usage class code for a From/To period (or all time). The run's stream
is the audit of it: what was asked and by whom, and per changed record the old
charge, the new charge and the delta, with the new breakdown. A record whose
price did not change is not corrected, so running the same rerate again
records a run with no corrections.

The rated-usage job records runs of its own (reason ``allowance_order``):
free units go to usage in time order, so when a file brings usage earlier
than usage that took free units before it, the records from there on in that
bill period are priced again in time order, and those whose charge or free
units changed are corrected here, just as a rerate's are.

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


# Why a run reprices: an operator asked (a tariff was wrong), or usage that
# arrived late took the free units that later usage had been given first.
REQUESTED: Final = "requested"
ALLOWANCE_ORDER: Final = "allowance_order"
# The usage class of an allowance-order run: it reprices whichever classes
# share the allowances.
ALLOWANCE_CLASSES: Final = "*"


class RerateRun(Aggregate):
    TOPIC = "monetise.rerating:RerateRun"
    class_version = 1

    class Created(Aggregate.Created):
        """A rerate was requested, or the rated-usage job found that a batch
        loaded usage earlier than usage that had taken free units before it
        (``reason`` ALLOWANCE_ORDER; ``batch_id`` is that batch)."""

        TOPIC = "monetise.rerating:RerateRun.Created"
        class_version = 2  # v2: reason and batch_id
        usage_class: str
        period_from: datetime | None
        period_to: datetime | None
        requested_by: str
        reason: str
        batch_id: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Every run before v2 was an operator's rerate."""
            state["reason"] = REQUESTED
            state["batch_id"] = None

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
        reason: str = REQUESTED,
        batch_id: str | None = None,
    ) -> None:
        self.usage_class = usage_class
        self.period_from = period_from
        self.period_to = period_to
        self.reason = reason
        self.batch_id = batch_id
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
