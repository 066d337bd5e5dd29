"""``/api/v1``: the detailed bill of a subscription and an account's bills.

- ``GET /subscriptions/{id}/bills/{period}`` — the itemised bill of one bill
  period: every usage line (postpaid and prepaid, marked), totals by usage
  class and payment type, adjustments (rerating corrections, made in this
  period, of records of periods already closed), the total;
- ``GET /accounts/{id}/bills?period=`` — with a period, the account's summary
  across its subscriptions; without, the periods that have usage or
  adjustments.

A period is named by its start date (``2026-11-01``, on the account's
bill-cycle day) or ``current``. Bills are computed from the read models when
asked (see ``projections/bills.py``).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request

from api.keys import Caller
from api.problems import Problem
from api.security import reader
from application.platform import Platform
from projections.bills import Bills, InvalidPeriod, UnknownAccount, UnknownSubscription

router = APIRouter(prefix="/api/v1", tags=["bills"])

PERIOD_HELP = "start date of the bill period (YYYY-MM-DD) or 'current'"


def bills(request: Request) -> Bills:
    platform: Platform = request.app.state.platform
    found = Bills(platform.usage_views, platform.views, now=platform.clock.now)
    found.catch_up()
    return found


def _invalid_period(field: str, error: InvalidPeriod) -> Problem:
    return Problem(
        422,
        "Invalid request",
        f"{field}: {error}",
        slug="invalid-request",
        errors=[{"path": field, "message": str(error)}],
    )


def _not_found(error: LookupError) -> Problem:
    return Problem(404, "Not found", str(error), slug="not-found")


@router.get(
    "/subscriptions/{subscription_id}/bills/{period}",
    summary="The detailed bill of a subscription for one bill period",
)
def subscription_bill(
    subscription_id: UUID,
    period: str = Path(description=PERIOD_HELP, examples=["2026-11-01"]),
    _: Caller = Depends(reader),
    found: Bills = Depends(bills),
) -> dict[str, Any]:
    try:
        return found.subscription_bill(subscription_id, period)
    except UnknownSubscription as error:
        raise _not_found(error) from None
    except InvalidPeriod as error:
        raise _invalid_period("path.period", error) from None


@router.get(
    "/accounts/{account_id}/bills",
    summary="An account's bill summary for a period, or its periods with usage",
    description="Without a period: the periods with usage or adjustments.",
)
def account_bills(
    account_id: UUID,
    period: str | None = Query(
        None, description=f"{PERIOD_HELP}; leave out to list the periods"
    ),
    _: Caller = Depends(reader),
    found: Bills = Depends(bills),
) -> dict[str, Any]:
    try:
        return found.account_bills(account_id, period)
    except UnknownAccount as error:
        raise _not_found(error) from None
    except InvalidPeriod as error:
        raise _invalid_period("query.period", error) from None
