"""``/api/v1/tariffs``: the tariffs over HTTP, and what a usage would cost."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import yaml
from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt

from api.keys import Caller
from api.problems import Problem
from api.security import administrator, reader
from application.platform import Platform
from application.tariffs import TariffService, TariffsRejected, UnknownTariff
from domain.rating.errors import RatingError
from domain.rating.rated import Usage

router = APIRouter(prefix="/api/v1/tariffs", tags=["tariffs"])

QUANTITIES = ("duration_seconds", "volume_bytes", "units")
# The field of a quote request that a rating error is about.
ERROR_FIELDS = {
    "no_tariff": "body.start",
    "no_zone": "body.mcc",
    "no_destination": "body.called_number",
    "no_rate": "body.usage_class",
    "bad_usage": "body",
}


class ImportCounts(BaseModel):
    defined: int = Field(description="tariff versions recorded for the first time")
    redefined: int = Field(description="tariff versions changed")
    assigned: int = Field(description="rate plans assigned (or reassigned) a tariff")
    unchanged: int = Field(description="versions and rate plans already as written")
    events: int = Field(description="events recorded: 0 for a repeated import")


class QuoteRequest(BaseModel):
    """One usage to price: exactly one of the three quantities."""

    model_config = ConfigDict(extra="forbid")

    usage_class: str = Field(pattern=r"^[A-Z0-9_]{1,32}$", examples=["VOICE_NAT"])
    start: AwareDatetime | None = Field(
        None, description="RFC 3339 with an offset; default: now"
    )
    duration_seconds: StrictInt | None = Field(None, ge=0, description="voice")
    volume_bytes: StrictInt | None = Field(None, ge=0, description="data")
    units: StrictInt | None = Field(None, ge=0, description="events such as SMS")
    called_number: str | None = Field(
        None, pattern=r"^\+?[0-9]{1,32}$", examples=["441632960000"]
    )
    mcc: str | None = Field(None, pattern=r"^[0-9]{3}$", description="serving MCC")
    mnc: str | None = Field(None, pattern=r"^[0-9]{2,3}$", description="serving MNC")


def service(request: Request) -> TariffService:
    tariffs: TariffService = request.app.state.platform.tariffs
    return tariffs


def _rejected(error: TariffsRejected) -> Problem:
    count = len(error.problems)
    return Problem(
        422,
        "Invalid tariffs",
        f"{count} problem{'s' if count != 1 else ''} found; nothing was applied",
        slug="invalid-tariffs",
        errors=[p.as_dict() for p in error.problems],
    )


def _quantity(body: QuoteRequest) -> None:
    """422 naming the quantities unless exactly one is given."""
    given = [name for name in QUANTITIES if getattr(body, name) is not None]
    if len(given) == 1:
        return
    rule = "give exactly one of duration_seconds, volume_bytes or units"
    errors = [{"path": f"body.{name}", "message": rule} for name in given[1:]]
    raise Problem(
        422,
        "Invalid request",
        rule,
        slug="invalid-request",
        errors=errors or [{"path": "body", "message": rule}],
    )


@router.post("", summary="Import a tariff document (all or nothing)")
def import_tariffs(
    document: Any = Body(
        ..., description="The tariff document (TARIFFS.md)", examples=[{"version": 1}]
    ),
    caller: Caller = Depends(administrator),
    tariffs: TariffService = Depends(service),
) -> ImportCounts:
    """Record the versions and rate plans that differ from those stored; a
    document with any problem is refused whole, every problem with its path."""
    try:
        return ImportCounts(**tariffs.import_document(document, caller.name))
    except TariffsRejected as error:
        raise _rejected(error) from error


@router.get("", summary="Export every tariff version and rate plan as one document")
def export_tariffs(
    format: str = Query("json", pattern="^(json|yaml)$"),
    _: Caller = Depends(reader),
    tariffs: TariffService = Depends(service),
) -> Response:
    document = tariffs.export()
    if format == "yaml":
        return Response(
            yaml.safe_dump(document, sort_keys=False), media_type="application/yaml"
        )
    return Response(json.dumps(document, indent=2), media_type="application/json")


@router.post(
    "/{code}/quote",
    summary="Price one usage with the tariff version in force at its start",
)
def quote_usage(
    code: str,
    body: QuoteRequest,
    request: Request,
    _: Caller = Depends(reader),
    tariffs: TariffService = Depends(service),
) -> dict[str, Any]:
    """The rated usage (charge, discount, net, breakdown); nothing is recorded.
    The home network is the platform's (``MONETISE_HOME_MCC``/``_MNC``)."""
    _quantity(body)
    platform: Platform = request.app.state.platform
    start: datetime = body.start or platform.clock.now()
    usage = Usage(
        usage_class=body.usage_class,
        start=start,
        duration_seconds=body.duration_seconds,
        volume_bytes=body.volume_bytes,
        units=body.units,
        called_number=body.called_number,
        mcc=body.mcc,
        mnc=body.mnc,
        home_mcc=platform.settings.home_mcc,
        home_mnc=platform.settings.home_mnc,
    )
    try:
        return tariffs.quote(code, usage).as_dict()
    except UnknownTariff as error:
        raise Problem(404, "Not found", str(error), slug="not-found") from error
    except RatingError as error:
        raise Problem(
            422,
            "Cannot rate the usage",
            error.message,
            slug=error.code.replace("_", "-"),
            errors=[
                {
                    "path": ERROR_FIELDS.get(error.code, "body"),
                    "code": error.code,
                    "message": error.message,
                }
            ],
        ) from error
