"""OCS charging data records: 3GPP TS 32.291 ``ChargingDataRequest`` JSON lines.

One request a line; every ``usedUnitContainer`` of every ``multipleUnitUsage``
becomes one generic rated record. What is read, and the variants that real
charging systems send besides the letter of the specification:

- Keys are matched without regard to case, ``-`` or ``_``: ``UsedUnitContainer``,
  ``MultipleUnitUsage``, ``Cost-Information`` all work. A key given twice in two
  spellings is an error.
- Subscriber, ``subscriberIdentifier``: ``imsi-<14 or 15 digits>``,
  ``msisdn-<6 to 15 digits>``, ``nai-<user@realm>`` when a ``subscriber.nai_patterns``
  entry of the profile matches it (its named group ``imsi`` or ``msisdn`` is
  the subscriber; otherwise the NAI is refused as unsupported), or bare digits:
  15 digits are an IMSI, 6 to 14 an MSISDN (send ``msisdn-…`` for a 15-digit
  MSISDN). ``gci-``, ``gli-``, ``extid-`` are refused.
- Serving network, ``nfConsumerIdentification.nFPLMNID``: ``{mcc, mnc}`` as
  strings (``"234"``, ``"01"``) or numbers, or the TS 29.571 text ``"234-15"``.
  A numeric MCC is zero-padded to 3 digits. A numeric MNC has lost its leading
  zeros, so it is padded to 3 digits when the MCC is in the profile's
  ``plmn.three_digit_mnc_mccs`` (310 with 30 → ``"030"``) and to 2 digits
  otherwise (208 with 1 → ``"01"``). A PLMN that is not a home PLMN of the
  profile makes the usage roaming. Without an ``nFPLMNID`` the usage is taken as
  home usage without mcc/mnc (``plmn.missing: home``) or refused (``error``).
- Start time: the container's ``timeOfFirstUsage``, else its
  ``pDUContainerInformation.timeofFirstUsage``, else its first
  ``eventTimeStamps``, else the request's ``invocationTimeStamp``. RFC 3339 with
  ``Z`` or an offset (``+00:00``), fractions of 1 to 9 digits (``.5``).
- Quantities: ``time`` → duration_seconds, ``totalVolume`` (or, without it,
  ``uplinkVolume`` + ``downlinkVolume``) → volume_bytes, ``serviceSpecificUnits``
  → units; each that is present is kept, and the rating group's ``quantity``
  must be among them. Whole numbers as JSON integers (exact at any size: never
  read through a float) or as digit strings; 125.0 counts as 125.
- Price: a Cost-Information object, ``costInformation``, on the container or,
  for a unit usage with a single container, on the ``multipleUnitUsage``::

      {"unitValue": {"valueDigits": 25, "exponent": -2}, "currencyCode": 826}

  ``unitCost`` is accepted for ``unitValue``; ``exponent`` defaults to 0;
  amount = valueDigits * 10**exponent, exactly; ``currencyCode`` is the ISO 4217
  numeric code (826, ``"826"``) or the alphabetic one (``"GBP"``).
- Usage class: the ``ratingGroup`` looked up in the profile, its roaming class
  when roaming. Direction: ``iMSChargingInformation.roleOfNode`` or
  ``sMSChargingInformation.sMMessageType`` through the profile's tables, else
  the rating group's or the profile's default. Called number, when it is a
  telephone number: ``iMSChargingInformation.calledPartyAddress`` (``tel:``,
  ``sip:+…@…``) or the first ``sMSChargingInformation.recipientInfo``.
- Record id: ``SUBSCRIBER:SESSION:INVOCATION:RATINGGROUP:LOCALSEQUENCE``, the
  session being ``c`` + ``chargingId`` or, without one, ``t`` + the invocation
  time (``234150000000001:c7001:3:30:1``): the same request always gives the
  same ids, so a retransmitted request is not billed twice. An id longer than
  64 characters is replaced by ``ocs-`` + 40 hex digits of its SHA-256.

Anything else — a missing subscriber, a malformed PLMN, an unparsable time, an
unknown rating group, a negative volume, no price — is an error entry that
names the field by its path (``multipleUnitUsage[0].usedUnitContainer[1]
.totalVolume``); a line that is not JSON is an error for that line. One error
entry stands for a line, a unit usage or a container, whichever could not be
read; the valid rest goes on.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from ingest.transform.common import (
    IMSI,
    MAX_DURATION_SECONDS,
    MAX_UNITS,
    MAX_VOLUME_BYTES,
    MSISDN,
    Problem,
    TransformResult,
    build_record,
    money_text,
    shift_decimal,
)
from ingest.transform.currency import currency_code
from ingest.transform.ocs_profile import (
    DEFAULT_PROFILE,
    OcsProfile,
    RatingGroupRule,
    load_profile,
    parse_profile,
)
from ingest.transform.times import format_utc, parse_rfc3339

__all__ = [
    "DEFAULT_PROFILE",
    "OcsProfile",
    "load_profile",
    "parse_profile",
    "transform",
    "transform_file",
]

MAX_UINT32 = 2**32 - 1
MAX_UINT64 = 2**64 - 1
MAX_INT64 = 2**63 - 1
MAX_INT32 = 2**31 - 1
_MAX_RECORD_ID = 64
_DIGITS = re.compile(r"[0-9]+")
_SIGNED = re.compile(r"-?[0-9]+")
_PLMN_TEXT = re.compile(r"([0-9]{3})-([0-9]{2,3})")
_URI_SCHEMES = ("tel:", "sip:", "sips:", "msisdn-")
_VISUAL_SEPARATORS = str.maketrans("", "", "-.() ")

T = TypeVar("T")


class _Invalid(Exception):
    """One problem found while reading a request; carries the field path."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.problem = Problem(field, reason)


