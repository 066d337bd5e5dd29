"""Readers of the parts of a ChargingDataRequest, for :mod:`ingest.transform.ocs`.

Each reader takes the JSON object (keys matched without regard to case, ``-``
and ``_``) and the path of the part for messages, and either returns the value
or raises :class:`Invalid` with the field's path and the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from ingest.transform.currency import currency_code
from ingest.transform.generic import (
    IMSI,
    MAX_DURATION_SECONDS,
    MAX_UNITS,
    MAX_VOLUME_BYTES,
    MSISDN,
    Problem,
    money_text,
    shift_decimal,
)
from ingest.transform.ocs_profile import OcsProfile, RatingGroupRule
from ingest.transform.times import parse_rfc3339

MAX_UINT32 = 2**32 - 1
MAX_UINT64 = 2**64 - 1
MAX_INT64 = 2**63 - 1
MAX_INT32 = 2**31 - 1
_MAX_DIGITS = 40  # longer numbers are refused before Python converts them
_DIGITS = re.compile(r"[0-9]+")
_SIGNED = re.compile(r"-?[0-9]+")
_PLMN_TEXT = re.compile(r"([0-9]{3})-([0-9]{2,3})")
_URI_SCHEMES = ("tel:", "sip:", "sips:", "msisdn-")
_VISUAL_SEPARATORS = str.maketrans("", "", "-.() ")

T = TypeVar("T")


class Invalid(Exception):
    """One problem found while reading a request; carries the field path."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.problem = Problem(field, reason)


def attempt(problems: list[Problem], reader: Callable[..., T], *args: Any) -> T | None:
    """Call a reader; when it finds a problem, note it and give ``None``, so that
    one record's problems are all collected before it is refused."""
    try:
        return reader(*args)
    except Invalid as invalid:
        problems.append(invalid.problem)
        return None


def _normal(key: str) -> str:
    return key.replace("-", "").replace("_", "").lower()


def member(obj: Mapping[str, Any], name: str, path: str) -> Any:
    """``obj[name]`` matched without regard to case, ``-`` and ``_``; JSON null
    counts as absent (``None``)."""
    wanted = _normal(name)
    keys = [key for key in obj if isinstance(key, str) and _normal(key) == wanted]
    if len(keys) > 1:
        raise Invalid(_join(path, name), f"is given more than once: {', '.join(keys)}")
    return obj[keys[0]] if keys else None


