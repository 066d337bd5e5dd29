"""The detailed bill of a subscription for one bill period, and the summary of
an account across its subscriptions, computed when asked from the usage views
(postpaid ``view_rated_usage`` and ``view_prepaid_usage``, each line marked
with its payment type) and the customer views. Amounts are ``Decimal`` and
strings in the result, with the digits the usage was rated with.

A bill period runs from the account's bill-cycle day (1-28) of one month,
00:00 UTC, to that day of the next month, exclusive; it is named by its start
date (``2026-11-01``), and ``current`` names the period holding now.

Rerating corrections (a rerate run's ``ChargesCorrected``, one row each in
``view_charge_corrections``) update the usage rows in place. Whether a bill
shows one as a changed line or as an adjustment depends on when it was made,
by ``corrected_at``: the timestamp of the stored event (eventsourcing takes it
from the machine's clock, not from the platform's injectable clock that names
``current``), so that a rebuilt view, and so every bill, is the same whatever
the clock says now.

- A correction made before the end of its record's period (the period still
  open) just changes the line: it shows the new charge and discount.
- A correction made at or after that end (the period closed) leaves the closed
  period's bill as it was billed: the line shows the charge and discount from
  before the first such late correction (``adjusted_in`` names the period that
  has its adjustment; its ``breakdown`` and ``allowance`` are left out, as the
  view keeps only the rerated ones). The bill of the subscription's period
  holding ``corrected_at`` gets one entry in ``adjustments`` per late
  correction — two rerate runs, two entries — with the record (id, usage
  class, start time, its period), the rerate run, the old and new net
  (charge less discount) and the delta of the net.
- ``adjustments`` in each total is the sum of the deltas of its adjustments,
  and ``net`` is charge less discount plus adjustments: in ``total``, by
  payment type and by usage class (a class may have adjustments and no
  records), for each subscription of an account summary and for the account.
  ``records``, ``charge``, ``discount`` and quantities are of the lines only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.bill_periods import Period, add_months, period_of
from projections.store import Row, Rows, Transaction

if TYPE_CHECKING:
    from projections.usage import UsageViews
    from projections.views import Views

CURRENT = "current"
TABLES = {"postpaid": "view_rated_usage", "prepaid": "view_prepaid_usage"}
# Corrections joined to their usage rows; {table}, {payment} and {ids} filled
# in by ``Bills._select`` (constants and placeholders only). The
# subscriptions' usage rows are found first (by their index), then each
# record's corrections (by theirs): corrections have no index by subscription.
CORRECTED = (
    "FROM {table} u JOIN view_charge_corrections c ON c.record_id = u.record_id "
    "WHERE u.subscription_id IN ({ids}) AND c.payment_type = '{payment}' "
)
COLUMNS = (
    "record_id, subscription_id, usage_class, start_time, duration_seconds, "
    "volume_bytes, units, direction, called_number, roaming, charge, discount, "
    "currency, breakdown"
)
SUMMARY_COLUMNS = COLUMNS.replace("breakdown", "NULL AS breakdown")
_NAME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CHUNK = 500  # subscription ids per IN (…) list


class InvalidPeriod(ValueError):
    """Neither ``current`` nor the start date of one of the account's periods."""


class UnknownSubscription(LookupError):
    pass


class UnknownAccount(LookupError):
    pass


# --- bill periods (pure) --------------------------------------------------------


def period_named(bill_cycle_day: int, name: str, now: datetime) -> Period:
    """The period called ``name``: ``current`` or its start date YYYY-MM-DD."""
    current = period_of(bill_cycle_day, now)
    if name == CURRENT:
        return current
    try:
        if not _NAME.fullmatch(name):
            raise ValueError("give its start date as YYYY-MM-DD or 'current'")
        start = date.fromisoformat(name)
        period = Period(start, add_months(start, 1))
    except ValueError as error:
        raise InvalidPeriod(f"{name!r} is not a bill period: {error}") from None
    if start.day != bill_cycle_day:
        raise InvalidPeriod(
            f"{name} does not start a bill period: the account's periods start "
            f"on day {bill_cycle_day} of each month (e.g. {current.name})"
        )
    return period


# --- lines and totals (pure) ---------------------------------------------------


def quantity_of(row: Row) -> dict[str, Any]:
    """Seconds of voice, bytes of data, or units of events."""
    for column, unit in (("duration_seconds", "seconds"), ("volume_bytes", "bytes")):
        if row[column] is not None:
            return {"value": int(row[column]), "unit": unit}
    return {"value": int(row["units"] or 0), "unit": "units"}