@dataclass(frozen=True)
class _Request:
    """What one request says about all of its containers."""

    subscriber: dict[str, str]
    subscriber_key: str
    session: str
    sequence: int
    invocation_time: datetime
    plmn: tuple[str, str] | None
    roaming: bool
    direction: str | None
    called_number: str | None


def transform(
    lines: Iterable[str | bytes], profile: OcsProfile, source: str
) -> TransformResult:
    """Transform ChargingDataRequest JSON lines into generic rated records.

    ``lines`` may be text or UTF-8 bytes (a file opened in either mode). Blank
    lines are skipped; everything that cannot be transformed becomes an error
    entry, and the valid rest goes on.
    """
    result = TransformResult(source=source)
    seen: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                result.lines_read += 1
                problem = Problem("line", f"is not valid UTF-8: {error.reason}")
                shown = raw.decode("utf-8", errors="replace")
                result.reject(line=number, problems=[problem], raw=shown)
                continue
        else:
            text = raw
        text = text.rstrip("\r\n")
        if number == 1:
            text = text.removeprefix("\ufeff")
        if not text.strip():
            continue
        result.lines_read += 1
        _transform_line(number, text, profile, result, seen)
    return result


def transform_file(
    path: str | os.PathLike[str], profile: OcsProfile, source: str
) -> TransformResult:
    """Transform a JSON-lines file on disk."""
    with Path(path).open("rb") as stream:
        return transform(stream, profile, source)


def _transform_line(
    number: int,
    text: str,
    profile: OcsProfile,
    result: TransformResult,
    seen: dict[str, int],
) -> None:
    def reject(problems: list[Problem], ref: str | None = None) -> None:
        result.reject(line=number, problems=problems, raw=text, record_ref=ref)

    try:
        document = json.loads(
            text, parse_int=int, parse_float=Decimal, parse_constant=_no_constant
        )
    except (ValueError, RecursionError) as error:
        reject([Problem("line", f"is not JSON: {error}")])
        return
    if not isinstance(document, dict):
        reject([Problem("line", "is not a JSON object (a ChargingDataRequest)")])
        return
    problems: list[Problem] = []
    request = _read_request(document, profile, problems)
    if request is None:
        reject(problems, _request_ref(document))
        return
    usages = _attempt(problems, _get, document, "multipleUnitUsage", "")
    if not problems and not isinstance(usages, list):
        reason = "is not a list" if usages is not None else "is missing"
        problems.append(Problem("multipleUnitUsage", reason))
    elif not problems and not usages:
        problems.append(Problem("multipleUnitUsage", "is empty: no usage reported"))
    if problems or not isinstance(usages, list):
        reject(problems, _prefix(request))
        return
    for index, usage in enumerate(usages):
        path = f"multipleUnitUsage[{index}]"
        for record, problems, ref in _read_usage(usage, path, request, profile):
            if record is not None and record["record_id"] in seen:
                earlier = seen[record["record_id"]]
                problems = [
                    Problem("record_id", f"duplicates a record of line {earlier}")
                ]
                record = None
            if record is None:
                reject(problems, ref)
            else:
                seen[record["record_id"]] = number
                result.records.append(record)


