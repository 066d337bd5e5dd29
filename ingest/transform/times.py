"""Reading and writing RFC 3339 times as charging systems really send them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

_RFC3339 = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]"
    r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
    r"(?:[.,](?P<fraction>[0-9]{1,9}))?"
    r"(?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<off_h>[0-9]{2}):?(?P<off_m>[0-9]{2}))?"
)


def parse_rfc3339(text: str) -> datetime:
    """Read an RFC 3339 date-time into an aware datetime in UTC.

    Accepts what charging systems send besides the strict form: ``Z`` or ``z``,
    ``+00:00`` and other offsets (also without the colon, ``+0100``), a ``t`` or a
    space between date and time, and fractions of 1 to 9 digits (``.5`` is half a
    second; digits beyond microseconds are dropped). A time without an offset is
    refused: it could be any of 26 hours. Raises ``ValueError`` with the reason.
    """
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{_quote(text)} is not an RFC 3339 date-time")
    if match["utc"] is None and match["sign"] is None:
        raise ValueError(f"{_quote(text)} has no UTC offset (Z or ±hh:mm)")
    try:
        year, month, day = (int(part) for part in match["date"].split("-"))
        fraction = (match["fraction"] or "").ljust(6, "0")[:6]
        moment = datetime(
            year,
            month,
            day,
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"]),
            int(fraction),
            tzinfo=UTC,
        )
    except ValueError as error:
        raise ValueError(f"{_quote(text)} is not a real date-time: {error}") from None
    if match["sign"] is not None:
        hours, minutes = int(match["off_h"]), int(match["off_m"])
        if hours > 23 or minutes > 59:
            raise ValueError(f"{_quote(text)} has an impossible UTC offset")
        offset = timedelta(hours=hours, minutes=minutes)
        zone = timezone(offset if match["sign"] == "+" else -offset)
        moment = moment.replace(tzinfo=zone)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{_quote(text)} is out of range") from None


def format_utc(moment: datetime) -> str:
    """RFC 3339 in UTC with ``Z``: seconds, or milli/microseconds when present."""
    if moment.tzinfo is None:
        raise ValueError("a time without a time zone cannot be written as UTC")
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        fraction = f"{utc.microsecond:06d}"
        text += "." + (fraction[:3] if fraction.endswith("000") else fraction)
    return text + "Z"


def _quote(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")
