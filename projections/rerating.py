"""Read models of rerating runs: the runs and their charge corrections.

The corrections also change the rows of the rated-usage and prepaid-usage
views; ``projections.usage`` applies them in the same projection as the loads,
so that they follow the loads before them in the log.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from domain.rerating import RerateRun
from projections import allowances
from projections.store import (
    Row,
    Rows,
    Table,
    Transaction,
    ViewDatabase,
    json_text,
    utc_text,
)

RERATE_RUNS = Table(
    "view_rerate_runs",
    (
        ("id", "TEXT NOT NULL"),
        ("usage_class", "TEXT NOT NULL"),
        ("period_from", "TEXT"),
        ("period_to", "TEXT"),
        ("requested_by", "TEXT NOT NULL"),
        ("reason", "TEXT NOT NULL"),  # requested, or allowance_order
        ("batch_id", "TEXT"),  # an allowance-order run's: the batch that led to it
        ("status", "TEXT NOT NULL"),
        ("selected", "BIGINT NOT NULL"),
        ("changed", "BIGINT NOT NULL"),
        ("refused", "TEXT NOT NULL"),  # JSON: [[record id, code, message]]
        ("requested_at", "TEXT NOT NULL"),
        ("completed_at", "TEXT"),
        ("position", "BIGINT NOT NULL"),
    ),
    key=("id",),
    indexes=(("requested_at",),),
)
CORRECTIONS = Table(
    "view_charge_corrections",
    (
        ("run_id", "TEXT NOT NULL"),
        ("record_id", "TEXT NOT NULL"),
        ("batch_id", "TEXT NOT NULL"),
        ("payment_type", "TEXT NOT NULL"),
        ("subscription_id", "TEXT NOT NULL"),
        ("old_charge", "TEXT"),
        ("new_charge", "TEXT NOT NULL"),
        ("delta", "TEXT NOT NULL"),  # of the net: charge less discount
        # The discounts, so that bills can show the old and new net.
        ("old_discount", "TEXT"),
        ("new_discount", "TEXT"),
        ("corrected_at", "TEXT NOT NULL"),  # the event's time: stable on rebuild
        ("position", "BIGINT NOT NULL"),
    ),
    key=("run_id", "record_id"),
    exact_types=True,  # COPY in binary
    # Bills find a subscription's corrections through its usage rows, by
    # record: a run corrects records in their order, so this index grows in
    # one sweep, where one by subscription took an entry on a page of each
    # subscription in every transaction (a third of the cost of a rerate's
    # corrections on SQLite).
    indexes=(("record_id",),),
)


def apply_rerating(tx: Transaction, event: Any, at: str | None, position: int) -> None:
    run_id = str(event.originator_id)
    if isinstance(event, RerateRun.Created):
        RERATE_RUNS.write(
            tx,
            [
                (
                    run_id,
                    event.usage_class,
                    utc_text(event.period_from),
                    utc_text(event.period_to),
                    event.requested_by,
                    event.reason,
                    event.batch_id,
                    "running",
                    0,
                    0,
                    "[]",
                    at,
                    None,
                    position,
                )
            ],
        )
    elif isinstance(event, RerateRun.ChargesCorrected):
        # The breakdown is stored as the event carries it, as JSON text
        # (json_text of an object for an event written before it was text).
        for table, payment in (
            ("view_rated_usage", "postpaid"),
            ("view_prepaid_usage", "prepaid"),
        ):
            tx.update_rows(
                table,
                "record_id",
                ("charge", "discount", "breakdown", "position"),
                [
                    (c[5], c[8], _json(c[9]), position, c[0])
                    for c in event.corrections
                    if c[2] == payment
                ],
                # In binary: parsing the text of these rows and of the
                # corrections below (the breakdowns, ~1 kB each) was an eighth
                # of the server's work in a rerate (perf, 300,000 records).
                ("text", "text", "text", "int8", "text"),
            )
        # Free units a repriced record no longer takes leave the ledger.
        allowances.replace_uses(
            tx, [(c[0], c[1], c[3], c[9]) for c in event.corrections], position
        )
        # New rows only (a run corrects a record once): COPY on PostgreSQL.
        CORRECTIONS.insert_new(
            tx,
            # c[:9]: record id … delta, old discount, new discount (as the
            # event's CORRECTION_COLUMNS).
            [(run_id, *c[:9], at, position) for c in event.corrections],
        )
        tx.execute(
            "UPDATE view_rerate_runs SET changed = changed + ?, position = ? "
            "WHERE id = ?",
            (len(event.corrections), position, run_id),
        )
    elif isinstance(event, RerateRun.Completed):
        tx.execute(
            "UPDATE view_rerate_runs SET status = 'completed', selected = ?, "
            "refused = ?, completed_at = ?, position = ? WHERE id = ?",
            (event.counts["selected"], json_text(event.refused), at, position, run_id),
        )
    elif isinstance(event, RerateRun.Interrupted):
        # completed_at: when it was closed (what it selected is not known)
        tx.execute(
            "UPDATE view_rerate_runs SET status = 'interrupted', completed_at = ?, "
            "position = ? WHERE id = ?",
            (at, position, run_id),
        )


def running_runs(tx: Transaction) -> list[str]:
    """Ids of the runs neither completed nor interrupted."""
    return [
        row["id"]
        for row in tx.fetchall(
            "SELECT id FROM view_rerate_runs WHERE status = 'running' ORDER BY id"
        )
    ]


def prepaid_deltas(tx: Transaction, run_id: str) -> dict[str, tuple[Decimal, int]]:
    """The net change of each prepaid subscription's usage by a run, and how
    many of its records changed."""
    deltas: dict[str, tuple[Decimal, int]] = {}
    for row in tx.fetchall(
        "SELECT subscription_id, delta FROM view_charge_corrections "
        "WHERE run_id = ? AND payment_type = 'prepaid'",
        (run_id,),
    ):
        amount, count = deltas.get(row["subscription_id"], (Decimal(0), 0))
        deltas[row["subscription_id"]] = (amount + Decimal(row["delta"]), count + 1)
    return deltas


def _json(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else json_text(value)


def rerate_run(db: ViewDatabase, run_id: str, limit: int, offset: int) -> Row | None:
    """A rerating run with a page of its corrections."""
    with db.read() as tx:
        run = tx.fetchone("SELECT * FROM view_rerate_runs WHERE id = ?", (run_id,))
    if run is None:
        return None
    corrections = db.select(
        CORRECTIONS.name, {"run_id = ?": run_id}, "record_id", limit, offset
    )
    return {
        **{k: run[k] for k in RERATE_RUNS.column_names if k != "position"},
        "refused": json.loads(run["refused"]),
        "corrections": [
            {k: c[k] for k in CORRECTIONS.column_names if k != "position"}
            for c in corrections
        ],
    }


def rerate_runs(db: ViewDatabase, limit: int, offset: int) -> Rows:
    rows = db.select(RERATE_RUNS.name, {}, "requested_at DESC", limit, offset)
    return [
        {k: r[k] for k in RERATE_RUNS.column_names if k not in ("position",)}
        | {"refused": json.loads(r["refused"])}
        for r in rows
    ]
