"""``monetise`` commands for agents: customers, subscriptions, workflow events."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import typer

from application.customer_care import Conflict, InvalidRequest, NotFound
from application.platform import Platform
from application.settings import Settings

Home = Annotated[Path | None, typer.Option(help="MONETISE_HOME for this run")]
Actor = Annotated[str, typer.Option(help="Who acts (recorded on the events)")]
# The same default as the catalogue commands: the operating-system user.
DEFAULT_ACTOR = f"cli:{getpass.getuser()}"

customers = typer.Typer(help="Register customers.", no_args_is_help=True)
accounts = typer.Typer(help="Open accounts.", no_args_is_help=True)
subscriptions = typer.Typer(
    help="Create and look up subscriptions.", no_args_is_help=True
)
events = typer.Typer(
    help="Raise, show, resolve and cancel workflow events.", no_args_is_help=True
)
items = typer.Typer(
    help="The actioned-item queue: list, retry, cancel.", no_args_is_help=True
)


@contextmanager
def _platform(home: Path | None) -> Iterator[Platform]:
    platform = Platform(Settings(home=home) if home else Settings())
    try:
        yield platform
    except (InvalidRequest, NotFound, Conflict) as error:
        typer.secho(f"Refused: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    finally:
        platform.close()


def _print(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def _owner(
    platform: Platform,
    lookup: Callable[[str], tuple[str, str] | None],
    thing: str,
    wanted: str,
) -> UUID:
    platform.views.catch_up()
    found = lookup(wanted)
    if found is None:
        raise NotFound(f"no {thing} {wanted}")
    return UUID(found[1])


@customers.command("create")
def create_customer(
    name: str,
    email: str = "",
    phone: str = "",
    language: str = "en",
    address: str = "",
    actor: Actor = DEFAULT_ACTOR,
    home: Home = None,
) -> None:
    """Register a customer; prints its id."""
    with _platform(home) as p:
        typer.echo(
            p.care.register_customer(
                name=name,
                email=email,
                phone=phone,
                language=language,
                address=address,
                actor=actor,
            )
        )


@accounts.command("create")
def create_account(
    customer_id: UUID,
    account_type: str = "CONS",
    bill_cycle_day: int = 1,
    currency: str = "GBP",
    actor: Actor = DEFAULT_ACTOR,
    home: Home = None,
) -> None:
    """Open an account for a customer; prints its id."""
    with _platform(home) as p:
        typer.echo(
            p.care.open_account(
                customer_id=customer_id,
                account_type=account_type,
                bill_cycle_day=bill_cycle_day,
                currency=currency,
                actor=actor,
            )
        )


@subscriptions.command("create")
def create_subscription(
    account_id: UUID,
    msisdn: str,
    imsi: str = "",
    payment_type: str = "postpaid",
    rate_plan: str = "STD",
    status: str = "pending",
    actor: Actor = DEFAULT_ACTOR,
    home: Home = None,
) -> None:
    """Create a subscription on an account; prints its id."""
    with _platform(home) as p:
        typer.echo(
            p.care.create_subscription(
                account_id=account_id,
                msisdn=msisdn,
                imsi=imsi,
                payment_type=payment_type,
                rate_plan=rate_plan,
                status=status,
                actor=actor,
            )
        )


@subscriptions.command("show")
def show_subscription(subscription_id: UUID, home: Home = None) -> None:
    """A subscription: status, bars, services, prepaid balance, rate plan."""
    with _platform(home) as p:
        p.views.catch_up()
        found = p.views.subscriptions.get(str(subscription_id))
        if found is None:
            raise NotFound(f"no subscription {subscription_id}")
        _print(found)


@subscriptions.command("find")
def find_subscription(msisdn: str, home: Home = None) -> None:
    """The subscription that holds an MSISDN."""
    with _platform(home) as p:
        p.views.catch_up()
        found = p.views.subscriptions.by_msisdn(msisdn)
        if found is None:
            raise NotFound(f"no subscription with MSISDN {msisdn}")
        _print(found)


@subscriptions.command("history")
def subscription_history(subscription_id: UUID, home: Home = None) -> None:
    """The workflow history of a subscription, oldest first."""
    with _platform(home) as p:
        p.views.catch_up()
        for entry in p.views.workflow_events.history(
            str(subscription_id), limit=5000, offset=0
        ):
            typer.echo(f"{entry['at']}  {entry['summary']}")


@events.command("raise")
def raise_event(
    owner_id: UUID,
    event: Annotated[list[str], typer.Argument(help="TYPE CODE, e.g. BFEA DBAR")],
    level: str = "subscription",
    note: str = "",
    manual: Annotated[list[str] | None, typer.Option(help="manual action code")] = None,
    actor: Actor = DEFAULT_ACTOR,
    home: Home = None,
) -> None:
    """Raise a workflow event on a subscription (or --level account)."""
    words = " ".join(event).split()
    if len(words) != 2:
        raise typer.BadParameter(
            f"{' '.join(words)!r} is not TYPE CODE, e.g. BFEA DBAR", param_hint="EVENT"
        )
    event_type, event_code = words
    with _platform(home) as p:
        typer.echo(
            p.care.raise_workflow_event(
                owner_id=owner_id,
                level=level,
                event_type=event_type,
                event_code=event_code,
                note=note,
                manual_actions=manual or [],
                actor=actor,
            )
        )


@events.command("show")
def show_event(workflow_event_id: UUID, home: Home = None) -> None:
    """A workflow event with its actioned items and linked events."""
    with _platform(home) as p:
        p.views.catch_up()
        found = p.views.workflow_events.get(str(workflow_event_id))
        if found is None:
            raise NotFound(f"no workflow event {workflow_event_id}")
        _print(found)


@events.command("resolve")
def resolve_event(
    workflow_event_id: UUID, actor: Actor = DEFAULT_ACTOR, home: Home = None
) -> None:
    """Resolve an open workflow event; its linked events follow."""
    with _platform(home) as p:
        owner = _owner(
            p,
            p.views.workflow_events.owner_of,
            "workflow event",
            str(workflow_event_id),
        )
        p.care.resolve_workflow_event(
            owner_id=owner, workflow_event_id=workflow_event_id, actor=actor
        )
        typer.echo("resolved")


@events.command("cancel")
def cancel_event(
    workflow_event_id: UUID,
    reason: str = "",
    actor: Actor = DEFAULT_ACTOR,
    home: Home = None,
) -> None:
    """Cancel an open workflow event and its items not yet sent."""
    with _platform(home) as p:
        owner = _owner(
            p,
            p.views.workflow_events.owner_of,
            "workflow event",
            str(workflow_event_id),
        )
        cancelled = p.care.cancel_workflow_event(
            owner_id=owner,
            workflow_event_id=workflow_event_id,
            actor=actor,
            reason=reason,
        )
        typer.echo(f"cancelled, with {len(cancelled)} item(s)")


@events.command("add-action")
def add_action(
    workflow_event_id: UUID,
    action_code: str,
    actor: Actor = DEFAULT_ACTOR,
    home: Home = None,
) -> None:
    """Add a manual action to an open workflow event."""
    with _platform(home) as p:
        owner = _owner(
            p,
            p.views.workflow_events.owner_of,
            "workflow event",
            str(workflow_event_id),
        )
        p.care.add_manual_action(
            owner_id=owner,
            workflow_event_id=workflow_event_id,
            action_code=action_code,
            actor=actor,
        )
        typer.echo("action added")


@items.command("list")
def list_items(
    status: str | None = None,
    action_type: str | None = None,
    limit: int = 100,
    home: Home = None,
) -> None:
    """Actioned items, by status (awaiting, sent, error, dead…)."""
    with _platform(home) as p:
        p.views.catch_up()
        for item in p.views.actioned_items.list(
            status=status, action_type=action_type, limit=limit
        ):
            what = item.get("action_code") or item.get("channel") or ""
            typer.echo(
                f"{item['item_id']}  {item['status']:<9} {what:<8} "
                f"due {item['due_at']}  {item.get('last_error') or ''}"
            )


@items.command("retry")
def retry_item(item_id: UUID, actor: Actor = DEFAULT_ACTOR, home: Home = None) -> None:
    """Retry a dead or failed actioned item."""
    with _platform(home) as p:
        owner = _owner(
            p, p.views.actioned_items.owner_of_item, "actioned item", str(item_id)
        )
        p.care.retry_item(owner_id=owner, item_id=str(item_id), actor=actor)
        typer.echo("retrying")


@items.command("cancel")
def cancel_item(
    item_id: UUID, reason: str = "", actor: Actor = DEFAULT_ACTOR, home: Home = None
) -> None:
    """Cancel an actioned item not yet sent."""
    with _platform(home) as p:
        owner = _owner(
            p, p.views.actioned_items.owner_of_item, "actioned item", str(item_id)
        )
        p.care.cancel_item(
            owner_id=owner, item_id=str(item_id), actor=actor, reason=reason
        )
        typer.echo("cancelled")


def register(app: typer.Typer) -> None:
    app.add_typer(customers, name="customers")
    app.add_typer(accounts, name="accounts")
    app.add_typer(subscriptions, name="subscriptions")
    app.add_typer(events, name="events")
    app.add_typer(items, name="items")
