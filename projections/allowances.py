"""The allowance ledger: the free units each loaded record took from each
allowance, so that offline rating knows what a subscription's allowances
have given in a bill period (``used``), whichever file the usage came in.

Rows come from the loaded rows of offline-rated usage whose breakdown lists
allowance uses; a failed batch takes its rows out, and a rerate correction
replaces the rows of the record it reprices.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from domain.bill_periods import Period
from domain.usage_loading import AllowancesSoFar
from projections.store import Row, Table, Transaction, ViewDatabase, utc_text

ALLOWANCE_USES = Table(
    "view_allowance_uses",
    (
        ("record_id", "TEXT NOT NULL"),
        ("allowance", "TEXT NOT NULL"),
        ("batch_id", "TEXT NOT NULL"),
        ("subscription_id", "TEXT NOT NULL"),
        ("start_time", "TEXT NOT NULL"),
        ("units", "BIGINT NOT NULL"),
        ("position", "BIGINT NOT NULL"),
    ),
    key=("record_id", "allowance"),
    indexes=(("subscription_id", "start_time"), ("batch_id",)),
)


# How the compact JSON of a breakdown that took no free units says so (codes
# are letters, digits and underscores: no string value holds this).
NO_ALLOWANCES = '"allowances":[]'


def uses_of(breakdown: Any) -> list[tuple[str, int]]:
    """(allowance code, units) of a record's breakdown: its JSON text, or
    None (or an object: rerate events written before breakdowns were text)."""
    if not breakdown:
        return []
    if isinstance(breakdown, str):
        if NO_ALLOWANCES in breakdown:  # most records: no need to parse
            return []
        breakdown = json.loads(breakdown)
    return [
        (use["code"], int(use["units"])) for use in breakdown.get("allowances") or ()
    ]


def record_uses(
    tx: Transaction,
    batch_id: str,
    records: Iterable[tuple[str, str, str, Any]],
    position: int,
) -> None:
    """Ledger rows of (record id, subscription id, start time, breakdown)."""
    rows = [
        (record_id, code, batch_id, subscription_id, start, units, position)
        for record_id, subscription_id, start, breakdown in records
        for code, units in uses_of(breakdown)
    ]
    if rows:
        ALLOWANCE_USES.write(tx, rows)


def replace_uses(
    tx: Transaction, records: Sequence[tuple[str, str, str, Any]], position: int
) -> None:
    """A rerate repriced these (record id, batch id, subscription id, new
    breakdown as a dict or JSON text). A rerate keeps, at most, the free
    units a record took, so only records already in the ledger change there;
    an allowance-order run may also give free units to a record that took
    none."""
    new = {record_id: breakdown for record_id, _, _, breakdown in records}
    found = ledger_rows(tx, list(new))
    first = {row["record_id"]: row for row in found}
    # Newly taking free units (only an allowance-order run gives them).
    rows = [
        (record_id, code, batch, subscription, _start_of(breakdown), units, position)
        for record_id, batch, subscription, breakdown in records
        if record_id not in first
        for code, units in uses_of(breakdown)
    ]
    changed = list(first)
    for i in range(0, len(changed), 500):  # bounded IN (…) lists
        some = changed[i : i + 500]
        marks = ", ".join("?" * len(some))
        tx.execute(
            f"DELETE FROM view_allowance_uses WHERE record_id IN ({marks})",  # noqa: S608
            some,
        )
    for record_id, row in first.items():
        breakdown = new[record_id]
        batch, subscription, start = (
            row["batch_id"],
            row["subscription_id"],
            row["start_time"],
        )
        rows += [
            (record_id, code, batch, subscription, start, units, position)
            for code, units in uses_of(breakdown)
        ]
    if rows:
        ALLOWANCE_USES.write(tx, rows)


def _start_of(breakdown: Any) -> str:
    """The usage start a breakdown names, as the ledger writes times."""
    if isinstance(breakdown, str):
        breakdown = json.loads(breakdown)
    start = utc_text(datetime.fromisoformat(breakdown["start"]))
    assert start is not None
    return start


def ledger_rows(tx: Transaction, ids: list[str]) -> list[Row]:
    """The ledger rows of these records (a rerate asks for a page of
    thousands, most often none of them in the ledger)."""
    return tx.select_in(ALLOWANCE_USES.name, "record_id", ids)


def used(db: ViewDatabase, subscription_id: str, period: Period) -> AllowancesSoFar:
    """Units each allowance gave the subscription's usage in the period, and
    the latest start of that usage."""
    start, end = period.bounds
    with db.read() as tx:
        rows = tx.fetchall(
            "SELECT allowance, SUM(units) AS units, MAX(start_time) AS latest "
            "FROM view_allowance_uses "
            "WHERE subscription_id = ? AND start_time >= ? AND start_time < ? "
            "GROUP BY allowance",
            (subscription_id, start, end),
        )
    return AllowancesSoFar(
        {row["allowance"]: int(row["units"]) for row in rows},
        max((row["latest"] for row in rows), default=None),
    )