def describe(row: Row, breakdown: dict[str, Any] | None) -> str:
    """The destination offline rating found, else the called number, else
    the kind of usage (``data``, ``SMS``, ``MMS``, ``call``)."""
    destination = (breakdown or {}).get("destination")
    if destination not in (None, "*"):
        return str(destination)
    if row["called_number"]:
        return str(row["called_number"])
    if row["volume_bytes"] is not None:
        return "data"
    for kind in ("SMS", "MMS"):
        if str(row["usage_class"]).startswith(kind):
            return kind
    return "call" if row["duration_seconds"] is not None else str(row["usage_class"])


def bill_line(row: Row, payment_type: str) -> dict[str, Any]:
    """One usage row as a line of the bill."""
    breakdown = json.loads(row["breakdown"]) if row.get("breakdown") else None
    charge = Decimal(row["charge"] or 0)
    discount = Decimal(row["discount"] or 0)
    return {
        "time": row["start_time"],
        "record_id": row["record_id"],
        "payment_type": payment_type,
        "usage_class": row["usage_class"],
        "direction": row["direction"],
        "description": describe(row, breakdown),
        "called_number": row["called_number"],
        "quantity": quantity_of(row),
        "charge": str(charge),
        "discount": str(discount),
        "net": str(charge - discount),
        "currency": row["currency"],
        # Free units taken from allowances, as offline rating recorded them.
        "allowance": (breakdown or {}).get("allowances") or None,
        "roaming": None if row["roaming"] is None else bool(row["roaming"]),
        "rated_by": "network" if breakdown is None else "monetise",
        "breakdown": breakdown,
        "adjusted_in": None,  # see as_billed
    }


def as_billed(
    line: dict[str, Any], first_late: Row, bill_cycle_day: int
) -> dict[str, Any]:
    """``line`` of a closed period as it was billed: the charge and discount
    before ``first_late``, its record's first correction made after the
    period closed. The view's breakdown and allowances are the rerated ones,
    so they are left out rather than shown beside amounts they did not make."""
    charge = Decimal(first_late["old_charge"] or 0)
    discount = Decimal(first_late["old_discount"] or 0)
    adjusted_in = period_of(bill_cycle_day, _parse(first_late["corrected_at"]))
    return line | {
        "charge": str(charge),
        "discount": str(discount),
        "net": str(charge - discount),
        "allowance": None,
        "breakdown": None,
        "adjusted_in": adjusted_in.name,
    }


def adjustment(row: Row, payment_type: str, bill_cycle_day: int) -> dict[str, Any]:
    """A late correction (``view_charge_corrections`` joined to its usage row)
    as an adjustment line of the bill of the period it was made in."""
    old = Decimal(row["old_charge"] or 0) - Decimal(row["old_discount"] or 0)
    new = Decimal(row["new_charge"] or 0) - Decimal(row["new_discount"] or 0)
    return {
        "record_id": row["record_id"],
        "subscription_id": row["subscription_id"],
        "payment_type": payment_type,
        "usage_class": row["usage_class"],
        "time": row["start_time"],
        "period": period_of(bill_cycle_day, _parse(row["start_time"])).as_dict(),
        "quantity": quantity_of(row),
        "run_id": row["run_id"],
        "corrected_at": row["corrected_at"],
        "old_net": str(old),
        "new_net": str(new),
        # As the rerate run recorded it (new net less old net).
        "delta": str(Decimal(row["delta"])),
        "currency": row["currency"],
    }


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


Lines = list[dict[str, Any]]
Entries = Sequence[dict[str, Any]]  # lines or adjustments


def amounts(lines: Lines, adjustments: Entries = ()) -> dict[str, Any]:
    """Records, charge and discount of ``lines``, the sum of the deltas of
    ``adjustments``, and the net: charge less discount plus adjustments."""
    charge = sum((Decimal(line["charge"]) for line in lines), Decimal(0))
    discount = sum((Decimal(line["discount"]) for line in lines), Decimal(0))
    adjusted = sum((Decimal(item["delta"]) for item in adjustments), Decimal(0))
    return {
        "records": len(lines),
        "charge": str(charge),
        "discount": str(discount),
        "adjustments": str(adjusted),
        "net": str(charge - discount + adjusted),
    }


def _grouped(
    lines: Lines, adjustments: Entries, key: Callable[[dict[str, Any]], Any]
) -> list[tuple[Any, Lines, Lines]]:
    """(key, its lines, its adjustments), in key order."""
    groups: dict[Any, tuple[Lines, Lines]] = {}
    for line in lines:
        groups.setdefault(key(line), ([], []))[0].append(line)
    for item in adjustments:
        groups.setdefault(key(item), ([], []))[1].append(item)
    return [(name, *groups[name]) for name in sorted(groups)]


