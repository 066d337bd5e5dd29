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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from ingest.transform import ocs_fields as read
from ingest.transform.common import TransformResult
from ingest.transform.generic import Problem, build_record
from ingest.transform.ocs_profile import (
    DEFAULT_PROFILE,
    OcsProfile,
    RatingGroupRule,
    load_profile,
    parse_profile,
)
from ingest.transform.times import format_utc

__all__ = [
    "DEFAULT_PROFILE",
    "OcsProfile",
    "load_profile",
    "parse_profile",
    "transform",
    "transform_file",
]

_MAX_RECORD_ID = 64


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
            text, parse_int=int, parse_float=Decimal, parse_constant=read.no_constant
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
    usages = read.attempt(problems, read.member, document, "multipleUnitUsage", "")
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
    subscriber = read.attempt(problems, read.subscriber, document, profile)
    invocation_time = read.attempt(
        problems, read.required_time, document, "invocationTimeStamp", ""
    )
    sequence = read.attempt(
        problems,
        read.required_uint,
        document,
        "invocationSequenceNumber",
        "",
        read.MAX_UINT32,
    )
    charging_id = read.attempt(
        problems, read.optional_uint, document, "chargingId", "", read.MAX_UINT32
    )
    plmn = read.attempt(problems, read.serving_plmn, document, profile)
    if plmn is None and not profile.missing_plmn_is_home and not problems:
        problems.append(Problem("nfConsumerIdentification.nFPLMNID", "is missing"))
    direction = read.attempt(problems, read.direction, document, profile)
    called_number = read.attempt(problems, read.called_number, document)
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
    rule = read.attempt(problems, read.rating_group, usage, path, profile)
    containers = read.attempt(problems, read.member, usage, "usedUnitContainer", path)
    usage_cost = read.attempt(problems, read.member, usage, "costInformation", path)
    if not problems:
        read.attempt(problems, _check_containers, containers, usage_cost, path)
    if problems or rule is None or not isinstance(containers, list):
        yield None, problems, f"{ref}:{rule.rating_group if rule else '?'}"
        return
    for index, container in enumerate(containers):
        where = f"{path}.usedUnitContainer[{index}]"
        yield _read_container(
            container, where, usage_cost, path, rule, request, profile
        )


def _check_containers(containers: object, usage_cost: object, path: str) -> None:
    where = f"{path}.usedUnitContainer"
    if not isinstance(containers, list):
        reason = "is not a list" if containers is not None else "is missing"
        raise read.Invalid(where, reason)
    if not containers:
        raise read.Invalid(where, "is empty: no used units reported")
    if usage_cost is not None and len(containers) != 1:
        raise read.Invalid(
            f"{path}.costInformation",
            f"one price for {len(containers)} containers cannot be divided; "
            "give each container its costInformation",
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
    sequence = read.attempt(
        problems,
        read.required_uint,
        container,
        "localSequenceNumber",
        path,
        read.MAX_INT64,
    )
    start_time = read.attempt(
        problems, read.start_time, container, path, request.invocation_time
    )
    quantities = read.attempt(problems, read.quantities, container, path, rule) or {}
    price = read.attempt(problems, read.price, container, path, usage_cost, usage_path)
    record_id = _record_id(request, rule.rating_group, sequence)
    if problems or price is None:
        return None, problems, record_id or f"{ref}:?"
    amount, currency = price
    plmn = request.plmn
    usage_class = rule.roaming_usage_class if request.roaming else rule.usage_class
    values: dict[str, Any] = {
        "record_id": record_id,
        **request.subscriber,
        "usage_class": usage_class,
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
            value = read.member(document, name, "")
        except read.Invalid:
            value = None
        if isinstance(value, str | int) and not isinstance(value, bool):
            parts.append(f"{name}={value}")
    return " ".join(parts) or None
