"""The fixed set of converters a field-mapping profile may use.

A field's ``convert`` is one step or a list of steps applied in order to the
text of its column; each step is a converter name, or a mapping with ``name``
and the converter's parameters::

    convert: digits
    convert: {name: timestamp, format: "%Y%m%d%H%M%S", timezone: Europe/London}
    convert:
      - {name: strip_prefix, prefixes: {"+": "", "00": "", "0": "44"}}
      - {name: digits, min_length: 6, max_length: 15}

=================== ============ =====================================================
converter           gives        parameters
=================== ============ =====================================================
string              text         ``upper`` (false): upper-case the text
digits              text         ``min_length``, ``max_length``: ASCII digits only
strip_prefix        text         ``prefixes``: a list of prefixes to remove, or a
                                 mapping prefix → replacement; the longest matching
                                 prefix is replaced, text without one is kept
int                 whole number ``min`` (0), ``max``, ``multiply`` (1, e.g. 1024 for
                                 kilobytes)
decimal             decimal      ``decimal_separator`` ("." or ",")
money_minor_units   decimal      ``scale`` (2): 2500 with scale 4 is 0.2500
timestamp           time         ``format``: ``rfc3339``, ``epoch`` (seconds since
                                 1970 UTC) or a strptime format; ``timezone``: the
                                 IANA zone of a format without ``%z``
map                 text/number  ``table``: value → result (keys quoted);
                                 ``default``: result for values not in the table
constant            any          ``value``: the field's value; the field needs no
                                 column
currency            text         ISO 4217 alphabetic (``gbp``) or numeric (``826``)
=================== ============ =====================================================

Every converter except ``constant`` first strips surrounding blanks; the text
of a column is never empty here (an empty column is absent, see the profile).
Ambiguous local times (the hour repeated when clocks go back) are read as the
first of the two; local times that do not exist (skipped when clocks go
forward) are refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ingest.transform.currency import currency_code
from ingest.transform.generic import shift_decimal
from ingest.transform.profiles import Checker, at, join
from ingest.transform.times import parse_rfc3339


class ConversionError(ValueError):
    """A value that a converter cannot convert; the message says why."""


@dataclass(frozen=True)
class Step:
    """One configured converter: what it takes, what it gives, and the function."""

    name: str
    accepts: type
    produces: type
    apply: Callable[[Any], Any]


Builder = Callable[[dict[str, Any], str, Checker, type], Step | None]

_INTEGER = re.compile(r"[+-]?[0-9]+")
_DIGITS = re.compile(r"[0-9]+")


def build_steps(
    spec: object, path: str, check: Checker, target: type
) -> tuple[Step, ...] | None:
    """Read a field's ``convert`` entry into steps that end in ``target``'s type."""
    if spec is None:
        spec = "string"
    raw_steps = spec if isinstance(spec, list) else [spec]
    if not raw_steps:
        check.fail(path, "needs at least one converter")
        return None
    steps: list[Step] = []
    flowing: type = str
    for index, raw in enumerate(raw_steps):
        step_path = at(path, index) if isinstance(spec, list) else path
        step = _build_step(raw, step_path, check, target)
        if step is None:
            return None
        if step.accepts is not object and step.accepts is not flowing:
            check.fail(
                step_path,
                f"{step.name} needs {_type_name(step.accepts)}, but the step "
                f"before gives {_type_name(flowing)}",
            )
            return None
        flowing = step.produces
        steps.append(step)
    if flowing is not target:
        check.fail(
            path,
            f"gives {_type_name(flowing)}, but the field needs {_type_name(target)}",
        )
        return None
    return tuple(steps)


def run_steps(steps: tuple[Step, ...], text: str) -> Any:
    """Apply the steps to a column's text; raises :class:`ConversionError`."""
    value: Any = text
    try:
        for step in steps:
            value = step.apply(value)
    except ConversionError:
        raise
    except (ArithmeticError, ValueError) as error:
        # e.g. an integer of more digits than Python converts from text
        raise ConversionError(f"cannot be converted: {error}") from None
    return value


def _build_step(raw: object, path: str, check: Checker, target: type) -> Step | None:
    if isinstance(raw, str):
        name, params = raw, {}
    elif isinstance(raw, dict):
        params = dict(raw)
        name = params.pop("name", None)
        if not isinstance(name, str):
            check.fail(join(path, "name"), "names the converter and is required")
            return None
    else:
        check.fail(path, "must be a converter name or a mapping with a name")
        return None
    builder = CONVERTERS.get(name)
    if builder is None:
        known = ", ".join(CONVERTERS)
        check.fail(path, f"unknown converter {name!r} (known: {known})")
        return None
    before = len(check.problems)
    step = builder(params, path, check, target)
    return step if len(check.problems) == before else None


