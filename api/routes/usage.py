"""``/api/v1``: usage files in, usage batches and a subscription's usage out.

- ``/schemas`` — the published JSON Schemas of the generic usage format
  (public: partners validate their files before they send them);
- ``PUT /inbound/{directory}/{name}`` — upload a usage file; it lands in the
  inbound directory exactly as a dropped file does, and the daemon takes it;
- ``/usage-batches`` — batches, their record errors, reprocessing;
- ``/subscriptions/{id}/rated-usage`` and ``/prepaid-usage`` — loaded usage of
  a period with its totals.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from importlib import resources
from typing import Any, Literal
from uuid import UUID

import anyio.from_thread
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from api.keys import Caller
from api.problems import Problem
from api.security import requires
from application.platform import Platform
from application.usage import UnknownBatch
from domain.usage_batch import BatchNotReprocessable
from ingest.inbound import safe_file_name, write_inbound
from projections.store import utc_text

router = APIRouter(prefix="/api/v1", tags=["usage"])
reader = requires("agent", "auditor")
operator = requires("agent")
ingester = requires("ingest")

SCHEMA_JSON = "application/schema+json"
_SCHEMAS = {
    entry.name.removesuffix(".schema.json"): entry
    for entry in resources.files("ingest").joinpath("schemas").iterdir()
    if entry.name.endswith(".schema.json")
}
_INSTANT = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)"
    r"(?P<offset>[Zz]|[+\- ]\d{2}:\d{2})?"
)
Page = Query(100, ge=1, le=5000)
Skip = Query(0, ge=0)
BatchStatus = Literal["received", "staged", "loading", "completed", "failed"]
BatchKind = Literal["rated", "unrated"]
ErrorClass = Literal["schema", "configuration", "duplicate"]
InboundDirectory = Literal["rated", "unrated", "openet", "ocs"]
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_BINARY_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/octet-stream": _BINARY}}
}


class SchemaRef(BaseModel):
    name: str
    url: str


class Uploaded(BaseModel):
    directory: str
    name: str
    path: str  # relative to MONETISE_HOME
    size: int


class UsagePage(BaseModel):
    """A page of a subscription's usage in [from, to) and the period's totals."""

    subscription_id: UUID
    from_: str | None = Field(serialization_alias="from")
    to: str | None
    usage: list[dict[str, Any]]
    totals: dict[str, Any]


def platform(request: Request) -> Platform:
    found: Platform = request.app.state.platform
    return found


def _invalid(field: str, message: str) -> Problem:
    return Problem(
        422,
        "Invalid request",
        f"{field}: {message}",
        slug="invalid-request",
        errors=[{"path": field, "message": message}],
    )


def _not_found(detail: str) -> Problem:
    return Problem(404, "Not found", detail, slug="not-found")


def parse_instant(text: str) -> datetime:
    """An RFC 3339 date-time with its UTC offset; ValueError says what is wrong."""
    match = _INSTANT.fullmatch(text.strip())
    if match is None:
        raise ValueError(
            f"{text!r} is not an RFC 3339 date-time such as 2026-11-21T00:00:00Z"
        )
    offset = match["offset"]
    if offset is None:
        raise ValueError(f"{text!r} has no UTC offset; add Z or +hh:mm")
    if offset.startswith(" "):  # a '+' sent unencoded in a query string
        offset = "+" + offset[1:]
    try:
        return datetime.fromisoformat(f"{match['date']}T{match['time']}{offset}")
    except ValueError as error:
        raise ValueError(f"{text!r} is not a valid date-time: {error}") from None


def period(start: str | None, end: str | None) -> tuple[str | None, str | None]:
    """``from`` and ``to`` as the views store times; 422 naming the bad one."""
    parsed: dict[str, datetime | None] = {}
    for field, given in (("from", start), ("to", end)):
        try:
            parsed[field] = None if given is None else parse_instant(given)
        except ValueError as error:
            raise _invalid(f"query.{field}", str(error)) from None
    first, last = parsed["from"], parsed["to"]
    if first is not None and last is not None and first >= last:
        raise _invalid("query.from", f"must be before to ({end})")
    return utc_text(first), utc_text(last)


# --- schemas ------------------------------------------------------------------


@router.get("/schemas", tags=["schemas"], summary="The published JSON Schemas")
def list_schemas() -> list[SchemaRef]:
    return [
        SchemaRef(name=name, url=f"/api/v1/schemas/{name}") for name in sorted(_SCHEMAS)
    ]


@router.get(
    "/schemas/{name}",
    tags=["schemas"],
    summary="One JSON Schema (Draft 2020-12), e.g. usage-rated",
    response_class=Response,
    responses={200: {"content": {SCHEMA_JSON: {"schema": {"type": "object"}}}}},
)
def get_schema(name: str) -> Response:
    found = _SCHEMAS.get(name.removesuffix(".json").removesuffix(".schema"))
    if found is None:
        raise _not_found(f"no schema {name!r}; there are {', '.join(sorted(_SCHEMAS))}")
    return Response(found.read_bytes(), media_type=SCHEMA_JSON)


# --- upload -------------------------------------------------------------------


def _pull(stream: AsyncIterator[bytes]) -> Iterator[bytes]:
    """The request body chunk by chunk, for a worker thread: one chunk in
    memory at a time, read from the event loop only when the writer wants it."""

    async def next_chunk() -> bytes | None:
        try:
            return await stream.__anext__()
        except StopAsyncIteration:
            return None

    while (chunk := anyio.from_thread.run(next_chunk)) is not None:
        if chunk:
            yield chunk


@router.put(
    "/inbound/{directory}/{name:path}",
    status_code=202,
    tags=["usage files"],
    summary="Upload a usage file into an inbound directory (the daemon takes it)",
    openapi_extra=_BINARY_BODY,
)
async def upload(
    directory: InboundDirectory,
    name: str,
    request: Request,
    _: Caller = Depends(ingester),
) -> Uploaded:
    # async so that the body streams to disk; the file work runs in a thread.
    home = platform(request).settings.home
    try:
        safe_file_name(name)
    except ValueError as error:
        raise _invalid("path.name", str(error)) from None
    if os.path.lexists(home / "inbound" / directory / name):
        raise _exists(directory, name)
    try:
        target = await run_in_threadpool(
            write_inbound, home, directory, name, _pull(request.stream())
        )
    except FileExistsError:
        raise _exists(directory, name) from None
    except ClientDisconnect:
        raise Problem(400, "Upload interrupted", "the client went away") from None
    return Uploaded(
        directory=directory,
        name=name,
        path=target.relative_to(home).as_posix(),
        size=target.stat().st_size,
    )


def _exists(directory: str, name: str) -> Problem:
    return Problem(
        409,
        "Conflict",
        f"a file {name!r} is already waiting in inbound/{directory}/",
        slug="conflict",
    )


# --- batches ------------------------------------------------------------------


def _batch(p: Platform, batch_id: UUID) -> dict[str, Any]:
    found = p.usage_views.batches.batch(str(batch_id))
    if found is None:
        raise _not_found(f"no usage batch {batch_id}")
    return dict(found)


@router.get("/usage-batches", summary="Usage batches, newest first")
def list_batches(
    status: BatchStatus | None = None,
    kind: BatchKind | None = None,
    limit: int = Page,
    offset: int = Skip,
    _: Caller = Depends(reader),
    p: Platform = Depends(platform),
) -> list[dict[str, Any]]:
    p.usage_views.catch_up()
    return list(p.usage_views.batches.batches(status, kind, limit, offset))


@router.get(
    "/usage-batches/{batch_id}",
    summary="A usage batch: counts, errors by class, failure",
)
def get_batch(
    batch_id: UUID, _: Caller = Depends(reader), p: Platform = Depends(platform)
) -> dict[str, Any]:
    p.usage_views.catch_up()
    return _batch(p, batch_id)


@router.get(
    "/usage-batches/{batch_id}/errors",
    summary="The rejected records of a batch, in file order",
)
def batch_errors(
    batch_id: UUID,
    error_class: ErrorClass | None = Query(None, alias="class"),
    limit: int = Page,
    offset: int = Skip,
    _: Caller = Depends(reader),
    p: Platform = Depends(platform),
) -> list[dict[str, Any]]:
    p.usage_views.catch_up()
    _batch(p, batch_id)
    return list(p.usage_views.batches.errors(str(batch_id), error_class, limit, offset))


@router.post(
    "/usage-batches/{batch_id}/reprocess",
    summary="Re-run the records rejected for configuration errors",
)
def reprocess(
    batch_id: UUID, caller: Caller = Depends(operator), p: Platform = Depends(platform)
) -> dict[str, Any]:
    try:
        p.usage.reprocess(batch_id, requested_by=caller.name)
    except UnknownBatch as error:
        raise _not_found(str(error)) from None
    except BatchNotReprocessable as error:
        raise Problem(409, "Conflict", str(error), slug="conflict") from None
    p.usage_views.catch_up()
    return _batch(p, batch_id)


# --- a subscription's usage ---------------------------------------------------


def _usage(
    payment_type: str,
    subscription_id: UUID,
    start: str | None,
    end: str | None,
    limit: int,
    offset: int,
    p: Platform,
) -> UsagePage:
    first, last = period(start, end)
    p.views.catch_up()
    if p.views.subscriptions.get(str(subscription_id)) is None:
        raise _not_found(f"no subscription {subscription_id}")
    p.usage_views.catch_up()
    rows, totals = p.usage_views.batches.usage(
        payment_type, str(subscription_id), first, last, limit, offset
    )
    return UsagePage(
        subscription_id=subscription_id, from_=first, to=last, usage=rows, totals=totals
    )


def _usage_route(payment_type: str, path: str, what: str) -> None:
    def usage(
        subscription_id: UUID,
        start: str | None = Query(None, alias="from", description="RFC 3339"),
        end: str | None = Query(None, alias="to", description="RFC 3339, exclusive"),
        limit: int = Page,
        offset: int = Skip,
        _: Caller = Depends(reader),
        p: Platform = Depends(platform),
    ) -> UsagePage:
        return _usage(payment_type, subscription_id, start, end, limit, offset, p)

    router.get(
        f"/subscriptions/{{subscription_id}}/{path}",
        summary=f"{what} of a subscription in [from, to), oldest first",
        name=path.replace("-", "_"),
    )(usage)


_usage_route("postpaid", "rated-usage", "Postpaid rated usage")
_usage_route("prepaid", "prepaid-usage", "Prepaid usage")