def member_object(
    obj: Mapping[str, Any], name: str, path: str
) -> dict[str, Any] | None:
    value = member(obj, name, path)
    if value is not None and not isinstance(value, dict):
        raise Invalid(_join(path, name), "is not an object")
    return value


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def whole(value: object) -> int | None:
    """A JSON whole number, a digit string or a decimal without a fraction."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if (
        isinstance(value, Decimal)
        and value.is_finite()
        and value.adjusted() < _MAX_DIGITS
        and value == value.to_integral_value()
    ):
        return int(value)
    if isinstance(value, str) and len(value) <= _MAX_DIGITS:
        text = value.strip()
        return int(text) if _SIGNED.fullmatch(text) else None
    return None


def uint(value: object, path: str, maximum: int) -> int:
    number = whole(value)
    if number is None:
        raise Invalid(path, f"{show(value)} is not a whole number")
    if number < 0:
        raise Invalid(path, f"{number} is negative")
    if number > maximum:
        raise Invalid(path, f"{number} is more than {maximum}")
    return number


def required_uint(obj: Mapping[str, Any], name: str, path: str, maximum: int) -> int:
    value = member(obj, name, path)
    if value is None:
        raise Invalid(_join(path, name), "is missing")
    return uint(value, _join(path, name), maximum)


def optional_uint(
    obj: Mapping[str, Any], name: str, path: str, maximum: int
) -> int | None:
    value = member(obj, name, path)
    return None if value is None else uint(value, _join(path, name), maximum)


def read_time(value: object, path: str) -> datetime:
    if not isinstance(value, str):
        raise Invalid(path, f"{show(value)} is not an RFC 3339 date-time text")
    try:
        moment = parse_rfc3339(value)
    except ValueError as error:
        raise Invalid(path, str(error)) from None
    if not 1900 <= moment.year <= 2999:
        raise Invalid(path, f"{show(value)} is not in the years 1900 to 2999")
    return moment


def required_time(obj: Mapping[str, Any], name: str, path: str) -> datetime:
    value = member(obj, name, path)
    if value is None:
        raise Invalid(_join(path, name), "is missing")
    return read_time(value, _join(path, name))


def subscriber(document: Mapping[str, Any], profile: OcsProfile) -> dict[str, str]:
    field = "subscriberIdentifier"
    value = member(document, field, "")
    if value is None:
        raise Invalid(field, "is missing: the usage has no subscriber")
    if not isinstance(value, str):
        raise Invalid(field, f"{show(value)} is not text")
    text = value.strip()
    kind, dash, rest = text.partition("-")
    kind = kind.lower() if dash else ""
    if kind == "imsi":
        return _identity("imsi", rest, field)
    if kind == "msisdn":
        return _identity("msisdn", rest.removeprefix("+"), field)
    if kind == "nai":
        for pattern in profile.nai_patterns:
            match = pattern.fullmatch(rest)
            if match is None:
                continue
            for group in ("imsi", "msisdn"):
                if group in pattern.groupindex and match[group]:
                    return _identity(group, match[group], field)
        raise Invalid(
            field,
            f"NAI {show(rest)} is not supported: no subscriber.nai_patterns entry "
            f"of profile {profile.name} matches it",
        )
    if kind in ("gci", "gli", "extid"):
        raise Invalid(field, f"{kind}- identifiers are not supported")
    if _DIGITS.fullmatch(text):
        return _identity("imsi" if len(text) == 15 else "msisdn", text, field)
    raise Invalid(
        field, f"{show(text)} is not an imsi-, msisdn- or nai- identifier or digits"
    )


def _identity(kind: str, digits: str, field: str) -> dict[str, str]:
    pattern, rule = (IMSI, "14 or 15") if kind == "imsi" else (MSISDN, "6 to 15")
    if not pattern.fullmatch(digits):
        raise Invalid(field, f"{kind} {show(digits)} is not {rule} digits")
    return {kind: digits}


def serving_plmn(
    document: Mapping[str, Any], profile: OcsProfile
) -> tuple[str, str] | None:
    consumer = member_object(document, "nfConsumerIdentification", "")
    if consumer is None:
        return None
    path = "nfConsumerIdentification.nFPLMNID"
    plmn = member(consumer, "nFPLMNID", "nfConsumerIdentification")
    if plmn is None:
        return None
    if isinstance(plmn, str):
        match = _PLMN_TEXT.fullmatch(plmn.strip())
        if match is None:
            raise Invalid(path, f"{show(plmn)} is not an object or text MCC-MNC")
        return match[1], match[2]
    if not isinstance(plmn, dict):
        raise Invalid(path, "is not an object {mcc, mnc}")
    mcc_value = member(plmn, "mcc", path)
    mnc_value = member(plmn, "mnc", path)
    mcc = _code(mcc_value, f"{path}.mcc", (3,), 3)
    width = 3 if mcc in profile.three_digit_mnc_mccs else 2
    mnc = _code(mnc_value, f"{path}.mnc", (2, 3), width)
    return mcc, mnc


def _code(value: object, path: str, lengths: tuple[int, ...], pad: int) -> str:
    """An MCC or MNC: digit text of an allowed length, or a number zero-padded."""
    if value is None:
        raise Invalid(path, "is missing")
    if isinstance(value, str):
        text = value.strip()
        if _DIGITS.fullmatch(text) and len(text) in lengths:
            return text
    else:
        number = whole(value)
        if number is not None and 0 <= number <= 999:
            return f"{number:0{pad}d}"
    allowed = " or ".join(str(length) for length in lengths)
    raise Invalid(path, f"{show(value)} is not {allowed} digits")


def direction(document: Mapping[str, Any], profile: OcsProfile) -> str | None:
    ims = member_object(document, "iMSChargingInformation", "")
    if ims is not None:
        role = member(ims, "roleOfNode", "iMSChargingInformation")
        if role is not None:
            return _lookup(
                role, profile.role_of_node, "iMSChargingInformation.roleOfNode"
            )
    sms = member_object(document, "sMSChargingInformation", "")
    if sms is not None:
        kind = member(sms, "sMMessageType", "sMSChargingInformation")
        if kind is not None:
            return _lookup(
                kind, profile.sm_message_type, "sMSChargingInformation.sMMessageType"
            )
    return None


def _lookup(value: object, table: Mapping[str, str], path: str) -> str:
    if isinstance(value, str) and value.strip().upper() in table:
        return table[value.strip().upper()]
    known = ", ".join(table) or "none configured"
    raise Invalid(path, f"{show(value)} has no direction in the profile ({known})")


def called_number(document: Mapping[str, Any]) -> str | None:
    ims = member_object(document, "iMSChargingInformation", "")
    if ims is not None:
        number = _telephone(member(ims, "calledPartyAddress", "iMSChargingInformation"))
        if number is not None:
            return number
    sms = member_object(document, "sMSChargingInformation", "")
    recipients = None if sms is None else member(sms, "recipientInfo", "")
    if isinstance(recipients, list) and recipients and isinstance(recipients[0], dict):
        first = recipients[0]
        number = _telephone(member(first, "recipientGPSI", ""))
        if number is not None:
            return number
        other = member(first, "recipientOtherAddress", "")
        if isinstance(other, dict):
            return _telephone(member(other, "sMaddressData", ""))
    return None


def _telephone(value: object) -> str | None:
    """The digits of a telephone-number address, or ``None`` for other addresses."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    for scheme in _URI_SCHEMES:
        if text.lower().startswith(scheme):
            text = text[len(scheme) :]
            break
    user = text.split("@", 1)[0].split(";", 1)[0]
    digits = user.translate(_VISUAL_SEPARATORS).removeprefix("+")
    return digits if _DIGITS.fullmatch(digits) and len(digits) <= 32 else None