def _read_request(
    document: Mapping[str, Any], profile: OcsProfile, problems: list[Problem]
) -> _Request | None:
    subscriber = _attempt(problems, _subscriber, document, profile)
    invocation_time = _attempt(
        problems, _required_time, document, "invocationTimeStamp", ""
    )
    sequence = _attempt(
        problems, _required_uint, document, "invocationSequenceNumber", "", MAX_UINT32
    )
    charging_id = _attempt(
        problems, _optional_uint, document, "chargingId", "", MAX_UINT32
    )
    plmn = _attempt(problems, _serving_plmn, document, profile)
    if plmn is None and not profile.missing_plmn_is_home and not problems:
        problems.append(Problem("nfConsumerIdentification.nFPLMNID", "is missing"))
    direction = _attempt(problems, _direction, document, profile)
    called_number = _attempt(problems, _called_number, document)
    if problems or subscriber is None or invocation_time is None or sequence is None:
        return None
    if charging_id is not None:
        session = f"c{charging_id}"
    else:
        session = "t" + format_utc(invocation_time).replace("-", "").replace(":", "")
    return _Request(
        subscriber=subscriber,
        subscriber_key=next(iter(subscriber.values())),
        session=session,
        sequence=sequence,
        invocation_time=invocation_time,
        plmn=plmn,
        roaming=plmn is not None and plmn not in profile.home_plmns,
        direction=direction,
        called_number=called_number,
    )


def _read_usage(
    usage: object, path: str, request: _Request, profile: OcsProfile
) -> Iterable[tuple[dict[str, Any] | None, list[Problem], str | None]]:
    """Yield ``(record, problems, ref)`` for each container of one unit usage."""
    ref = _prefix(request)
    if not isinstance(usage, dict):
        yield None, [Problem(path, "is not an object")], ref
        return
    problems: list[Problem] = []
    rule = _attempt(problems, _rating_group, usage, path, profile)
    containers = _attempt(problems, _get, usage, "usedUnitContainer", path)
    usage_cost = _attempt(problems, _get, usage, "costInformation", path)
    container_path = f"{path}.usedUnitContainer"
    if problems:
        pass
    elif not isinstance(containers, list):
        reason = "is not a list" if containers is not None else "is missing"
        problems.append(Problem(container_path, reason))
    elif not containers:
        problems.append(Problem(container_path, "is empty: no used units reported"))
    elif usage_cost is not None and len(containers) != 1:
        problems.append(
            Problem(
                f"{path}.costInformation",
                f"one price for {len(containers)} containers cannot be divided; "
                "give each container its costInformation",
            )
        )
    if problems or rule is None or not isinstance(containers, list):
        yield None, problems, f"{ref}:{rule.rating_group if rule else '?'}"
        return
    for index, container in enumerate(containers):
        where = f"{container_path}[{index}]"
        yield _read_container(
            container, where, usage_cost, path, rule, request, profile
        )


def _read_container(
    container: object,
    path: str,
    usage_cost: object,
    usage_path: str,
    rule: RatingGroupRule,
    request: _Request,
    profile: OcsProfile,
) -> tuple[dict[str, Any] | None, list[Problem], str | None]:
    ref = f"{_prefix(request)}:{rule.rating_group}"
    if not isinstance(container, dict):
        return None, [Problem(path, "is not an object")], f"{ref}:?"
    problems: list[Problem] = []
    sequence = _attempt(
        problems, _required_uint, container, "localSequenceNumber", path, MAX_INT64
    )
    start_time = _attempt(problems, _start_time, container, path, request)
    quantities = _attempt(problems, _quantities, container, path, rule) or {}
    price = _attempt(problems, _price, container, path, usage_cost, usage_path)
    record_id = _record_id(request, rule.rating_group, sequence)
    if problems or price is None:
        return None, problems, record_id or f"{ref}:?"
    amount, currency = price
    plmn = request.plmn
    values: dict[str, Any] = {
        "record_id": record_id,
        **request.subscriber,
        "usage_class": rule.roaming_usage_class
        if request.roaming
        else rule.usage_class,
        "start_time": start_time,
        **quantities,
        "direction": request.direction or rule.direction or profile.default_direction,
        "called_number": request.called_number,
        "mcc": plmn[0] if plmn else None,
        "mnc": plmn[1] if plmn else None,
        "charge.amount": amount,
        "charge.currency": currency,
    }
    record, problems = build_record(values)
    return record, problems, record_id