def _string(params: dict[str, Any], path: str, check: Checker, target: type) -> Step:
    check.keys(params, path, optional=("upper",))
    upper = check.boolean(params.get("upper", False), join(path, "upper"))

    def apply(value: str) -> str:
        text = _text(value)
        return text.upper() if upper else text

    return Step("string", str, str, apply)


def _digits(params: dict[str, Any], path: str, check: Checker, target: type) -> Step:
    check.keys(params, path, optional=("min_length", "max_length"))
    low = check.integer(
        params.get("min_length", 1), join(path, "min_length"), minimum=1
    )
    high = check.integer(params.get("max_length", 64), join(path, "max_length"))

    def apply(value: str) -> str:
        text = _text(value)
        if not _DIGITS.fullmatch(text):
            raise ConversionError(f"{_show(text)} is not digits only")
        if low is not None and high is not None and not low <= len(text) <= high:
            raise ConversionError(
                f"{_show(text)} has {len(text)} digits, expected {low} to {high}"
            )
        return text

    return Step("digits", str, str, apply)


def _strip_prefix(
    params: dict[str, Any], path: str, check: Checker, target: type
) -> Step:
    check.keys(params, path, required=("prefixes",))
    prefixes = params.get("prefixes")
    table: list[tuple[str, str]] = []
    if isinstance(prefixes, list):
        pairs = [(prefix, "") for prefix in prefixes]
    elif isinstance(prefixes, dict):
        pairs = list(prefixes.items())
    else:
        check.fail(join(path, "prefixes"), "must be a list or a mapping")
        pairs = []
    for prefix, replacement in pairs:
        where = join(join(path, "prefixes"), str(prefix))
        key = check.text(prefix, where)
        value = check.text(replacement, where, empty=True)
        if key is not None and value is not None:
            table.append((key, value))
    table.sort(key=lambda pair: len(pair[0]), reverse=True)

    def apply(value: str) -> str:
        text = _text(value)
        for prefix, replacement in table:
            if text.startswith(prefix):
                return replacement + text[len(prefix) :]
        return text

    return Step("strip_prefix", str, str, apply)


def _int(params: dict[str, Any], path: str, check: Checker, target: type) -> Step:
    check.keys(params, path, optional=("min", "max", "multiply"))
    low = check.integer(params.get("min", 0), join(path, "min"))
    high = params.get("max")
    if high is not None:
        high = check.integer(high, join(path, "max"))
    factor = check.integer(params.get("multiply", 1), join(path, "multiply"), minimum=1)

    def apply(value: str) -> int:
        text = _text(value)
        if not _INTEGER.fullmatch(text):
            raise ConversionError(f"{_show(text)} is not a whole number")
        number = int(text) * (factor or 1)
        if low is not None and number < low:
            raise ConversionError(f"{number} is less than {low}")
        if high is not None and number > high:
            raise ConversionError(f"{number} is more than {high}")
        return number

    return Step("int", str, int, apply)


def _decimal(params: dict[str, Any], path: str, check: Checker, target: type) -> Step:
    check.keys(params, path, optional=("decimal_separator",))
    separator = check.choice(
        params.get("decimal_separator", "."), join(path, "decimal_separator"), ".,"
    )
    pattern = re.compile(r"[+-]?[0-9]+(?:" + re.escape(separator or ".") + "[0-9]+)?")

    def apply(value: str) -> Decimal:
        text = _text(value)
        if not pattern.fullmatch(text):
            raise ConversionError(f"{_show(text)} is not a decimal number")
        return Decimal(text.replace(separator or ".", "."))

    return Step("decimal", str, Decimal, apply)


def _money_minor_units(
    params: dict[str, Any], path: str, check: Checker, target: type
) -> Step:
    check.keys(params, path, optional=("scale",))
    scale = check.integer(params.get("scale", 2), join(path, "scale"), minimum=0)

    def apply(value: str) -> Decimal:
        text = _text(value)
        if not _INTEGER.fullmatch(text):
            raise ConversionError(f"{_show(text)} is not a whole number of minor units")
        return shift_decimal(Decimal(text), -(scale or 0))

    return Step("money_minor_units", str, Decimal, apply)


