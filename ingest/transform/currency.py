"""ISO 4217 currency codes: alphabetic codes pass, numeric codes are translated.

The Diameter Cost-Information AVP carries its currency as the ISO 4217 *numeric*
code (826 for GBP); many charging systems send the alphabetic code instead. The
table holds the currencies operators commonly bill in; a numeric code that is
not in it is refused rather than guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

ISO_4217_NUMERIC: Mapping[int, str] = {
    8: "ALL",
    32: "ARS",
    36: "AUD",
    48: "BHD",
    50: "BDT",
    51: "AMD",
    68: "BOB",
    72: "BWP",
    96: "BND",
    124: "CAD",
    144: "LKR",
    152: "CLP",
    156: "CNY",
    170: "COP",
    188: "CRC",
    203: "CZK",
    208: "DKK",
    214: "DOP",
    230: "ETB",
    320: "GTQ",
    344: "HKD",
    348: "HUF",
    352: "ISK",
    356: "INR",
    360: "IDR",
    376: "ILS",
    388: "JMD",
    392: "JPY",
    398: "KZT",
    400: "JOD",
    404: "KES",
    410: "KRW",
    414: "KWD",
    446: "MOP",
    458: "MYR",
    480: "MUR",
    484: "MXN",
    498: "MDL",
    504: "MAD",
    512: "OMR",
    516: "NAD",
    524: "NPR",
    554: "NZD",
    566: "NGN",
    578: "NOK",
    586: "PKR",
    590: "PAB",
    600: "PYG",
    604: "PEN",
    608: "PHP",
    634: "QAR",
    643: "RUB",
    646: "RWF",
    682: "SAR",
    702: "SGD",
    704: "VND",
    710: "ZAR",
    752: "SEK",
    756: "CHF",
    764: "THB",
    780: "TTD",
    784: "AED",
    800: "UGX",
    807: "MKD",
    818: "EGP",
    826: "GBP",
    834: "TZS",
    840: "USD",
    858: "UYU",
    860: "UZS",
    901: "TWD",
    933: "BYN",
    936: "GHS",
    941: "RSD",
    944: "AZN",
    946: "RON",
    949: "TRY",
    950: "XAF",
    951: "XCD",
    952: "XOF",
    953: "XPF",
    967: "ZMW",
    975: "BGN",
    977: "BAM",
    978: "EUR",
    980: "UAH",
    981: "GEL",
    985: "PLN",
    986: "BRL",
}

_ALPHABETIC = re.compile(r"[A-Za-z]{3}")
_NUMERIC = re.compile(r"[0-9]{1,3}")


def currency_code(value: object) -> str:
    """The ISO 4217 alphabetic code for ``GBP``, ``gbp``, ``826``, ``"826"``.

    Raises ``ValueError`` for anything else, including a numeric code that is not
    in :data:`ISO_4217_NUMERIC`.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an ISO 4217 currency code")
    if isinstance(value, int):
        return _numeric(value)
    if isinstance(value, str):
        text = value.strip()
        if _ALPHABETIC.fullmatch(text):
            return text.upper()
        if _NUMERIC.fullmatch(text):
            return _numeric(int(text))
    raise ValueError(f"{value!r} is not an ISO 4217 currency code")


def _numeric(code: int) -> str:
    try:
        return ISO_4217_NUMERIC[code]
    except KeyError:
        raise ValueError(
            f"{code:03d} is not an ISO 4217 numeric code known here; "
            "send the alphabetic code (GBP, EUR…)"
        ) from None
