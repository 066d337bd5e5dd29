"""Tariffs and the rating engine: pure, exact and self-explaining.

Read a tariff document (already parsed from YAML or JSON) with
:func:`read_tariffs` or :func:`read_tariff_book`, write it back with
:func:`write_tariffs`, pick the version in force with :func:`tariff_in_force`,
and rate usage with :func:`quote` (one usage) or :func:`rate_records` (a
subscriber's usages of one bill period, consuming allowances in time order).
Compile a tariff once with :func:`compile_tariff` to rate many usages.
``TARIFFS.md`` beside this module documents the document and the semantics.
"""

from domain.catalogue.fields import Problem
from domain.rating.compiled import CompiledTariff
from domain.rating.document import (
    read_tariff_book,
    read_tariffs,
    write_tariffs,
)
from domain.rating.engine import compile_tariff, quote, rate_records
from domain.rating.errors import RatingError
from domain.rating.rated import AllowanceState, AllowanceUse, Part, Rated, Usage
from domain.rating.tariff import (
    Allowance,
    Destination,
    Discount,
    MaxCost,
    Network,
    Rate,
    Rounding,
    Slab,
    Tariff,
    TariffBook,
    TimeBand,
    Zone,
    tariff_in_force,
)

__all__ = [
    "Allowance",
    "AllowanceState",
    "AllowanceUse",
    "CompiledTariff",
    "Destination",
    "Discount",
    "MaxCost",
    "Network",
    "Part",
    "Problem",
    "Rate",
    "Rated",
    "RatingError",
    "Rounding",
    "Slab",
    "Tariff",
    "TariffBook",
    "TimeBand",
    "Usage",
    "Zone",
    "compile_tariff",
    "quote",
    "rate_records",
    "read_tariff_book",
    "read_tariffs",
    "tariff_in_force",
    "write_tariffs",
]