def _timestamp(params: dict[str, Any], path: str, check: Checker, target: type) -> Step:
    check.keys(params, path, required=("format",), optional=("timezone",))
    layout = check.text(params.get("format"), join(path, "format"))
    zone: ZoneInfo | None = None
    zone_path = join(path, "timezone")
    explicit = layout in ("rfc3339", "epoch") or (layout is not None and "%z" in layout)
    if "timezone" in params:
        if explicit:
            check.fail(zone_path, f"is not used: format {layout!r} carries its offset")
        else:
            zone = _zone(params["timezone"], zone_path, check)
    elif layout is not None and not explicit:
        check.fail(zone_path, "is required: the format has no %z offset")

    def apply(value: str) -> datetime:
        text = _text(value)
        if layout == "rfc3339":
            try:
                return parse_rfc3339(text)
            except ValueError as error:
                raise ConversionError(str(error)) from None
        if layout == "epoch":
            if not _INTEGER.fullmatch(text):
                raise ConversionError(f"{_show(text)} is not whole epoch seconds")
            try:
                return datetime.fromtimestamp(int(text), UTC)
            except (OverflowError, OSError, ValueError):
                raise ConversionError(f"{_show(text)} is out of range") from None
        try:
            parsed = datetime.strptime(text, layout or "")  # noqa: DTZ007
        except ValueError:
            raise ConversionError(
                f"{_show(text)} is not a time of format {layout}"
            ) from None
        if zone is None:
            return parsed.astimezone(UTC)
        return _localise(parsed, zone)

    return Step("timestamp", str, datetime, apply)


def _localise(naive: datetime, zone: ZoneInfo) -> datetime:
    local = naive.replace(tzinfo=zone, fold=0)
    back = local.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    if back != naive:
        raise ConversionError(
            f"{naive.isoformat(sep=' ')} does not exist in {zone.key} "
            "(clocks went forward)"
        )
    return local.astimezone(UTC)


def _zone(value: object, path: str, check: Checker) -> ZoneInfo | None:
    name = check.text(value, path)
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        check.fail(path, f"unknown time zone {name!r} (an IANA name: Europe/London)")
        return None


def _map(params: dict[str, Any], path: str, check: Checker, target: type) -> Step:
    check.keys(params, path, required=("table",), optional=("default",))
    table_path = join(path, "table")
    raw_table = check.mapping(params.get("table"), table_path)
    produces = int if target is int else str
    table: dict[str, Any] = {}
    for key, result in (raw_table or {}).items():
        where = join(table_path, key)
        if not isinstance(key, str):
            check.fail(
                where,
                f"key {key!r} must be quoted ('{key}') so that it is matched as the "
                "text in the file (YAML reads 010 as 8)",
            )
        elif _result(result, where, check, produces):
            table[key] = result
    has_default = "default" in params
    default = params.get("default")
    if has_default:
        _result(default, join(path, "default"), check, produces)

    def apply(value: str) -> Any:
        text = _text(value)
        if text in table:
            return table[text]
        if has_default:
            return default
        known = ", ".join(list(table)[:8]) + (", …" if len(table) > 8 else "")
        raise ConversionError(f"unknown value {_show(text)} (known: {known})")

    return Step("map", str, produces, apply)


def _result(value: object, path: str, check: Checker, produces: type) -> bool:
    if produces is int:
        return check.integer(value, path) is not None
    return check.text(value, path) is not None


def _constant(params: dict[str, Any], path: str, check: Checker, target: type) -> Step:
    check.keys(params, path, required=("value",))
    where = join(path, "value")
    raw = params.get("value")
    value: Any = None
    if target is str:
        value = check.text(raw, where)
    elif target is int:
        value = check.integer(raw, where)
    elif target is Decimal:
        if isinstance(raw, str | int) and not isinstance(raw, bool):
            try:
                value = Decimal(str(raw))
            except InvalidOperation:
                value = None
        if value is None or not value.is_finite():
            check.fail(where, "must be a decimal number written as text ('0.25')")
    elif target is datetime:
        try:
            value = parse_rfc3339(str(raw))
        except ValueError as error:
            check.fail(where, str(error))

    def apply(_ignored: object) -> Any:
        return value

    return Step("constant", object, target, apply)


def _currency(params: dict[str, Any], path: str, check: Checker, target: type) -> Step:
    check.keys(params, path)

    def apply(value: str) -> str:
        try:
            return currency_code(_text(value))
        except ValueError as error:
            raise ConversionError(str(error)) from None

    return Step("currency", str, str, apply)


CONVERTERS: dict[str, Builder] = {
    "string": _string,
    "digits": _digits,
    "strip_prefix": _strip_prefix,
    "int": _int,
    "decimal": _decimal,
    "money_minor_units": _money_minor_units,
    "timestamp": _timestamp,
    "map": _map,
    "constant": _constant,
    "currency": _currency,
}
"""Every converter a profile may name; adding one is a code change, on purpose."""


def _text(value: str) -> str:
    text = value.strip()
    if not text:
        raise ConversionError("is empty")
    return text


def _show(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _type_name(kind: type) -> str:
    return {
        str: "text",
        int: "a whole number",
        Decimal: "a decimal",
        datetime: "a time",
        object: "anything",
    }.get(kind, kind.__name__)
