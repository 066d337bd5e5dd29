"""``/api/v1/rerating-jobs``: rerun the pricing of a usage class over a period."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from api.keys import Caller
from api.routes.usage import _invalid, _not_found, platform
from api.security import requires
from application.platform import Platform

router = APIRouter(prefix="/api/v1", tags=["rerating"])
reader = requires("agent", "auditor")
operator = requires("agent")


class RerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    usage_class: str = Field(pattern=r"^[A-Z0-9_]{1,32}$")
    start: datetime | None = Field(default=None, alias="from")
    end: datetime | None = Field(default=None, alias="to")


def _aware(field: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise _invalid(f"body.{field}", "must have a UTC offset (Z or +hh:mm)")
    return value


@router.post(
    "/rerating-jobs",
    status_code=201,
    summary="Price the usage of a class again with the tariffs now in force",
)
def rerate(
    request: RerateRequest,
    caller: Caller = Depends(operator),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    start = _aware("from", request.start)
    end = _aware("to", request.end)
    if start is not None and end is not None and start >= end:
        raise _invalid("body.from", "must be before to")
    result = p.rerater.rerate(request.usage_class, start, end, caller.name)
    p.usage_views.catch_up()
    return _run(p, result["id"], 100, 0)


@router.get("/rerating-jobs", summary="Rerating runs, newest first")
def list_runs(
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0),
    _: Caller = Depends(reader),
    p: Platform = Depends(platform),
) -> list[dict[str, Any]]:
    p.usage_views.catch_up()
    return p.usage_views.batches.rerate_runs(limit, offset)


@router.get("/rerating-jobs/{run_id}", summary="A rerating run with its corrections")
def get_run(
    run_id: UUID,
    limit: int = Query(100, ge=1, le=5000),
    offset: int = Query(0, ge=0),
    _: Caller = Depends(reader),
    p: Platform = Depends(platform),
) -> dict[str, Any]:
    p.usage_views.catch_up()
    return _run(p, str(run_id), limit, offset)


def _run(p: Platform, run_id: str, limit: int, offset: int) -> dict[str, Any]:
    found = p.usage_views.batches.rerate_run(run_id, limit, offset)
    if found is None:
        raise _not_found(f"no rerating run {run_id}")
    return found


__all__ = ["router"]
