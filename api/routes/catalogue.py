"""``/api/v1/catalogue``: the business-configuration catalogue over HTTP."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import yaml
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from api.keys import Caller
from api.problems import Problem
from api.security import administrator, reader
from application.catalogue import CatalogueService
from domain.catalogue.aggregate import ItemNotFound
from domain.catalogue.fields import CatalogueRejected

router = APIRouter(prefix="/api/v1/catalogue", tags=["catalogue"])

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml")
_DOCUMENT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "object"}},
        },
    }
}


class SimpleKind(StrEnum):
    """Kinds whose items are addressed by one code."""

    event_types = "event-types"
    action_types = "action-types"
    action_codes = "action-codes"
    templates = "templates"
    usage_classes = "usage-classes"


class ChangeCounts(BaseModel):
    defined: int
    redefined: int
    deactivated: int
    reactivated: int
    unchanged: int
    events: int


class Outcome(BaseModel):
    outcome: str


class Deactivation(BaseModel):
    reason: str = ""


def service(request: Request) -> CatalogueService:
    catalogue: CatalogueService = request.app.state.platform.catalogue
    return catalogue


async def _document(request: Request) -> Any:
    raw = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    try:
        if content_type in YAML_TYPES:
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as error:
        raise Problem(
            422,
            "Unreadable document",
            f"the body is not valid "
            f"{'YAML' if content_type in YAML_TYPES else 'JSON'}: {error}",
            slug="unreadable-document",
            errors=[{"path": "", "message": str(error)}],
        ) from error


def _rejected(error: CatalogueRejected) -> Problem:
    count = len(error.problems)
    return Problem(
        422,
        "Invalid catalogue",
        f"{count} problem{'s' if count != 1 else ''} found; nothing was applied",
        slug="invalid-catalogue",
        errors=[p.as_dict() for p in error.problems],
    )


def _not_found(error: ItemNotFound) -> Problem:
    return Problem(404, "Not found", str(error), slug="not-found")


@router.get("", summary="Export the whole catalogue as one document")
def export_catalogue(
    format: str = Query("json", pattern="^(json|yaml)$"),
    _: Caller = Depends(reader),
    catalogue: CatalogueService = Depends(service),
) -> Response:
    document = catalogue.export_document()
    if format == "yaml":
        return Response(
            yaml.safe_dump(document, sort_keys=False), media_type="application/yaml"
        )
    return Response(json.dumps(document, indent=2), media_type="application/json")


@router.put(
    "",
    summary="Import a whole catalogue document (all or nothing)",
    openapi_extra=_DOCUMENT_BODY,
)
async def import_catalogue(
    request: Request,
    prune: bool = Query(
        False, description="deactivate items missing from the document"
    ),
    caller: Caller = Depends(administrator),
    catalogue: CatalogueService = Depends(service),
) -> ChangeCounts:
    document = await _document(request)
    from starlette.concurrency import run_in_threadpool

    try:
        counts = await run_in_threadpool(
            catalogue.import_document, document, caller.name, prune=prune
        )
    except CatalogueRejected as error:
        raise _rejected(error) from error
    return ChangeCounts(**counts)


def _list(
    kind: str, active: bool | None, catalogue: CatalogueService
) -> list[dict[str, Any]]:
    return catalogue.list_items(kind, active=active)


def _get(kind: str, key: str, catalogue: CatalogueService) -> dict[str, Any]:
    try:
        return catalogue.get_item(kind, key)
    except ItemNotFound as error:
        raise _not_found(error) from error


def _put(
    kind: str, key: str, body: Any, caller: Caller, catalogue: CatalogueService
) -> ChangeCounts:
    if not isinstance(body, dict):
        raise Problem(
            422,
            "Invalid catalogue",
            "the item must be an object",
            slug="invalid-catalogue",
            errors=[{"path": "", "message": "must be an object"}],
        )
    try:
        return ChangeCounts(**catalogue.put_item(kind, key, body, caller.name))
    except CatalogueRejected as error:
        raise _rejected(error) from error


def _history(kind: str, key: str, catalogue: CatalogueService) -> list[dict[str, Any]]:
    try:
        return catalogue.history(kind, key)
    except ItemNotFound as error:
        raise _not_found(error) from error


def _deactivate(
    kind: str,
    key: str,
    body: Deactivation | None,
    caller: Caller,
    catalogue: CatalogueService,
) -> Outcome:
    try:
        changed = catalogue.deactivate(
            kind, key, caller.name, body.reason if body else ""
        )
    except ItemNotFound as error:
        raise _not_found(error) from error
    return Outcome(outcome="deactivated" if changed else "already inactive")


def _reactivate(
    kind: str, key: str, caller: Caller, catalogue: CatalogueService
) -> Outcome:
    try:
        changed = catalogue.reactivate(kind, key, caller.name)
    except ItemNotFound as error:
        raise _not_found(error) from error
    return Outcome(outcome="reactivated" if changed else "already active")


def _remove(
    kind: str, key: str, caller: Caller, catalogue: CatalogueService
) -> Outcome:
    try:
        return Outcome(outcome=catalogue.remove(kind, key, caller.name))
    except ItemNotFound as error:
        raise _not_found(error) from error


# --- event codes: addressed as /event-codes/{type}/{code} -------------------


@router.get("/event-codes", summary="List event codes")
def list_event_codes(
    active: bool | None = None,
    _: Caller = Depends(reader),
    catalogue: CatalogueService = Depends(service),
) -> list[dict[str, Any]]:
    return _list("event-codes", active, catalogue)


@router.get("/event-codes/{type}/{code}", summary="Get one event code")
def get_event_code(
    type: str,
    code: str,
    _: Caller = Depends(reader),
    catalogue: CatalogueService = Depends(service),
) -> dict[str, Any]:
    return _get("event-codes", f"{type} {code}", catalogue)


@router.put("/event-codes/{type}/{code}", summary="Define or redefine an event code")
def put_event_code(
    type: str,
    code: str,
    body: dict[str, Any],
    caller: Caller = Depends(administrator),
    catalogue: CatalogueService = Depends(service),
) -> ChangeCounts:
    return _put("event-codes", f"{type} {code}", body, caller, catalogue)


@router.get(
    "/event-codes/{type}/{code}/history",
    summary="Every change of one event code, with actor and time",
)
def event_code_history(
    type: str,
    code: str,
    _: Caller = Depends(reader),
    catalogue: CatalogueService = Depends(service),
) -> list[dict[str, Any]]:
    return _history("event-codes", f"{type} {code}", catalogue)


@router.post("/event-codes/{type}/{code}/deactivate", summary="Deactivate")
def deactivate_event_code(
    type: str,
    code: str,
    body: Deactivation | None = None,
    caller: Caller = Depends(administrator),
    catalogue: CatalogueService = Depends(service),
) -> Outcome:
    return _deactivate("event-codes", f"{type} {code}", body, caller, catalogue)


@router.post("/event-codes/{type}/{code}/reactivate", summary="Reactivate")
def reactivate_event_code(
    type: str,
    code: str,
    caller: Caller = Depends(administrator),
    catalogue: CatalogueService = Depends(service),
) -> Outcome:
    return _reactivate("event-codes", f"{type} {code}", caller, catalogue)


@router.delete(
    "/event-codes/{type}/{code}", summary="Remove, or deactivate when referenced"
)
def remove_event_code(
    type: str,
    code: str,
    caller: Caller = Depends(administrator),
    catalogue: CatalogueService = Depends(service),
) -> Outcome:
    return _remove("event-codes", f"{type} {code}", caller, catalogue)


# --- the other kinds: addressed as /{kind}/{code} ---------------------------


@router.get("/{kind}", summary="List the items of one kind")
def list_items(
    kind: SimpleKind,
    active: bool | None = None,
    _: Caller = Depends(reader),
    catalogue: CatalogueService = Depends(service),
) -> list[dict[str, Any]]:
    return _list(kind.value, active, catalogue)


@router.get("/{kind}/{code}", summary="Get one item")
def get_item(
    kind: SimpleKind,
    code: str,
    _: Caller = Depends(reader),
    catalogue: CatalogueService = Depends(service),
) -> dict[str, Any]:
    return _get(kind.value, code, catalogue)


@router.put("/{kind}/{code}", summary="Define or redefine one item")
def put_item(
    kind: SimpleKind,
    code: str,
    body: dict[str, Any],
    caller: Caller = Depends(administrator),
    catalogue: CatalogueService = Depends(service),
) -> ChangeCounts:
    return _put(kind.value, code, body, caller, catalogue)


@router.get(
    "/{kind}/{code}/history", summary="Every change of one item, with actor and time"
)
def item_history(
    kind: SimpleKind,
    code: str,
    _: Caller = Depends(reader),
    catalogue: CatalogueService = Depends(service),
) -> list[dict[str, Any]]:
    return _history(kind.value, code, catalogue)


@router.post("/{kind}/{code}/deactivate", summary="Deactivate")
def deactivate_item(
    kind: SimpleKind,
    code: str,
    body: Deactivation | None = None,
    caller: Caller = Depends(administrator),
    catalogue: CatalogueService = Depends(service),
) -> Outcome:
    return _deactivate(kind.value, code, body, caller, catalogue)


@router.post("/{kind}/{code}/reactivate", summary="Reactivate")
def reactivate_item(
    kind: SimpleKind,
    code: str,
    caller: Caller = Depends(administrator),
    catalogue: CatalogueService = Depends(service),
) -> Outcome:
    return _reactivate(kind.value, code, caller, catalogue)


@router.delete("/{kind}/{code}", summary="Remove, or deactivate when referenced")
def remove_item(
    kind: SimpleKind,
    code: str,
    caller: Caller = Depends(administrator),
    catalogue: CatalogueService = Depends(service),
) -> Outcome:
    return _remove(kind.value, code, caller, catalogue)
