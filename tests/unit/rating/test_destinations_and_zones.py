"""Choosing the destination by prefix and the zone of a roaming network."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.rating import RatingError, quote

from .tariffs import MIB, data, entry, london, per_minute, roaming, sms, tariff, voice

STD = tariff()
MONDAY_10 = london(2026, 3, 2, 10)
MONDAY_20 = london(2026, 3, 2, 20)

DESTINATION_CASES = [
    # MOB (rate 5, any band): fee 0.05 + 90 * 0.12 / 60 (0.18) = 0.23;
    # VOICE_MOB discount 0.05 -> net 0.18
    ("mobile", "VOICE_MOB", "447712345678", MONDAY_10, 90, "MOB", "0.2300", "0.1800"),
    # 4479 is longer than 447: MOB_PROMO (rate 6) at PEAK: 60 * 0.06 / 60 =
    # 0.06, no fee; net 0.06 - 0.05 = 0.01
    (
        "longest prefix",
        "VOICE_MOB",
        "447912345678",
        MONDAY_10,
        60,
        "MOB_PROMO",
        "0.0600",
        "0.0100",
    ),
    # off peak MOB_PROMO has no rate in force at the start: the shorter
    # prefix 447 (MOB): 0.05 + 60 * 0.12 / 60 = 0.17; net 0.12
    (
        "prefix without a rate then",
        "VOICE_MOB",
        "447912345678",
        MONDAY_20,
        60,
        "MOB",
        "0.1700",
        "0.1200",
    ),
    # INTL (rate 7): 61 s in 60 s steps = 120 s: 120 * 0.60 / 60 = 1.20
    (
        "international",
        "VOICE_INTL",
        "12125550100",
        MONDAY_10,
        61,
        "INTL",
        "1.20",
        "1.20",
    ),
    # "+" is not part of the prefix: as above
    ("plus sign", "VOICE_INTL", "+12125550100", MONDAY_10, 61, "INTL", "1.20", "1.20"),
    # 49 matches no prefix: the "*" destination (rate 8): 120 * 1.20 / 60 = 2.40
    ("any destination", "VOICE_INTL", "4930123456", MONDAY_10, 61, "*", "2.40", "2.40"),
    # INTL 600 s: 600 * 0.60 / 60 = 6.00 -> capped at 5.00
    (
        "capped international",
        "VOICE_INTL",
        "33123456789",
        MONDAY_10,
        600,
        "INTL",
        "5.00",
        "5.00",
    ),
]


@pytest.mark.parametrize(
    ("usage_class", "number", "start", "seconds", "destination", "charge", "net"),
    [case[1:] for case in DESTINATION_CASES],
    ids=[case[0] for case in DESTINATION_CASES],
)
def test_the_longest_prefix_with_a_rate_in_force_prices_the_call(
    usage_class, number, start, seconds, destination, charge, net
) -> None:
    rated = quote(STD, voice(start, seconds, number, usage_class))
    assert (rated.destination, str(rated.charge), str(rated.net)) == (
        destination,
        charge,
        net,
    )


def test_a_number_no_destination_matches_is_a_configuration_error() -> None:
    with pytest.raises(RatingError) as raised:
        quote(STD, voice(MONDAY_10, 60, "4930123456"))
    assert raised.value.code == "no_destination"


def test_a_usage_class_without_rates_is_a_configuration_error() -> None:
    with pytest.raises(RatingError) as raised:
        quote(STD, voice(MONDAY_10, 60, usage_class="VOICE_PREMIUM"))
    assert raised.value.code == "no_rate"


SHARED = entry(
    destinations={"LOW": ["4470"], "HIGH": ["4470"]},
    rates=[
        {
            "usage_class": "VOICE_MOB",
            "destination": "LOW",
            "weight": 5,
            "slabs": [per_minute("0.10", 60)],
        },
        {
            "usage_class": "VOICE_MOB",
            "destination": "HIGH",
            "time_band": "OFF",
            "weight": 10,
            "slabs": [per_minute("0.20", 60)],
        },
    ],
    discounts=[],
)


def test_among_equal_prefixes_the_heaviest_rate_in_force_at_the_start_wins() -> None:
    shared = tariff(SHARED)
    # 10:00: only LOW has a rate in force: 60 * 0.10 / 60 = 0.1 (no rounding)
    at_ten = quote(shared, voice(MONDAY_10, 60, "447012345", "VOICE_MOB"))
    # 20:00: HIGH (weight 10, OFF) beats LOW (weight 5): 60 * 0.20 / 60 = 0.2
    at_eight = quote(shared, voice(MONDAY_20, 60, "447012345", "VOICE_MOB"))
    assert (at_ten.destination, at_ten.charge) == ("LOW", Decimal("0.1"))
    assert (at_eight.destination, at_eight.charge) == ("HIGH", Decimal("0.2"))


ROAMING_CASES = [
    # France (208, any MNC) is in EU: rate 11: 90 * 0.25 / 60 = 0.375
    ("france", voice(MONDAY_10, 90, **roaming("208", "10")), "EU", "0.3750"),
    # 262/01 is named in EU by its MNC: 60 * 0.25 / 60 = 0.25
    (
        "one german network",
        voice(MONDAY_10, 60, **roaming("262", "01")),
        "EU",
        "0.2500",
    ),
    # data in EU (rate 12): 1 MiB * 0.02 / MiB = 0.02
    ("data abroad", data(MONDAY_10, MIB, **roaming("208", "01")), "EU", "0.0200"),
    # SMS in EU (rate 13): 0.10; the SMS_NAT discount 10 % applies: net 0.09
    ("sms abroad", sms(MONDAY_10, **roaming("208", "01")), "EU", "0.10"),
    # at home (234/15) the home rates apply: PEAK 30 s -> 0.20
    ("at home", voice(MONDAY_10, 30, **roaming("234", "15")), None, "0.2000"),
    # the home MCC with no MNC on the record: home
    ("home country", voice(MONDAY_10, 30, mcc="234", home_mcc="234"), None, "0.2000"),
]


@pytest.mark.parametrize(
    ("usage", "zone", "charge"),
    [case[1:] for case in ROAMING_CASES],
    ids=[case[0] for case in ROAMING_CASES],
)
def test_a_roaming_usage_takes_the_rates_of_its_zone(usage, zone, charge) -> None:
    rated = quote(STD, usage)
    assert (rated.zone, str(rated.charge)) == (zone, charge)


def test_a_roaming_sms_gets_the_usage_class_discount() -> None:
    # 0.10 - 10 % (0.01) = 0.09
    assert quote(STD, sms(MONDAY_10, **roaming("208", "01"))).net == Decimal("0.09")


@pytest.mark.parametrize(
    ("network", "code"),
    [
        (roaming("262", "02"), "no_zone"),  # EU names 262/01 only
        (roaming("505", "01"), "no_zone"),  # no zone names Australia
        (roaming("310", "260"), "no_rate"),  # WORLD has no VOICE_NAT rate
    ],
    ids=["another network of a named country", "unnamed country", "zone without rate"],
)
def test_roaming_outside_the_priced_zones_is_a_configuration_error(
    network: dict[str, str], code: str
) -> None:
    with pytest.raises(RatingError) as raised:
        quote(STD, voice(MONDAY_10, 60, **network))
    assert raised.value.code == code


def test_a_network_named_with_its_mnc_is_preferred_to_its_country() -> None:
    raw = entry(
        zones={"EU": [{"mcc": "262"}], "PARTNER": [{"mcc": "262", "mnc": "02"}]},
        rates=[
            {"usage_class": "DATA", "zone": "EU", "slabs": [per_minute("2", 60)]},
            {"usage_class": "DATA", "zone": "PARTNER", "slabs": [per_minute("1", 60)]},
        ],
        discounts=[],
    )
    rated = quote(tariff(raw), data(MONDAY_10, 60, **roaming("262", "02")))
    assert (rated.zone, rated.charge) == ("PARTNER", Decimal(1))
