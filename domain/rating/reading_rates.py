"""Reading the rates of a tariff entry, its discounts and its allowances.

As in ``reading.py``: each ``read_*`` function returns what it read, or
``None`` when it found a problem, and appends every problem with its path.
A rate's ``slabs`` start at ``from: 0`` and rise strictly; ``per`` and
``increment`` are whole numbers of at least 1 in the usage's unit (seconds,
bytes, units).
"""

from __future__ import annotations

from decimal import Decimal

from domain.catalogue.fields import Problem, Reader, join
from domain.rating.reading import (
    ANY_RULE,
    CODE,
    CODE_OR_ANY,
    CODE_RULE,
    LARGEST,
    read_amount,
)
from domain.rating.tariff import (
    ANY,
    MAX_COST_STRATEGIES,
    NO_ROUNDING,
    ROUNDING_METHODS,
    Allowance,
    Discount,
    MaxCost,
    Rate,
    Rounding,
    Slab,
)


def read_slab(raw: object, path: str, problems: list[Problem]) -> Slab:
    r = Reader(raw, path, problems)
    r.reject_unknown(["from", "price", "per", "increment"])
    return Slab(
        start=r.integer("from", 0, 0, LARGEST),
        price=read_amount(r, "price"),
        per=r.integer("per", None, 1, LARGEST),
        increment=r.integer("increment", None, 1, LARGEST),
    )


def read_rounding(r: Reader) -> Rounding:
    path, raw = r.mapping("rounding")
    if not raw:
        return NO_ROUNDING
    inner = Reader(raw, path, r.problems)
    inner.reject_unknown(["method", "decimals"])
    method = inner.text("method", default="half_up", choices=ROUNDING_METHODS)
    return Rounding(method, inner.integer("decimals", 0, 0, 18))


def read_max_cost(r: Reader) -> MaxCost | None:
    path, raw = r.mapping("max_cost")
    if not raw:
        return None
    inner = Reader(raw, path, r.problems)
    inner.reject_unknown(["amount", "strategy"])
    amount = read_amount(inner, "amount")
    return MaxCost(
        amount, inner.text("strategy", default="cap", choices=MAX_COST_STRATEGIES)
    )


def read_rate(raw: object, path: str, problems: list[Problem]) -> Rate | None:
    before = len(problems)
    r = Reader(raw, path, problems)
    r.reject_unknown(
        [
            "usage_class",
            "destination",
            "time_band",
            "zone",
            "weight",
            "connect_fee",
            "slabs",
            "rounding",
            "max_cost",
        ]
    )
    usage_class = r.text("usage_class", pattern=CODE, rule=CODE_RULE)
    destination = r.text("destination", default=ANY, pattern=CODE_OR_ANY, rule=ANY_RULE)
    time_band = r.text("time_band", default=ANY, pattern=CODE_OR_ANY, rule=ANY_RULE)
    zone = r.text("zone", default="", pattern=CODE, rule=CODE_RULE) or None
    weight = r.integer("weight", 0, -(10**9), 10**9)
    connect_fee = read_amount(r, "connect_fee", Decimal(0))
    slabs = [read_slab(raw_slab, at, problems) for at, raw_slab in r.items("slabs")]
    if r.is_mapping and not slabs and "slabs" not in r.raw:
        r.fail(join(path, "slabs"), "is required: at least one slab")
    elif r.is_mapping and not slabs:
        r.fail(join(path, "slabs"), "must have at least one slab")
    elif slabs and slabs[0].start != 0:
        r.fail(join(path, "slabs[0].from"), "the first slab must be from 0")
    for index in range(1, len(slabs)):
        if slabs[index].start <= slabs[index - 1].start:
            r.fail(
                join(path, f"slabs[{index}].from"),
                f"must be greater than the previous slab's from "
                f"({slabs[index - 1].start})",
            )
    rounding = read_rounding(r)
    max_cost = read_max_cost(r)
    if len(problems) > before:
        return None
    return Rate(
        usage_class=usage_class,
        slabs=tuple(slabs),
        destination=destination,
        time_band=time_band,
        zone=zone,
        weight=weight,
        connect_fee=connect_fee,
        rounding=rounding,
        max_cost=max_cost,
    )


def read_discount(raw: object, path: str, problems: list[Problem]) -> Discount | None:
    before = len(problems)
    r = Reader(raw, path, problems)
    r.reject_unknown(["usage_class", "percentage", "amount"])
    usage_class = r.text("usage_class", pattern=CODE, rule=CODE_RULE)
    has = [key for key in ("percentage", "amount") if r.raw.get(key) is not None]
    if r.is_mapping and len(has) != 1:
        r.fail(path, "needs exactly one of: percentage, amount")
    percentage = amount = None
    if "percentage" in has:
        percentage = read_amount(r, "percentage")
        if not 0 < percentage <= 100:
            r.fail(join(path, "percentage"), "must be more than 0 and at most 100")
    if "amount" in has:
        amount = read_amount(r, "amount")
    if len(problems) > before:
        return None
    return Discount(usage_class, percentage, amount)


def read_allowance(raw: object, path: str, problems: list[Problem]) -> Allowance | None:
    before = len(problems)
    r = Reader(raw, path, problems)
    r.reject_unknown(["code", "units", "usage_classes"])
    code = r.text("code", pattern=CODE, rule=CODE_RULE)
    units = r.integer("units", None, 0, LARGEST)
    classes: list[str] = []
    for at, usage_class in r.items("usage_classes", required=True):
        if not isinstance(usage_class, str) or not CODE.fullmatch(usage_class):
            r.fail(at, f"{usage_class!r} is not a usage class: {CODE_RULE}")
        elif usage_class in classes:
            r.fail(at, f"usage class {usage_class} is listed twice")
        else:
            classes.append(usage_class)
    if r.is_mapping and not classes and len(problems) == before:
        r.fail(join(path, "usage_classes"), "must list at least one usage class")
    if len(problems) > before:
        return None
    return Allowance(code, units, tuple(classes))