def _record_id(
    request: _Request, rating_group: int, sequence: int | None
) -> str | None:
    if sequence is None:
        return None
    record_id = (
        f"{request.subscriber_key}:{request.session}:{request.sequence}:"
        f"{rating_group}:{sequence}"
    )
    if len(record_id) <= _MAX_RECORD_ID:
        return record_id
    return "ocs-" + hashlib.sha256(record_id.encode()).hexdigest()[:40]


def _prefix(request: _Request) -> str:
    return f"{request.subscriber_key}:{request.session}:{request.sequence}"


def _request_ref(document: Mapping[str, Any]) -> str | None:
    """What little identifies a request that could not be read, for the error."""
    parts = []
    for name in ("subscriberIdentifier", "chargingId", "invocationSequenceNumber"):
        try:
            value = _get(document, name, "")
        except _Invalid:
            value = None
        if isinstance(value, str | int) and not isinstance(value, bool):
            parts.append(f"{name}={value}")
    return " ".join(parts) or None


# Reading the parts of a request. Each reader raises _Invalid naming the field.


def _attempt(problems: list[Problem], reader: Callable[..., T], *args: Any) -> T | None:
    try:
        return reader(*args)
    except _Invalid as invalid:
        problems.append(invalid.problem)
        return None


def _normal(key: str) -> str:
    return key.replace("-", "").replace("_", "").lower()


def _get(obj: Mapping[str, Any], name: str, path: str) -> Any:
    """``obj[name]`` matched without regard to case, ``-`` and ``_``; JSON null
    counts as absent (``None``)."""
    wanted = _normal(name)
    keys = [key for key in obj if isinstance(key, str) and _normal(key) == wanted]
    if len(keys) > 1:
        raise _Invalid(_join(path, name), f"is given more than once: {', '.join(keys)}")
    return obj[keys[0]] if keys else None


