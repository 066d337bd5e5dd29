"""``/api/v1``: customers, accounts, subscriptions, workflow events and items."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from api.keys import Caller
from api.problems import Problem
from api.security import requires
from application.customer_care import Conflict, InvalidRequest, NotFound
from application.platform import Platform

router = APIRouter(prefix="/api/v1", tags=["customer care"])
agent = requires("agent")
reader = requires("agent", "auditor")
T = TypeVar("T")


def platform(request: Request) -> Platform:
    found: Platform = request.app.state.platform
    return found


@contextmanager
def problems() -> Iterator[None]:
    """Map application errors to problem responses that say why."""
    try:
        yield
    except InvalidRequest as error:
        raise Problem(
            422,
            "Invalid request",
            str(error),
            slug="invalid-request",
            errors=[
                {"path": f"body.{error.field}", "message": str(error).split(": ", 1)[1]}
            ],
        ) from error
    except NotFound as error:
        raise Problem(404, "Not found", str(error), slug="not-found") from error
    except Conflict as error:
        raise Problem(409, "Conflict", str(error), slug="conflict") from error


class Created(BaseModel):
    id: UUID


class NewCustomer(BaseModel):
    name: str = Field(min_length=1)
    email: str = ""
    phone: str = ""
    language: str = "en"
    address: str = ""


class NewAccount(BaseModel):
    customer_id: UUID
    account_type: str = "CONS"
    bill_cycle_day: int = 1
    currency: str = "GBP"
    number: str = ""


class NewSubscription(BaseModel):
    account_id: UUID
    msisdn: str
    imsi: str = ""
    payment_type: str = "postpaid"
    rate_plan: str = "STD"
    status: str = "pending"


class RaiseRequest(BaseModel):
    event_type: str
    event_code: str
    note: str = ""
    manual_actions: list[str] = []


class ManualAction(BaseModel):
    action_code: str


class Reason(BaseModel):
    reason: str = ""


def _created(response: Response, location: str, new_id: UUID) -> Created:
    response.status_code = 201
    response.headers["Location"] = location
    return Created(id=new_id)


@router.post("/customers", status_code=201, summary="Register a customer")
def create_customer(
    body: NewCustomer,
    response: Response,
    caller: Caller = Depends(agent),
    p: Platform = Depends(platform),
) -> Created:
    with problems():
        new_id = p.care.register_customer(**body.model_dump(), actor=caller.name)
    return _created(response, f"/api/v1/customers/{new_id}", new_id)


@router.get("/customers/{customer_id}", summary="A customer")
def get_customer(
    customer_id: UUID, _: Caller = Depends(reader), p: Platform = Depends(platform)
) -> dict[str, Any]:
    with problems():
        customer = p.care.customer(customer_id)
    return customer.fields()


@router.post("/accounts", status_code=201, summary="Open an account")
def create_account(
    body: NewAccount,
    response: Response,
    caller: Caller = Depends(agent),
    p: Platform = Depends(platform),
) -> Created:
    with problems():
        new_id = p.care.open_account(**body.model_dump(), actor=caller.name)
    return _created(response, f"/api/v1/accounts/{new_id}", new_id)


@router.get("/accounts/{account_id}", summary="An account")
def get_account(
    account_id: UUID, _: Caller = Depends(reader), p: Platform = Depends(platform)
) -> dict[str, Any]:
    with problems():
        account = p.care.account(account_id)
    return {
        **account.fields(),
        "customer_id": str(account.customer_id),
        "balance": str(account.balance),
    }


@router.post("/subscriptions", status_code=201, summary="Create a subscription")
def create_subscription(
    body: NewSubscription,
    response: Response,
    caller: Caller = Depends(agent),
    p: Platform = Depends(platform),
) -> Created:
    with problems():
        new_id = p.care.create_subscription(**body.model_dump(), actor=caller.name)
    return _created(response, f"/api/v1/subscriptions/{new_id}", new_id)


@router.get("/subscriptions", summary="Find subscriptions by MSISDN or account")
def find_subscriptions(
    msisdn: str | None = None,
    account_id: UUID | None = None,
    _: Caller = Depends(reader),
    p: Platform = Depends(platform),
) -> list[dict[str, Any]]:
    p.views.catch_up()
    if msisdn:
        found = p.views.subscriptions.by_msisdn(msisdn)
        return [found] if found else []
    return list(
        p.views.subscriptions.list(account_id=str(account_id) if account_id else None)
    )


@router.get("/subscriptions/{subscription_id}", summary="A subscription")
def get_subscription(
    subscription_id: UUID, _: Caller = Depends(reader), p: Platform = Depends(platform)
) -> dict[str, Any]:
    p.views.catch_up()
    found = p.views.subscriptions.get(str(subscription_id))
    if found is None:
        raise Problem(
            404, "Not found", f"no subscription {subscription_id}", slug="not-found"
        )
    return dict(found)


def _raise(
    level: str,
    owner_id: UUID,
    body: RaiseRequest,
    caller: Caller,
    p: Platform,
    response: Response,
) -> Created:
    with problems():
        new_id = p.care.raise_workflow_event(
            owner_id=owner_id,
            level=level,
            event_type=body.event_type,
            event_code=body.event_code,
            note=body.note,
            manual_actions=body.manual_actions,
            actor=caller.name,
        )
    return _created(response, f"/api/v1/workflow-events/{new_id}", new_id)


@router.post(
    "/subscriptions/{subscription_id}/workflow-events",
    status_code=201,
    summary="Raise a workflow event on a subscription",
)
def raise_on_subscription(
    subscription_id: UUID,
    body: RaiseRequest,
    response: Response,
    caller: Caller = Depends(agent),
    p: Platform = Depends(platform),
) -> Created:
    return _raise("subscription", subscription_id, body, caller, p, response)


@router.post(
    "/accounts/{account_id}/workflow-events",
    status_code=201,
    summary="Raise a workflow event on an account",
)
def raise_on_account(
    account_id: UUID,
    body: RaiseRequest,
    response: Response,
    caller: Caller = Depends(agent),
    p: Platform = Depends(platform),
) -> Created:
    return _raise("account", account_id, body, caller, p, response)


def _history(
    owner_id: UUID, limit: int, offset: int, p: Platform
) -> list[dict[str, Any]]:
    p.views.catch_up()
    return list(
        p.views.workflow_events.history(str(owner_id), limit=limit, offset=offset)
    )


@router.get(
    "/subscriptions/{subscription_id}/history",
    summary="The workflow history of a subscription, oldest first",
)
def subscription_history(
    subscription_id: UUID,
    limit: int = Query(500, le=5000),
    offset: int = 0,
    _: Caller = Depends(reader),
    p: Platform = Depends(platform),
) -> list[dict[str, Any]]:
    return _history(subscription_id, limit, offset, p)


@router.get(
    "/accounts/{account_id}/history",
    summary="The workflow history of an account, oldest first",
)
def account_history(
    account_id: UUID,
    limit: int = Query(500, le=5000),
    offset: int = 0,
    _: Caller = Depends(reader),
    p: Platform = Depends(platform),
) -> list[dict[str, Any]]:
    return _history(account_id, limit, offset, p)


def _owner_of_event(p: Platform, workflow_event_id: UUID) -> UUID:
    p.views.catch_up()
    owner = p.views.workflow_events.owner_of(str(workflow_event_id))
    if owner is None:
        raise Problem(
            404, "Not found", f"no workflow event {workflow_event_id}", slug="not-found"
        )
    return UUID(owner[1])


def _owner_of_item(p: Platform, item_id: UUID) -> UUID:
    p.views.catch_up()
    owner = p.views.actioned_items.owner_of_item(str(item_id))
    if owner is None:
        raise Problem(404, "Not found", f"no actioned item {item_id}", slug="not-found")
    return UUID(owner[1])


@router.get(
    "/workflow-events/{workflow_event_id}",
    summary="A workflow event with its actioned items and linked events",
)
def get_workflow_event(
    workflow_event_id: UUID,
    _: Caller = Depends(reader),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    p.views.catch_up()
    found = p.views.workflow_events.get(str(workflow_event_id))
    if found is None:
        raise Problem(
            404, "Not found", f"no workflow event {workflow_event_id}", slug="not-found"
        )
    return dict(found)


def _event_command(
    p: Platform, workflow_event_id: UUID, command: Callable[[UUID], T]
) -> T:
    owner_id = _owner_of_event(p, workflow_event_id)
    with problems():
        return command(owner_id)


@router.post(
    "/workflow-events/{workflow_event_id}/actions",
    summary="Add a manual action to an open workflow event",
)
def add_action(
    workflow_event_id: UUID,
    body: ManualAction,
    caller: Caller = Depends(agent),
    p: Platform = Depends(platform),
) -> dict[str, str]:
    _event_command(
        p,
        workflow_event_id,
        lambda owner_id: p.care.add_manual_action(
            owner_id=owner_id,
            workflow_event_id=workflow_event_id,
            action_code=body.action_code,
            actor=caller.name,
        ),
    )
    return {"outcome": "action added"}


@router.post(
    "/workflow-events/{workflow_event_id}/resolve",
    summary="Resolve an open workflow event (its linked events follow)",
)
def resolve(
    workflow_event_id: UUID,
    caller: Caller = Depends(agent),
    p: Platform = Depends(platform),
) -> dict[str, str]:
    _event_command(
        p,
        workflow_event_id,
        lambda owner_id: p.care.resolve_workflow_event(
            owner_id=owner_id, workflow_event_id=workflow_event_id, actor=caller.name
        ),
    )
    return {"outcome": "resolved"}


@router.post(
    "/workflow-events/{workflow_event_id}/cancel",
    summary="Cancel an open workflow event and its items not yet sent",
)
def cancel(
    workflow_event_id: UUID,
    body: Reason | None = None,
    caller: Caller = Depends(agent),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    cancelled = _event_command(
        p,
        workflow_event_id,
        lambda owner_id: p.care.cancel_workflow_event(
            owner_id=owner_id,
            workflow_event_id=workflow_event_id,
            actor=caller.name,
            reason=body.reason if body else "",
        ),
    )
    return {"outcome": "cancelled", "cancelled_items": cancelled}


@router.get("/actioned-items", summary="The actioned-item queue")
def list_items(
    status: str | None = None,
    action_type: str | None = None,
    subscription_id: UUID | None = None,
    limit: int = Query(100, le=5000),
    offset: int = 0,
    _: Caller = Depends(reader),
    p: Platform = Depends(platform),
) -> list[dict[str, Any]]:
    p.views.catch_up()
    return list(
        p.views.actioned_items.list(
            status=status,
            action_type=action_type,
            subscription_id=str(subscription_id) if subscription_id else None,
            limit=limit,
            offset=offset,
        )
    )


@router.get("/actioned-items/{item_id}", summary="One actioned item")
def get_item(
    item_id: UUID, _: Caller = Depends(reader), p: Platform = Depends(platform)
) -> dict[str, Any]:
    p.views.catch_up()
    found = p.views.actioned_items.get(str(item_id))
    if found is None:
        raise Problem(404, "Not found", f"no actioned item {item_id}", slug="not-found")
    return dict(found)


def _item_command(p: Platform, item_id: UUID, command: Callable[[UUID], None]) -> None:
    """Run a command on the account or subscription that holds the item."""
    owner_id = _owner_of_item(p, item_id)
    with problems():
        command(owner_id)


@router.post(
    "/actioned-items/{item_id}/retry",
    summary="Retry a dead or failed actioned item now",
)
def retry_item(
    item_id: UUID, caller: Caller = Depends(agent), p: Platform = Depends(platform)
) -> dict[str, str]:
    _item_command(
        p,
        item_id,
        lambda owner_id: p.care.retry_item(
            owner_id=owner_id, item_id=str(item_id), actor=caller.name
        ),
    )
    return {"outcome": "retrying"}


@router.post(
    "/actioned-items/{item_id}/cancel", summary="Cancel an actioned item not yet sent"
)
def cancel_item(
    item_id: UUID,
    body: Reason | None = None,
    caller: Caller = Depends(agent),
    p: Platform = Depends(platform),
) -> dict[str, str]:
    _item_command(
        p,
        item_id,
        lambda owner_id: p.care.cancel_item(
            owner_id=owner_id,
            item_id=str(item_id),
            actor=caller.name,
            reason=body.reason if body else "",
        ),
    )
    return {"outcome": "cancelled"}


@router.post(
    "/actioned-items/{item_id}/complete", summary="Report an external action as done"
)
def complete_item(
    item_id: UUID,
    body: Reason | None = None,
    caller: Caller = Depends(agent),
    p: Platform = Depends(platform),
) -> dict[str, str]:
    _item_command(
        p,
        item_id,
        lambda owner_id: p.care.complete_external_item(
            owner_id=owner_id,
            item_id=str(item_id),
            actor=caller.name,
            note=body.reason if body else "",
        ),
    )
    return {"outcome": "completed"}
