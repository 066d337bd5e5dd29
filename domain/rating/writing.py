"""Writing a tariff back as a document entry that reads back to the same value.

Amounts are written as strings with the digits they were read with
(``"0.10"``); optional parts equal to their default are left out.
"""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal
from typing import Any

from domain.rating.tariff import (
    NO_ROUNDING,
    Allowance,
    Discount,
    Rate,
    Slab,
    Tariff,
    TimeBand,
)


def write_tariff(tariff: Tariff) -> dict[str, Any]:
    entry: dict[str, Any] = {"code": tariff.code}
    if tariff.description:
        entry["description"] = tariff.description
    entry["currency"] = tariff.currency
    entry["timezone"] = tariff.timezone
    if tariff.effective_from is not None:
        moment = tariff.effective_from.astimezone(UTC)
        entry["effective_from"] = moment.isoformat().replace("+00:00", "Z")
    if tariff.time_bands:
        entry["time_bands"] = [write_band(band) for band in tariff.time_bands]
    if tariff.destinations:
        entry["destinations"] = {d.code: list(d.prefixes) for d in tariff.destinations}
    if tariff.zones:
        entry["zones"] = {
            zone.code: [
                {"mcc": n.mcc} if n.mnc is None else {"mcc": n.mcc, "mnc": n.mnc}
                for n in zone.networks
            ]
            for zone in tariff.zones
        }
    entry["rates"] = [write_rate(rate) for rate in tariff.rates]
    if tariff.discounts:
        entry["discounts"] = [write_discount(d) for d in tariff.discounts]
    if tariff.allowances:
        entry["allowances"] = [write_allowance(a) for a in tariff.allowances]
    return entry


def write_band(band: TimeBand) -> dict[str, Any]:
    row: dict[str, Any] = {"code": band.code}
    if band.weekdays:
        row["weekdays"] = list(band.weekdays)
    if band.dates:
        row["dates"] = list(band.dates)
    hours, rest = divmod(band.start, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}"
    row["start"] = f"{text}:{seconds:02d}" if seconds else text
    return row


def write_rate(rate: Rate) -> dict[str, Any]:
    row: dict[str, Any] = {
        "usage_class": rate.usage_class,
        "destination": rate.destination,
        "time_band": rate.time_band,
    }
    if rate.zone is not None:
        row["zone"] = rate.zone
    row["weight"] = rate.weight
    row["connect_fee"] = amount(rate.connect_fee)
    row["slabs"] = [write_slab(slab) for slab in rate.slabs]
    if rate.rounding != NO_ROUNDING:
        row["rounding"] = {
            "method": rate.rounding.method,
            "decimals": rate.rounding.decimals,
        }
    if rate.max_cost is not None:
        row["max_cost"] = {
            "amount": amount(rate.max_cost.amount),
            "strategy": rate.max_cost.strategy,
        }
    return row


def write_slab(slab: Slab) -> dict[str, Any]:
    return {
        "from": slab.start,
        "price": amount(slab.price),
        "per": slab.per,
        "increment": slab.increment,
    }


def write_discount(discount: Discount) -> dict[str, Any]:
    row: dict[str, Any] = {"usage_class": discount.usage_class}
    if discount.percentage is not None:
        row["percentage"] = amount(discount.percentage)
    if discount.amount is not None:
        row["amount"] = amount(discount.amount)
    return row


def write_allowance(allowance: Allowance) -> dict[str, Any]:
    return {
        "code": allowance.code,
        "units": allowance.units,
        "usage_classes": list(allowance.usage_classes),
    }


def amount(value: Decimal) -> str:
    """The decimal's digits in plain notation (never ``1E-7``)."""
    return format(value, "f")