def rating_group(
    usage: Mapping[str, Any], path: str, profile: OcsProfile
) -> RatingGroupRule:
    number = required_uint(usage, "ratingGroup", path, MAX_UINT32)
    rule = profile.rating_groups.get(number)
    if rule is None:
        raise Invalid(
            f"{path}.ratingGroup",
            f"rating group {number} is not configured in profile {profile.name}",
        )
    return rule


def start_time(
    container: Mapping[str, Any], path: str, invocation_time: datetime
) -> datetime:
    first_usage = member(container, "timeOfFirstUsage", path)
    if first_usage is not None:
        return read_time(first_usage, f"{path}.timeOfFirstUsage")
    pdu = member_object(container, "pDUContainerInformation", path)
    pdu_path = f"{path}.pDUContainerInformation"
    if pdu is not None and member(pdu, "timeofFirstUsage", pdu_path) is not None:
        return read_time(
            member(pdu, "timeofFirstUsage", pdu_path), f"{pdu_path}.timeofFirstUsage"
        )
    stamps = member(container, "eventTimeStamps", path)
    if isinstance(stamps, list) and stamps:
        return read_time(stamps[0], f"{path}.eventTimeStamps[0]")
    if stamps is not None and not isinstance(stamps, list):
        raise Invalid(f"{path}.eventTimeStamps", "is not a list")
    return invocation_time