def _object(obj: Mapping[str, Any], name: str, path: str) -> dict[str, Any] | None:
    value = _get(obj, name, path)
    if value is not None and not isinstance(value, dict):
        raise _Invalid(_join(path, name), "is not an object")
    return value


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _whole(value: object) -> int | None:
    """A JSON whole number, a digit string or a decimal without a fraction."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if (
        isinstance(value, Decimal)
        and value.is_finite()
        and value == value.to_integral()
    ):
        return int(value)
    if isinstance(value, str) and _SIGNED.fullmatch(value.strip()):
        return int(value.strip())
    return None


def _uint(value: object, path: str, maximum: int) -> int:
    number = _whole(value)
    if number is None:
        raise _Invalid(path, f"{_show(value)} is not a whole number")
    if number < 0:
        raise _Invalid(path, f"{number} is negative")
    if number > maximum:
        raise _Invalid(path, f"{number} is more than {maximum}")
    return number


def _required_uint(obj: Mapping[str, Any], name: str, path: str, maximum: int) -> int:
    value = _get(obj, name, path)
    if value is None:
        raise _Invalid(_join(path, name), "is missing")
    return _uint(value, _join(path, name), maximum)


def _optional_uint(
    obj: Mapping[str, Any], name: str, path: str, maximum: int
) -> int | None:
    value = _get(obj, name, path)
    return None if value is None else _uint(value, _join(path, name), maximum)


def _time(value: object, path: str) -> datetime:
    if not isinstance(value, str):
        raise _Invalid(path, f"{_show(value)} is not an RFC 3339 date-time text")
    try:
        return parse_rfc3339(value)
    except ValueError as error:
        raise _Invalid(path, str(error)) from None


def _required_time(obj: Mapping[str, Any], name: str, path: str) -> datetime:
    value = _get(obj, name, path)
    if value is None:
        raise _Invalid(_join(path, name), "is missing")
    return _time(value, _join(path, name))


def _subscriber(document: Mapping[str, Any], profile: OcsProfile) -> dict[str, str]:
    field = "subscriberIdentifier"
    value = _get(document, field, "")
    if value is None:
        raise _Invalid(field, "is missing: the usage has no subscriber")
    if not isinstance(value, str):
        raise _Invalid(field, f"{_show(value)} is not text")
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
        raise _Invalid(
            field,
            f"NAI {_show(rest)} is not supported: no subscriber.nai_patterns entry "
            f"of profile {profile.name} matches it",
        )
    if kind in ("gci", "gli", "extid"):
        raise _Invalid(field, f"{kind}- identifiers are not supported")
    if _DIGITS.fullmatch(text):
        return _identity("imsi" if len(text) == 15 else "msisdn", text, field)
    raise _Invalid(
        field, f"{_show(text)} is not an imsi-, msisdn- or nai- identifier or digits"
    )


def _identity(kind: str, digits: str, field: str) -> dict[str, str]:
    pattern, rule = (IMSI, "14 or 15") if kind == "imsi" else (MSISDN, "6 to 15")
    if not pattern.fullmatch(digits):
        raise _Invalid(field, f"{kind} {_show(digits)} is not {rule} digits")
    return {kind: digits}


def _serving_plmn(
    document: Mapping[str, Any], profile: OcsProfile
) -> tuple[str, str] | None:
    consumer = _object(document, "nfConsumerIdentification", "")
    if consumer is None:
        return None
    path = "nfConsumerIdentification.nFPLMNID"
    plmn = _get(consumer, "nFPLMNID", "nfConsumerIdentification")
    if plmn is None:
        return None
    if isinstance(plmn, str):
        match = _PLMN_TEXT.fullmatch(plmn.strip())
        if match is None:
            raise _Invalid(path, f"{_show(plmn)} is not an object or text MCC-MNC")
        return match[1], match[2]
    if not isinstance(plmn, dict):
        raise _Invalid(path, "is not an object {mcc, mnc}")
    mcc_value = _get(plmn, "mcc", path)
    mnc_value = _get(plmn, "mnc", path)
    mcc = _code(mcc_value, f"{path}.mcc", (3,), 3)
    width = 3 if mcc in profile.three_digit_mnc_mccs else 2
    mnc = _code(mnc_value, f"{path}.mnc", (2, 3), width)
    return mcc, mnc


def _code(value: object, path: str, lengths: tuple[int, ...], pad: int) -> str:
    """An MCC or MNC: digit text of an allowed length, or a number zero-padded."""
    if value is None:
        raise _Invalid(path, "is missing")
    if isinstance(value, str):
        text = value.strip()
        if _DIGITS.fullmatch(text) and len(text) in lengths:
            return text
    else:
        number = _whole(value)
        if number is not None and 0 <= number <= 999:
            return f"{number:0{pad}d}"
    allowed = " or ".join(str(length) for length in lengths)
    raise _Invalid(path, f"{_show(value)} is not {allowed} digits")


def _direction(document: Mapping[str, Any], profile: OcsProfile) -> str | None:
    ims = _object(document, "iMSChargingInformation", "")
    if ims is not None:
        role = _get(ims, "roleOfNode", "iMSChargingInformation")
        if role is not None:
            return _lookup(
                role, profile.role_of_node, "iMSChargingInformation.roleOfNode"
            )
    sms = _object(document, "sMSChargingInformation", "")
    if sms is not None:
        kind = _get(sms, "sMMessageType", "sMSChargingInformation")
        if kind is not None:
            return _lookup(
                kind, profile.sm_message_type, "sMSChargingInformation.sMMessageType"
            )
    return None


def _lookup(value: object, table: Mapping[str, str], path: str) -> str:
    if isinstance(value, str) and value.strip().upper() in table:
        return table[value.strip().upper()]
    known = ", ".join(table) or "none configured"
    raise _Invalid(path, f"{_show(value)} has no direction in the profile ({known})")


def _called_number(document: Mapping[str, Any]) -> str | None:
    ims = _object(document, "iMSChargingInformation", "")
    if ims is not None:
        number = _telephone(_get(ims, "calledPartyAddress", "iMSChargingInformation"))
        if number is not None:
            return number
    sms = _object(document, "sMSChargingInformation", "")
    recipients = None if sms is None else _get(sms, "recipientInfo", "")
    if isinstance(recipients, list) and recipients and isinstance(recipients[0], dict):
        first = recipients[0]
        number = _telephone(_get(first, "recipientGPSI", ""))
        if number is not None:
            return number
        other = _get(first, "recipientOtherAddress", "")
        if isinstance(other, dict):
            return _telephone(_get(other, "sMaddressData", ""))
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


def _rating_group(
    usage: Mapping[str, Any], path: str, profile: OcsProfile
) -> RatingGroupRule:
    number = _required_uint(usage, "ratingGroup", path, MAX_UINT32)
    rule = profile.rating_groups.get(number)
    if rule is None:
        raise _Invalid(
            f"{path}.ratingGroup",
            f"rating group {number} is not configured in profile {profile.name}",
        )
    return rule


def _start_time(container: Mapping[str, Any], path: str, request: _Request) -> datetime:
    first_usage = _get(container, "timeOfFirstUsage", path)
    if first_usage is not None:
        return _time(first_usage, f"{path}.timeOfFirstUsage")
    pdu = _object(container, "pDUContainerInformation", path)
    pdu_path = f"{path}.pDUContainerInformation"
    if pdu is not None and _get(pdu, "timeofFirstUsage", pdu_path) is not None:
        return _time(
            _get(pdu, "timeofFirstUsage", pdu_path), f"{pdu_path}.timeofFirstUsage"
        )
    stamps = _get(container, "eventTimeStamps", path)
    if isinstance(stamps, list) and stamps:
        return _time(stamps[0], f"{path}.eventTimeStamps[0]")
    if stamps is not None and not isinstance(stamps, list):
        raise _Invalid(f"{path}.eventTimeStamps", "is not a list")
    return request.invocation_time


def _quantities(
    container: Mapping[str, Any], path: str, rule: RatingGroupRule
) -> dict[str, int]:
    time = _optional_uint(container, "time", path, MAX_UINT32)
    total = _optional_uint(container, "totalVolume", path, MAX_UINT64)
    uplink = _optional_uint(container, "uplinkVolume", path, MAX_UINT64)
    downlink = _optional_uint(container, "downlinkVolume", path, MAX_UINT64)
    units = _optional_uint(container, "serviceSpecificUnits", path, MAX_UINT64)
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
            raise _Invalid(field, f"{value} is more than the generic format's {limit}")
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
        raise _Invalid(
            path,
            f"has no {source}, which rating group {rule.rating_group} is charged by",
        )
    if not found:
        raise _Invalid(path, "has no time, volume or serviceSpecificUnits")
    return found


def _price(
    container: Mapping[str, Any],
    path: str,
    usage_cost: object,
    usage_path: str,
) -> tuple[Decimal, str]:
    cost = _get(container, "costInformation", path)
    cost_path = f"{path}.costInformation"
    if cost is None and usage_cost is not None:
        cost, cost_path = usage_cost, f"{usage_path}.costInformation"
    if cost is None:
        raise _Invalid(cost_path, "is missing: rated usage needs its price")
    if not isinstance(cost, dict):
        raise _Invalid(cost_path, "is not an object")
    unit_value = _get(cost, "unitValue", cost_path)
    unit_cost = _get(cost, "unitCost", cost_path)
    if unit_value is not None and unit_cost is not None:
        raise _Invalid(cost_path, "has both unitValue and unitCost")
    unit = unit_value if unit_value is not None else unit_cost
    unit_path = f"{cost_path}.{'unitValue' if unit_value is not None else 'unitCost'}"
    if unit is None:
        raise _Invalid(f"{cost_path}.unitValue", "is missing")
    if not isinstance(unit, dict):
        raise _Invalid(unit_path, "is not an object {valueDigits, exponent}")
    digits_value = _get(unit, "valueDigits", unit_path)
    digits = _whole(digits_value)
    if digits is None or abs(digits) > MAX_INT64:
        raise _Invalid(
            f"{unit_path}.valueDigits", f"{_show(digits_value)} is not a 64-bit integer"
        )
    exponent_value = _get(unit, "exponent", unit_path)
    exponent = 0 if exponent_value is None else _whole(exponent_value)
    if exponent is None or abs(exponent) > MAX_INT32:
        raise _Invalid(
            f"{unit_path}.exponent", f"{_show(exponent_value)} is not a 32-bit integer"
        )
    amount = shift_decimal(Decimal(digits), exponent)
    try:
        money_text(amount)
    except ValueError as error:
        raise _Invalid(unit_path, str(error)) from None
    currency_value = _get(cost, "currencyCode", cost_path)
    if currency_value is None:
        raise _Invalid(f"{cost_path}.currencyCode", "is missing")
    try:
        currency = currency_code(currency_value)
    except ValueError as error:
        raise _Invalid(f"{cost_path}.currencyCode", str(error)) from None
    return amount, currency


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"