def totals(lines: Lines, adjustments: Entries = ()) -> dict[str, Any]:
    """Totals by usage class (and unit), by payment type, and the total, each
    with the adjustments of its usage class or payment type."""
    return {
        "totals_by_usage_class": [
            {
                "usage_class": usage_class,
                **amounts(group, adjusted),
                "quantity": {
                    "value": sum(line["quantity"]["value"] for line in group),
                    "unit": unit,
                },
            }
            for (usage_class, unit), group, adjusted in _grouped(
                lines,
                adjustments,
                lambda item: (item["usage_class"], item["quantity"]["unit"]),
            )
        ],
        "totals_by_payment_type": [
            {"payment_type": name, **amounts(group, adjusted)}
            for name, group, adjusted in _grouped(
                lines, adjustments, lambda item: item["payment_type"]
            )
        ],
        "adjustments": list(adjustments),
        "total": amounts(lines, adjustments),
    }


# --- queries --------------------------------------------------------------------


class Bills:
    """Bills from the usage views and the customer views; ``now`` gives the
    ``current`` period (the platform's clock)."""

    def __init__(
        self,
        usage_views: UsageViews,
        views: Views,
        now: Callable[[], datetime] | None = None,
    ):
        self.usage_views = usage_views
        self.views = views
        self.now = now or (lambda: datetime.now(UTC))

    def catch_up(self) -> None:
        """Bring the views that bills read up to date."""
        self.views.catch_up()
        self.usage_views.catch_up()

    def period(self, bill_cycle_day: int, period: str | Period | None) -> Period:
        if isinstance(period, Period):
            return period
        return period_named(bill_cycle_day, period or CURRENT, self.now())

    def subscription_bill(
        self, subscription_id: UUID | str, period: str | Period | None = None
    ) -> dict[str, Any]:
        """The itemised bill of a subscription for a period (default: current).
        Raises ``UnknownSubscription`` and ``InvalidPeriod``."""
        found = self.views.subscriptions.get(str(subscription_id))
        if found is None:
            raise UnknownSubscription(f"no subscription {subscription_id}")
        account = self.views.accounts.get(found["account_id"]) or {}
        bill_cycle_day = account.get("bill_cycle_day") or 1
        chosen = self.period(bill_cycle_day, period)
        ids = [found["id"]]
        with self.usage_views.db.read() as tx:  # lines and adjustments agree
            lines = self._lines(tx, ids, chosen, COLUMNS, bill_cycle_day)
            adjustments = self._adjustments(tx, ids, chosen, bill_cycle_day)
        return {
            "subscription_id": found["id"],
            "msisdn": found["msisdn"],
            "account_id": found["account_id"],
            "payment_type": found["payment_type"],
            "bill_cycle_day": bill_cycle_day,
            "period": chosen.as_dict(),
            "currency": found["currency"] or account.get("currency"),
            "lines": lines,
            **totals(lines, adjustments),
        }

    def account_bills(
        self, account_id: UUID | str, period: str | Period | None = None
    ) -> dict[str, Any]:
        """The summary of an account for a period: each subscription's totals
        and the account's. With ``period`` None: the periods that have usage
        or adjustments, newest first. Raises ``UnknownAccount`` and
        ``InvalidPeriod``."""
        account = self.views.accounts.get(str(account_id))
        if account is None:
            raise UnknownAccount(f"no account {account_id}")
        day = account["bill_cycle_day"]
        subscriptions = self.views.subscriptions.list(account["id"], limit=10**6)
        ids = [s["id"] for s in subscriptions]
        head = {"account_id": account["id"], "account_number": account["number"]}
        head |= {"bill_cycle_day": day, "currency": account["currency"]}
        if period is None:
            current = period_of(day, self.now()).name
            with self.usage_views.db.read() as tx:
                periods = self._periods(tx, ids, day)
            return head | {"current": current, "periods": periods}
        chosen = self.period(day, period)
        with self.usage_views.db.read() as tx:
            # Totals only: the breakdowns stay in the database.
            lines = self._lines(tx, ids, chosen, SUMMARY_COLUMNS, day)
            adjustments = self._adjustments(tx, ids, chosen, day)
        by_subscription: dict[str, tuple[Lines, Lines]] = {}
        for kind, items in enumerate((lines, adjustments)):
            for item in items:
                mine = by_subscription.setdefault(item["subscription_id"], ([], []))
                mine[kind].append(item)
        summaries = []
        for subscription in subscriptions:
            summary = totals(*by_subscription.get(subscription["id"], ([], [])))
            # The account lists the adjustments, each with its subscription.
            del summary["adjustments"], summary["totals_by_payment_type"]
            summaries.append(
                {key: subscription[key] for key in ("msisdn", "payment_type", "status")}
                | {"subscription_id": subscription["id"], **summary}
            )
        head |= {"period": chosen.as_dict(), "subscriptions": summaries}
        return head | totals(lines, adjustments)

    @staticmethod
    def _select(
        tx: Transaction, ids: list[str], sql: str, params: tuple[Any, ...] = ()
    ) -> list[tuple[str, Row]]:
        """(payment type, row) of ``sql`` on both usage views for ``ids``
        (``sql`` has ``{table}``, ``{payment}`` and ``{ids}`` to fill in; the
        ids' placeholders come first)."""
        found: list[tuple[str, Row]] = []
        for payment_type, table in TABLES.items():
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                query = sql.format(
                    table=table, payment=payment_type, ids=",".join("?" * len(chunk))
                )
                rows = tx.fetchall(query, (*chunk, *params))
                found += [(payment_type, row) for row in rows]
        return found

    def _lines(
        self,
        tx: Transaction,
        ids: list[str],
        period: Period,
        columns: str,
        bill_cycle_day: int,
    ) -> Lines:
        start, end = period.bounds
        found = self._select(
            tx,
            ids,
            f"SELECT {columns} FROM {{table}} "  # noqa: S608
            "WHERE subscription_id IN ({ids}) "
            "AND start_time >= ? AND start_time < ?",
            (start, end),
        )
        found.sort(key=lambda item: (item[1]["start_time"], item[1]["record_id"]))
        # The first correction of each record made once the period had closed.
        first_late: dict[str, Row] = {}
        for _, row in self._select(
            tx,
            ids,
            "SELECT c.record_id, c.old_charge, c.old_discount, c.corrected_at, "
            f"c.position {CORRECTED}"
            "AND u.start_time >= ? AND u.start_time < ? AND c.corrected_at >= ?",
            (start, end, end),
        ):
            known = first_late.get(row["record_id"])
            if known is None or row["position"] < known["position"]:
                first_late[row["record_id"]] = row
        lines = []
        for payment_type, row in found:
            line = bill_line(row, payment_type)
            line["subscription_id"] = row["subscription_id"]
            late = first_late.get(row["record_id"])
            lines.append(
                line if late is None else as_billed(line, late, bill_cycle_day)
            )
        return lines

    def _adjustments(
        self, tx: Transaction, ids: list[str], period: Period, bill_cycle_day: int
    ) -> Lines:
        """The corrections made in ``period`` of records of earlier periods: as
        periods follow each other, a correction made in this period after its
        record's period ended is one of a record that started before it."""
        start, end = period.bounds
        found = self._select(
            tx,
            ids,
            "SELECT c.run_id, c.record_id, c.subscription_id, c.old_charge, "
            "c.old_discount, c.new_charge, c.new_discount, c.delta, "
            "c.corrected_at, c.position, u.usage_class, u.start_time, "
            "u.duration_seconds, u.volume_bytes, u.units, u.currency "
            f"{CORRECTED}"
            "AND c.corrected_at >= ? AND c.corrected_at < ? AND u.start_time < ?",
            (start, end, start),
        )
        found.sort(key=lambda item: (item[1]["position"], item[1]["record_id"]))
        return [adjustment(row, payment, bill_cycle_day) for payment, row in found]

    def _periods(self, tx: Transaction, ids: list[str], bill_cycle_day: int) -> Rows:
        day = "substr(start_time, 1, 10)"
        records: dict[Period, int] = {}
        for _, row in self._select(
            tx,
            ids,
            f"SELECT {day} AS day, COUNT(*) AS n FROM {{table}} "  # noqa: S608
            f"WHERE subscription_id IN ({{ids}}) GROUP BY {day}",
        ):
            period = period_of(bill_cycle_day, date.fromisoformat(row["day"]))
            records[period] = records.get(period, 0) + int(row["n"])
        # Late corrections count in the period they were made in; periods
        # start at midnight, so the days tell which are late.
        made, used = "substr(c.corrected_at, 1, 10)", "substr(u.start_time, 1, 10)"
        adjustments: dict[Period, int] = {}
        for _, row in self._select(
            tx,
            ids,
            f"SELECT {made} AS made, {used} AS used, COUNT(*) AS n "
            f"{CORRECTED}GROUP BY {made}, {used}",
        ):
            made_on, used_on = map(date.fromisoformat, (row["made"], row["used"]))
            if made_on >= period_of(bill_cycle_day, used_on).end:
                period = period_of(bill_cycle_day, made_on)
                adjustments[period] = adjustments.get(period, 0) + int(row["n"])
        return [
            period.as_dict()
            | {
                "records": records.get(period, 0),
                "adjustments": adjustments.get(period, 0),
            }
            for period in sorted(records.keys() | adjustments.keys(), reverse=True)
        ]