def quantities(
    container: Mapping[str, Any], path: str, rule: RatingGroupRule
) -> dict[str, int]:
    time = optional_uint(container, "time", path, MAX_UINT32)
    total = optional_uint(container, "totalVolume", path, MAX_UINT64)
    uplink = optional_uint(container, "uplinkVolume", path, MAX_UINT64)
    downlink = optional_uint(container, "downlinkVolume", path, MAX_UINT64)
    units = optional_uint(container, "serviceSpecificUnits", path, MAX_UINT64)
    volume = total
    volume_field = f"{path}.totalVolume"
    if volume is None and (uplink is not None or downlink is not None):
        volume = (uplink or 0) + (downlink or 0)
        volume_field = f"{path}.uplinkVolume+downlinkVolume"
    for value, field, limit in (
        (time, f"{path}.time", MAX_DURATION_SECONDS),
        (volume, volume_field, MAX_VOLUME_BYTES),
        (units, f"{path}.serviceSpecificUnits", MAX_UNITS),
    ):
        if value is not None and value > limit:
            raise Invalid(field, f"{value} is more than the generic format's {limit}")
    found = {
        name: value
        for name, value in (
            ("duration_seconds", time),
            ("volume_bytes", volume),
            ("units", units),
        )
        if value is not None
    }
    wanted = {"time": "duration_seconds", "volume": "volume_bytes", "units": "units"}
    if rule.quantity is not None and wanted[rule.quantity] not in found:
        source = {
            "time": "time",
            "volume": "totalVolume or uplinkVolume/downlinkVolume",
            "units": "serviceSpecificUnits",
        }[rule.quantity]
        raise Invalid(
            path,
            f"has no {source}, which rating group {rule.rating_group} is charged by",
        )
    if not found:
        raise Invalid(path, "has no time, volume or serviceSpecificUnits")
    return found


def price(
    container: Mapping[str, Any],
    path: str,
    usage_cost: object,
    usage_path: str,
) -> tuple[Decimal, str]:
    cost = member(container, "costInformation", path)
    cost_path = f"{path}.costInformation"
    if cost is None and usage_cost is not None:
        cost, cost_path = usage_cost, f"{usage_path}.costInformation"
    if cost is None:
        raise Invalid(cost_path, "is missing: rated usage needs its price")
    if not isinstance(cost, dict):
        raise Invalid(cost_path, "is not an object")
    unit_value = member(cost, "unitValue", cost_path)
    unit_cost = member(cost, "unitCost", cost_path)
    if unit_value is not None and unit_cost is not None:
        raise Invalid(cost_path, "has both unitValue and unitCost")
    unit = unit_value if unit_value is not None else unit_cost
    unit_path = f"{cost_path}.{'unitValue' if unit_value is not None else 'unitCost'}"
    if unit is None:
        raise Invalid(f"{cost_path}.unitValue", "is missing")
    if not isinstance(unit, dict):
        raise Invalid(unit_path, "is not an object {valueDigits, exponent}")
    digits_value = member(unit, "valueDigits", unit_path)
    digits = whole(digits_value)
    if digits is None or not -MAX_INT64 - 1 <= digits <= MAX_INT64:
        raise Invalid(
            f"{unit_path}.valueDigits", f"{show(digits_value)} is not a 64-bit integer"
        )
    exponent_value = member(unit, "exponent", unit_path)
    exponent = 0 if exponent_value is None else whole(exponent_value)
    if exponent is None or not -MAX_INT32 - 1 <= exponent <= MAX_INT32:
        raise Invalid(
            f"{unit_path}.exponent", f"{show(exponent_value)} is not a 32-bit integer"
        )
    amount = shift_decimal(Decimal(digits), exponent)
    try:
        money_text(amount)
    except ValueError as error:
        raise Invalid(unit_path, str(error)) from None
    currency_value = member(cost, "currencyCode", cost_path)
    if currency_value is None:
        raise Invalid(f"{cost_path}.currencyCode", "is missing")
    try:
        currency = currency_code(currency_value)
    except ValueError as error:
        raise Invalid(f"{cost_path}.currencyCode", str(error)) from None
    return amount, currency


def no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"
