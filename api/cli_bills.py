"""``monetise bills``: the detailed bill of a subscription, an account's bills."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, NoReturn
from uuid import UUID

import typer

from application.platform import Platform
from application.settings import Settings
from projections.bills import Bills, InvalidPeriod, UnknownAccount, UnknownSubscription

Home = Annotated[Path | None, typer.Option(help="MONETISE_HOME for this run")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of text")]
PeriodOption = Annotated[
    str | None,
    typer.Option(help="Start date of the bill period (YYYY-MM-DD) or 'current'"),
]
UNITS = {"seconds": "s", "bytes": "B", "units": "units"}

bills = typer.Typer(
    help="Detailed bills of subscriptions and accounts.", no_args_is_help=True
)


def _refuse(message: str) -> NoReturn:
    typer.secho(f"Refused: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _id(platform: Platform, wanted: str, by: str) -> str:
    """An id as given, or the id of the subscription (MSISDN) or account
    (number) that ``wanted`` names."""
    try:
        return str(UUID(wanted))
    except ValueError:
        platform.views.catch_up()
        view: Any = getattr(platform.views, by)
        found = (
            view.by_msisdn(wanted) if by == "subscriptions" else view.by_number(wanted)
        )
        return str(found["id"]) if found else wanted


def _bill(home: Path | None, by: str, wanted: str, period: str | None) -> Any:
    platform = Platform(Settings(home=home) if home else Settings())
    try:
        found = Bills(platform.usage_views, platform.views, now=platform.clock.now)
        found.catch_up()
        if by == "subscriptions":
            return found.subscription_bill(_id(platform, wanted, by), period)
        return found.account_bills(_id(platform, wanted, by), period)
    except InvalidPeriod as error:
        raise typer.BadParameter(str(error), param_hint="--period") from None
    except (UnknownSubscription, UnknownAccount) as error:
        _refuse(str(error))
    finally:
        platform.close()


def _amounts(total: dict[str, Any], currency: str | None = "") -> str:
    # Adjustments only when there are some: most bills have none.
    adjusted = total.get("adjustments", "0")
    return (
        f"{total['records']} record(s); charge {total['charge']}, discount "
        f"{total['discount']}, "
        + (f"adjustments {adjusted}, " if Decimal(adjusted) else "")
        + f"net {total['net']} {currency or ''}"
    ).rstrip()


def _quantity(quantity: dict[str, Any]) -> str:
    return f"{quantity['value']} {UNITS.get(quantity['unit'], quantity['unit'])}"


def _period(period: dict[str, str]) -> str:
    return (
        f"period {period['name']}: {period['start'][:19]}Z to "
        f"{period['end'][:19]}Z (exclusive)"
    )


def _footer(bill: dict[str, Any], currency: str | None) -> None:
    typer.echo("Totals by usage class:")
    for row in bill["totals_by_usage_class"]:
        typer.echo(
            f"  {row['usage_class']:<12} {_quantity(row['quantity']):>16}  "
            f"{_amounts(row)}"
        )
    typer.echo("By payment type:")
    for row in bill["totals_by_payment_type"]:
        typer.echo(f"  {row['payment_type']:<12} {'':>16}  {_amounts(row)}")
    _adjustments(bill["adjustments"])
    typer.echo(f"Total: {_amounts(bill['total'], currency)}")


def _adjustments(adjustments: list[dict[str, Any]]) -> None:
    """Rerating corrections of records of closed periods, made in this one."""
    if not adjustments:
        typer.echo("Adjustments: none")
        return
    typer.echo("Adjustments (rerating of closed periods):")
    typer.echo(
        f"  {'time (UTC)':<19}  {'record':<16} {'class':<10} {'period':<10} "
        f"{'rerate run':<36} {'old net':>10} {'new net':>10} {'delta':>10}"
    )
    for item in adjustments:
        typer.echo(
            f"  {item['time'][:19].replace('T', ' ')}  {item['record_id']:<16} "
            f"{item['usage_class']:<10} {item['period']['name']:<10} "
            f"{item['run_id']:<36} {item['old_net']:>10} {item['new_net']:>10} "
            f"{item['delta']:>10}"
        )


@bills.command("subscription")
def subscription_bill(
    subscription: Annotated[str, typer.Argument(help="Subscription id or MSISDN")],
    period: PeriodOption = None,
    as_json: Json = False,
    home: Home = None,
) -> None:
    """The itemised bill of a subscription for a period (default: current)."""
    bill = _bill(home, "subscriptions", subscription, period)
    if as_json:
        typer.echo(json.dumps(bill, indent=2))
        return
    typer.echo(
        f"Bill of subscription {bill['subscription_id']} ({bill['msisdn']}, "
        f"{bill['payment_type']}), account {bill['account_id']}"
    )
    typer.echo(f"Period{_period(bill['period'])[6:]}, {bill['currency']}")
    typer.echo(
        f"{'time (UTC)':<19}  {'record':<16} {'class':<10} {'paid':<8} "
        f"{'description':<16} {'quantity':>14} {'charge':>10} {'discount':>10} "
        f"{'net':>10}"
    )
    for line in bill["lines"]:
        typer.echo(
            f"{line['time'][:19].replace('T', ' ')}  {line['record_id']:<16} "
            f"{line['usage_class']:<10} {line['payment_type']:<8} "
            f"{line['description']:<16} {_quantity(line['quantity']):>14} "
            f"{line['charge']:>10} {line['discount']:>10} {line['net']:>10}"
            + (" roaming" if line["roaming"] else "")
            # As billed: a rerate after the period closed is adjusted there.
            + (f" (adjusted in {line['adjusted_in']})" if line["adjusted_in"] else "")
        )
    _footer(bill, bill["currency"])


@bills.command("account")
def account_bills(
    account: Annotated[str, typer.Argument(help="Account id or account number")],
    period: PeriodOption = None,
    as_json: Json = False,
    home: Home = None,
) -> None:
    """An account's bill summary for a period, or its periods with usage.

    With --period: each subscription's totals and the account's. Without: the
    periods that have usage or adjustments, newest first.
    """
    found = _bill(home, "accounts", account, period)
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    name = f"Account {found['account_number'] or found['account_id']}"
    if period is None:
        typer.echo(
            f"{name}: periods with usage or adjustments (bill-cycle day "
            f"{found['bill_cycle_day']}, current {found['current']})"
        )
        for row in found["periods"]:
            adjusted = row.get("adjustments")
            typer.echo(
                f"  {_period(row)}, {row['records']} record(s)"
                + (f", {adjusted} adjustment(s)" if adjusted else "")
            )
        return
    typer.echo(f"{name} ({found['account_id']}), {_period(found['period'])}")
    for row in found["subscriptions"]:
        typer.echo(
            f"  {row['subscription_id']}  {row['msisdn'] or '':<15} "
            f"{row['payment_type'] or '':<8}  {_amounts(row['total'])}"
        )
    _footer(found, found["currency"])


def register(app: typer.Typer) -> None:
    app.add_typer(bills, name="bills")
