"""OCS charging data records (TS 32.291 ChargingDataRequest JSON lines) become
generic rated records; every variant operators meet is read, the rest refused."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ingest.transform import ocs
from ingest.transform.common import write_outputs
from ingest.transform.currency import ISO_4217_NUMERIC, currency_code
from ingest.transform.generic import money_text
from ingest.transform.ocs_profile import DEFAULT_PROFILE, parse_profile
from ingest.transform.profiles import ProfileError
from ingest.transform.times import format_utc, parse_rfc3339

SAMPLE = Path(ocs.__file__).resolve().parent.parent / "samples" / "ocs-sample.jsonl"
SCHEMA = Path(ocs.__file__).resolve().parent.parent / "schemas"
PROFILE = ocs.load_profile()


def a_request(**changes: Any) -> dict[str, Any]:
    """A valid voice request (one container); keyword arguments replace keys."""
    request: dict[str, Any] = {
        "subscriberIdentifier": "imsi-234150000000001",
        "chargingId": 7001,
        "nfConsumerIdentification": {
            "nodeFunctionality": "CEF",
            "nFPLMNID": {"mcc": "234", "mnc": "15"},
        },
        "invocationTimeStamp": "2026-11-21T10:00:06Z",
        "invocationSequenceNumber": 2,
        "multipleUnitUsage": [
            {
                "ratingGroup": 10,
                "usedUnitContainer": [
                    {
                        "localSequenceNumber": 1,
                        "timeOfFirstUsage": "2026-11-21T09:58:01Z",
                        "time": 125,
                        "costInformation": {
                            "unitValue": {"valueDigits": 25, "exponent": -2},
                            "currencyCode": "GBP",
                        },
                    }
                ],
            }
        ],
    }
    request.update(changes)
    return request


def a_container(**changes: Any) -> dict[str, Any]:
    container: dict[str, Any] = copy.deepcopy(
        a_request()["multipleUnitUsage"][0]["usedUnitContainer"][0]
    )
    container.update(changes)
    for key in [key for key, value in container.items() if value is None]:
        del container[key]
    return container


def with_container(rating_group: int = 10, **changes: Any) -> dict[str, Any]:
    """A request whose only container has the given keys replaced (None drops)."""
    return a_request(
        multipleUnitUsage=[
            {"ratingGroup": rating_group, "usedUnitContainer": [a_container(**changes)]}
        ]
    )


def transform(*requests: dict[str, Any] | str, profile: ocs.OcsProfile = PROFILE):
    lines = [item if isinstance(item, str) else as_line(item) for item in requests]
    return ocs.transform(lines, profile, "OCS1")


def as_line(request: dict[str, Any]) -> str:
    """The request as a JSON line; a Decimal is written as the number literal."""
    text = json.dumps(request, default=lambda value: f"<<{value}>>")
    return text.replace('"<<', "").replace('>>"', "") + "\n"


def only_record(*requests: dict[str, Any] | str) -> dict[str, Any]:
    result = transform(*requests)
    assert result.errors == []
    assert len(result.records) == 1
    return result.records[0]


def only_error(*requests: dict[str, Any] | str) -> dict[str, Any]:
    result = transform(*requests)
    assert result.records == []
    assert len(result.errors) == 1
    return result.errors[0]


# The sample file and the output files.


def test_the_sample_file_gives_ten_records_and_two_errors() -> None:
    result = ocs.transform_file(SAMPLE, PROFILE, "OCS1")

    assert (result.lines_read, result.record_count, result.error_count) == (10, 10, 2)
    assert [(error["line"], error["field"]) for error in result.errors] == [
        (9, "line"),
        (10, "subscriberIdentifier"),
    ]
    assert result.errors[0]["reason"].startswith("is not JSON")
    assert result.errors[1]["record_ref"] == "invocationSequenceNumber=9"


def test_the_sample_file_covers_each_kind_of_usage() -> None:
    records = {
        record["record_id"]: record
        for record in ocs.transform_file(SAMPLE, PROFILE, "OCS1").records
    }

    assert records["234150000000001:c7001:2:10:1"] == {
        "record_id": "234150000000001:c7001:2:10:1",
        "imsi": "234150000000001",
        "usage_class": "VOICE_NAT",
        "start_time": "2026-11-21T09:58:01Z",
        "duration_seconds": 60,
        "direction": "MO",
        "called_number": "441632960001",
        "mcc": "234",
        "mnc": "15",
        "charge": {"amount": "0.1200", "currency": "GBP"},
    }
    sms = records["447700900123:t20261121T101003.500Z:0:20:1"]
    assert (sms["usage_class"], sms["units"], sms["start_time"]) == (
        "SMS_NAT",
        1,
        "2026-11-21T10:10:03.500Z",
    )
    assert sms["called_number"] == "447700900456"
    assert records["234150000000002:c4242:5:30:7"]["volume_bytes"] == 2**53 + 1
    assert records["234150000000002:c4242:5:30:7"]["charge"]["amount"] == "123.4567"
    assert records["234150000000002:c4242:5:30:8"]["volume_bytes"] == 10485760
    roaming = records["234150000000001:c9001:1:30:1"]
    assert (roaming["usage_class"], roaming["mcc"], roaming["mnc"]) == (
        "DATA_ROAM",
        "208",
        "01",
    )
    upper_case = records["447700900124:c7002:1:10:3"]
    assert upper_case["direction"] == "MT"
    assert upper_case["charge"] == {"amount": "0.0840", "currency": "GBP"}
    assert records["234150000000003:t20261121T133002Z:0:25:1"]["imsi"] == (
        "234150000000003"
    )
    assert records["234150000000002:c7003:1:10:1"]["usage_class"] == "VOICE_ROAM"
    assert records["234150000000003:t20261121T150000Z:3:30:4"]["mnc"] == "030"


def test_a_volume_beyond_two_to_the_53_survives_the_written_file_exactly(
    tmp_path: Path,
) -> None:
    huge = 2**63 - 1
    result = transform(with_container(30, time=None, totalVolume=huge))
    assert result.errors == []

    written = write_outputs(result, {"file_id": "OCS1-1"}, tmp_path, "OCS1-1")

    text = written.path.read_text(encoding="utf-8")
    assert str(huge) in text
    assert json.loads(text)["records"][0]["volume_bytes"] == huge
    assert float(huge) != huge  # a float would have lost it


def test_the_written_sample_matches_the_published_schema(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema_file = SCHEMA / "usage-rated.schema.json"
    if not schema_file.exists():
        pytest.skip("the generic format's schema is not published yet")
    result = ocs.transform_file(SAMPLE, PROFILE, "OCS1")

    written = write_outputs(result, {"file_id": "OCS1-0001"}, tmp_path, "OCS1-0001")

    document = json.loads(written.path.read_text(encoding="utf-8"))
    jsonschema.validate(document, json.loads(schema_file.read_text(encoding="utf-8")))
    assert written.errors_path is not None
    errors = json.loads(written.errors_path.read_text(encoding="utf-8"))
    assert (errors["record_count"], errors["error_count"]) == (10, 2)


# Subscriber.


@pytest.mark.parametrize(
    ("identifier", "subscriber"),
    [
        ("imsi-234150000000001", {"imsi": "234150000000001"}),
        ("IMSI-234150000000001", {"imsi": "234150000000001"}),
        ("msisdn-447700900123", {"msisdn": "447700900123"}),
        ("msisdn-+447700900123", {"msisdn": "447700900123"}),
        (
            "nai-234150000000003@nai.5gc.mnc015.mcc234.3gppnetwork.org",
            {"imsi": "234150000000003"},
        ),
        ("234150000000001", {"imsi": "234150000000001"}),
        ("447700900123", {"msisdn": "447700900123"}),
        ("33612345678901", {"msisdn": "33612345678901"}),
    ],
)
def test_the_subscriber_is_read_from_each_identifier_form(
    identifier: str, subscriber: dict[str, str]
) -> None:
    record = only_record(a_request(subscriberIdentifier=identifier))

    assert {key: record[key] for key in ("imsi", "msisdn") if key in record} == (
        subscriber
    )


@pytest.mark.parametrize(
    ("identifier", "reason"),
    [
        ("nai-alice@example.org", "NAI 'alice@example.org' is not supported"),
        ("gci-1234", "gci- identifiers are not supported"),
        ("imsi-23415", "imsi '23415' is not 14 or 15 digits"),
        ("msisdn-4477", "msisdn '4477' is not 6 to 15 digits"),
        ("tel:+447700900123", "is not an imsi-, msisdn- or nai- identifier"),
        (447700900123, "is not text"),
        (None, "is missing"),
    ],
)
def test_a_subscriber_that_cannot_be_read_is_an_error_naming_the_field(
    identifier: object, reason: str
) -> None:
    request = a_request(subscriberIdentifier=identifier)
    if identifier is None:
        del request["subscriberIdentifier"]

    error = only_error(request)

    assert error["field"] == "subscriberIdentifier"
    assert reason in error["reason"]


def test_an_nai_can_be_mapped_to_an_msisdn_by_the_profile() -> None:
    profile = profile_with(
        subscriber={"nai_patterns": [r"(?P<msisdn>[0-9]+)@ims\.example\.org"]}
    )

    result = transform(
        a_request(subscriberIdentifier="nai-447700900123@ims.example.org"),
        profile=profile,
    )

    assert result.records[0]["msisdn"] == "447700900123"


# Times.


@pytest.mark.parametrize(
    ("text", "start_time"),
    [
        ("2026-11-21T09:58:01Z", "2026-11-21T09:58:01Z"),
        ("2026-11-21T09:58:01+00:00", "2026-11-21T09:58:01Z"),
        ("2026-11-21T10:58:01+01:00", "2026-11-21T09:58:01Z"),
        ("2026-11-21T04:58:01-0500", "2026-11-21T09:58:01Z"),
        ("2026-11-21T09:58:01.5Z", "2026-11-21T09:58:01.500Z"),
        ("2026-11-21T09:58:01.123456789Z", "2026-11-21T09:58:01.123456Z"),
        ("2026-11-21 09:58:01z", "2026-11-21T09:58:01Z"),
    ],
)
def test_the_start_time_accepts_offsets_and_short_fractions(
    text: str, start_time: str
) -> None:
    record = only_record(with_container(timeOfFirstUsage=text))

    assert record["start_time"] == start_time


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2026-11-21T09:58:01", "has no UTC offset"),
        ("2026-11-31T09:58:01Z", "is not a real date-time"),
        ("21/11/2026 09:58", "is not an RFC 3339 date-time"),
        ("2026-11-21T09:58:01+25:00", "impossible UTC offset"),
        ("0001-01-01T00:00:00+01:00", "is out of range"),
        ("1899-12-31T23:59:59Z", "is not in the years 1900 to 2999"),
    ],
)
def test_an_unparsable_time_is_an_error_naming_the_field(
    text: str, reason: str
) -> None:
    error = only_error(with_container(timeOfFirstUsage=text))

    assert (
        error["field"] == "multipleUnitUsage[0].usedUnitContainer[0].timeOfFirstUsage"
    )
    assert reason in error["reason"]


def test_the_start_time_falls_back_from_container_to_request() -> None:
    pdu = {"timeofFirstUsage": "2026-11-21T08:00:00Z"}
    from_pdu = with_container(timeOfFirstUsage=None, pDUContainerInformation=pdu)
    from_events = with_container(
        timeOfFirstUsage=None, eventTimeStamps=["2026-11-21T07:00:00Z"]
    )
    from_request = with_container(timeOfFirstUsage=None)

    assert only_record(from_pdu)["start_time"] == "2026-11-21T08:00:00Z"
    assert only_record(from_events)["start_time"] == "2026-11-21T07:00:00Z"
    assert only_record(from_request)["start_time"] == "2026-11-21T10:00:06Z"


def test_an_unparsable_invocation_time_stamp_is_an_error() -> None:
    error = only_error(a_request(invocationTimeStamp="yesterday"))

    assert error["field"] == "invocationTimeStamp"


def test_parse_and_format_rfc3339_round_trip_in_utc() -> None:
    moment = parse_rfc3339("2026-07-01T12:00:00.25+01:00")

    assert moment == datetime(2026, 7, 1, 11, 0, 0, 250000, tzinfo=UTC)
    assert format_utc(moment) == "2026-07-01T11:00:00.250Z"
    assert format_utc(moment.replace(microsecond=123456)) == (
        "2026-07-01T11:00:00.123456Z"
    )


# Quantities.


@pytest.mark.parametrize(
    ("rating_group", "container", "quantities"),
    [
        (10, {"time": 125}, {"duration_seconds": 125}),
        (30, {"totalVolume": 10485760}, {"volume_bytes": 10485760}),
        (30, {"uplinkVolume": 1000, "downlinkVolume": 24}, {"volume_bytes": 1024}),
        (30, {"downlinkVolume": 24}, {"volume_bytes": 24}),
        (30, {"totalVolume": "18446744073"}, {"volume_bytes": 18446744073}),
        (
            30,
            {"totalVolume": 5, "time": 60},
            {"volume_bytes": 5, "duration_seconds": 60},
        ),
        (20, {"serviceSpecificUnits": 1}, {"units": 1}),
        (10, {"time": 125.0}, {"duration_seconds": 125}),
    ],
)
def test_the_quantity_comes_from_time_volume_or_units(
    rating_group: int, container: dict[str, Any], quantities: dict[str, int]
) -> None:
    used = a_container(**{"time": None, **container})
    record = only_record(
        a_request(
            multipleUnitUsage=[
                {"ratingGroup": rating_group, "usedUnitContainer": [used]}
            ]
        )
    )

    assert {key: record[key] for key in quantities} == quantities
    assert not {"duration_seconds", "volume_bytes", "units"} - set(quantities) & set(
        record
    )


def test_a_big_volume_line_is_read_without_a_float() -> None:
    line = json.dumps(with_container(time=None)).replace(
        '"localSequenceNumber": 1',
        '"localSequenceNumber": 1, "totalVolume": 9007199254740993',
    )
    request = json.loads(line)
    request["multipleUnitUsage"][0]["ratingGroup"] = 30

    record = only_record(json.dumps(request))

    assert record["volume_bytes"] == 9007199254740993


@pytest.mark.parametrize(
    ("container", "field", "reason"),
    [
        ({"totalVolume": -1}, "totalVolume", "-1 is negative"),
        ({"uplinkVolume": -5}, "uplinkVolume", "is negative"),
        ({"totalVolume": 1.5}, "totalVolume", "is not a whole number"),
        ({"totalVolume": "lots"}, "totalVolume", "is not a whole number"),
        ({"totalVolume": "9" * 5000}, "totalVolume", "is not a whole number"),
        ({"totalVolume": Decimal("1E+999999999")}, "totalVolume", "not a whole number"),
        ({"totalVolume": 2**64}, "totalVolume", "is more than 18446744073709551615"),
        ({"totalVolume": 2**63}, "totalVolume", "is more than the generic format's"),
        ({"time": 60}, "", "has no totalVolume or uplinkVolume/downlinkVolume"),
    ],
)
def test_a_bad_volume_is_an_error_naming_the_field(
    container: dict[str, Any], field: str, reason: str
) -> None:
    used = a_container(**{"time": None, **container})
    error = only_error(
        a_request(multipleUnitUsage=[{"ratingGroup": 30, "usedUnitContainer": [used]}])
    )

    path = "multipleUnitUsage[0].usedUnitContainer[0]"
    assert error["field"] == (f"{path}.{field}" if field else path)
    assert reason in error["reason"]


# Serving network.


@pytest.mark.parametrize(
    ("plmn", "mcc", "mnc"),
    [
        ({"mcc": "234", "mnc": "15"}, "234", "15"),
        ({"mcc": 234, "mnc": 15}, "234", "15"),
        ({"mcc": 208, "mnc": 1}, "208", "01"),
        ({"mcc": "208", "mnc": "01"}, "208", "01"),
        ({"mcc": 310, "mnc": 30}, "310", "030"),
        ({"mcc": "310", "mnc": "030"}, "310", "030"),
        ({"mcc": 310, "mnc": 410}, "310", "410"),
        ({"mcc": 1, "mnc": 1}, "001", "01"),
        ({"MCC": "214", "MNC": "07"}, "214", "07"),
        ("214-07", "214", "07"),
    ],
)
def test_the_serving_network_is_read_from_strings_or_numbers(
    plmn: object, mcc: str, mnc: str
) -> None:
    consumer = {"nodeFunctionality": "CEF", "nFPLMNID": plmn}

    record = only_record(a_request(nfConsumerIdentification=consumer))

    assert (record["mcc"], record["mnc"]) == (mcc, mnc)


@pytest.mark.parametrize(
    ("plmn", "field"),
    [
        ({"mcc": "23", "mnc": "15"}, "nfConsumerIdentification.nFPLMNID.mcc"),
        ({"mcc": "2345", "mnc": "15"}, "nfConsumerIdentification.nFPLMNID.mcc"),
        ({"mcc": 1000, "mnc": "15"}, "nfConsumerIdentification.nFPLMNID.mcc"),
        ({"mcc": "234", "mnc": "1"}, "nfConsumerIdentification.nFPLMNID.mnc"),
        ({"mcc": "234", "mnc": "1a"}, "nfConsumerIdentification.nFPLMNID.mnc"),
        ({"mcc": "234", "mnc": True}, "nfConsumerIdentification.nFPLMNID.mnc"),
        ({"mcc": "234"}, "nfConsumerIdentification.nFPLMNID.mnc"),
        ("23415", "nfConsumerIdentification.nFPLMNID"),
        ([234, 15], "nfConsumerIdentification.nFPLMNID"),
    ],
)
def test_a_malformed_plmn_is_an_error_naming_the_field(
    plmn: object, field: str
) -> None:
    consumer = {"nodeFunctionality": "CEF", "nFPLMNID": plmn}

    error = only_error(a_request(nfConsumerIdentification=consumer))

    assert error["field"] == field


def test_usage_without_a_plmn_is_home_usage_unless_the_profile_says_error() -> None:
    request = a_request(nfConsumerIdentification={"nodeFunctionality": "CEF"})
    strict = profile_with(plmn={"missing": "error"})

    record = only_record(request)
    refused = transform(request, profile=strict)

    assert (record["usage_class"], "mcc" in record) == ("VOICE_NAT", False)
    assert refused.errors[0]["field"] == "nfConsumerIdentification.nFPLMNID"


# Usage class and roaming.


@pytest.mark.parametrize(
    ("rating_group", "plmn", "usage_class"),
    [
        (10, {"mcc": "234", "mnc": "15"}, "VOICE_NAT"),
        (10, {"mcc": "208", "mnc": "01"}, "VOICE_ROAM"),
        (11, {"mcc": "234", "mnc": "15"}, "VOICE_INT"),
        (11, {"mcc": "208", "mnc": "01"}, "VOICE_ROAM"),
        (10, {"mcc": "234", "mnc": "30"}, "VOICE_ROAM"),
    ],
)
def test_the_rating_group_gives_the_usage_class_and_a_foreign_plmn_roaming(
    rating_group: int, plmn: dict[str, str], usage_class: str
) -> None:
    request = a_request(
        nfConsumerIdentification={"nodeFunctionality": "CEF", "nFPLMNID": plmn}
    )
    request["multipleUnitUsage"][0]["ratingGroup"] = rating_group

    assert only_record(request)["usage_class"] == usage_class


def test_several_home_plmns_are_all_home() -> None:
    profile = profile_with(
        home_plmn=[{"mcc": "234", "mnc": "15"}, {"mcc": "234", "mnc": "91"}]
    )
    plmn = {"nodeFunctionality": "CEF", "nFPLMNID": {"mcc": "234", "mnc": "91"}}

    result = transform(a_request(nfConsumerIdentification=plmn), profile=profile)

    assert result.records[0]["usage_class"] == "VOICE_NAT"


def test_an_unknown_rating_group_is_an_error_and_the_other_usage_goes_on() -> None:
    request = a_request()
    unknown = copy.deepcopy(request["multipleUnitUsage"][0])
    unknown["ratingGroup"] = 99
    request["multipleUnitUsage"].append(unknown)

    result = transform(request)

    assert len(result.records) == 1
    assert [(error["field"], error["record_ref"]) for error in result.errors] == [
        ("multipleUnitUsage[1].ratingGroup", "234150000000001:c7001:2:?")
    ]
    assert "rating group 99 is not configured" in result.errors[0]["reason"]


def test_one_bad_container_does_not_stop_the_others() -> None:
    good = a_container(localSequenceNumber=1)
    bad = a_container(localSequenceNumber=2, time=-3)
    request = a_request(
        multipleUnitUsage=[{"ratingGroup": 10, "usedUnitContainer": [good, bad]}]
    )

    result = transform(request)

    assert [record["record_id"] for record in result.records] == [
        "234150000000001:c7001:2:10:1"
    ]
    assert result.errors[0]["record_ref"] == "234150000000001:c7001:2:10:2"
    assert result.errors[0]["field"] == "multipleUnitUsage[0].usedUnitContainer[1].time"


@pytest.mark.parametrize(
    ("usage", "field"),
    [
        ({"ratingGroup": 10}, "multipleUnitUsage[0].usedUnitContainer"),
        (
            {"ratingGroup": 10, "usedUnitContainer": []},
            "multipleUnitUsage[0].usedUnitContainer",
        ),
        ({"usedUnitContainer": [{}]}, "multipleUnitUsage[0].ratingGroup"),
        (
            {"ratingGroup": "ten", "usedUnitContainer": [{}]},
            "multipleUnitUsage[0].ratingGroup",
        ),
    ],
)
def test_a_unit_usage_without_usage_or_rating_group_is_an_error(
    usage: dict[str, Any], field: str
) -> None:
    assert only_error(a_request(multipleUnitUsage=[usage]))["field"] == field


def test_a_request_without_unit_usage_is_an_error() -> None:
    request = a_request()
    del request["multipleUnitUsage"]

    assert only_error(request)["field"] == "multipleUnitUsage"


# Price.


@pytest.mark.parametrize(
    ("cost", "charge"),
    [
        (
            {"unitValue": {"valueDigits": 25, "exponent": -2}, "currencyCode": "GBP"},
            {"amount": "0.2500", "currency": "GBP"},
        ),
        (
            {"unitCost": {"valueDigits": 25, "exponent": -2}, "currencyCode": 826},
            {"amount": "0.2500", "currency": "GBP"},
        ),
        (
            {
                "unitValue": {"valueDigits": 123456789, "exponent": -6},
                "currencyCode": 978,
            },
            {"amount": "123.456789", "currency": "EUR"},
        ),
        (
            {"unitValue": {"valueDigits": 5, "exponent": 2}, "currencyCode": "840"},
            {"amount": "500.0000", "currency": "USD"},
        ),
        (
            {"unitValue": {"valueDigits": 7}, "currencyCode": "gbp"},
            {"amount": "7.0000", "currency": "GBP"},
        ),
        (
            {
                "unitValue": {"valueDigits": 10000, "exponent": -8},
                "currencyCode": "GBP",
            },
            {"amount": "0.0001", "currency": "GBP"},
        ),
        (
            {"unitValue": {"valueDigits": -150, "exponent": -2}, "currencyCode": "GBP"},
            {"amount": "-1.5000", "currency": "GBP"},
        ),
        (
            {
                "unitValue": {"valueDigits": "9999999999", "exponent": "-3"},
                "currencyCode": "JPY",
            },
            {"amount": "9999999.9990", "currency": "JPY"},
        ),
        (
            {"Unit-Value": {"Value-Digits": 84, "Exponent": -3}, "Currency-Code": 826},
            {"amount": "0.0840", "currency": "GBP"},
        ),
    ],
)
def test_the_charge_is_value_digits_times_ten_to_the_exponent_exactly(
    cost: dict[str, Any], charge: dict[str, str]
) -> None:
    record = only_record(with_container(costInformation=cost))

    assert record["charge"] == charge
    assert Decimal(record["charge"]["amount"]) == (
        Decimal(_cost_digits(cost)).scaleb(_cost_exponent(cost))
    )


def _cost_digits(cost: dict[str, Any]) -> int:
    unit = next(value for key, value in cost.items() if "unit" in key.lower())
    return int(next(value for key, value in unit.items() if "digits" in key.lower()))


def _cost_exponent(cost: dict[str, Any]) -> int:
    unit = next(value for key, value in cost.items() if "unit" in key.lower())
    return int(next((v for k, v in unit.items() if "exponent" in k.lower()), 0))


@pytest.mark.parametrize(
    ("cost", "field", "reason"),
    [
        (None, "costInformation", "is missing"),
        ({"currencyCode": "GBP"}, "costInformation.unitValue", "is missing"),
        (
            {"unitValue": {"valueDigits": 0.25}, "currencyCode": "GBP"},
            "costInformation.unitValue.valueDigits",
            "is not a 64-bit integer",
        ),
        (
            {"unitValue": {"valueDigits": 1, "exponent": -7}, "currencyCode": "GBP"},
            "costInformation.unitValue",
            "more than 6 decimal places",
        ),
        (
            {"unitValue": {"valueDigits": 1, "exponent": 2**31 - 1}, "currencyCode": 1},
            "costInformation.unitValue",
            "more than 12 integer digits",
        ),
        (
            {"unitValue": {"valueDigits": 1, "exponent": -(2**31)}, "currencyCode": 1},
            "costInformation.unitValue",
            "more than 6 decimal places",
        ),
        (
            {"unitValue": {"valueDigits": 1, "exponent": 2**31}, "currencyCode": 1},
            "costInformation.unitValue.exponent",
            "is not a 32-bit integer",
        ),
        (
            {"unitValue": {"valueDigits": 1, "exponent": 13}, "currencyCode": "GBP"},
            "costInformation.unitValue",
            "more than 12 integer digits",
        ),
        (
            {"unitValue": {"valueDigits": 25}},
            "costInformation.currencyCode",
            "is missing",
        ),
        (
            {"unitValue": {"valueDigits": 25}, "currencyCode": 999},
            "costInformation.currencyCode",
            "999 is not an ISO 4217 numeric code",
        ),
        (
            {"unitValue": {"valueDigits": 25}, "currencyCode": "POUND"},
            "costInformation.currencyCode",
            "is not an ISO 4217 currency code",
        ),
        (
            {
                "unitValue": {"valueDigits": 1},
                "unitCost": {"valueDigits": 1},
                "currencyCode": "GBP",
            },
            "costInformation",
            "has both",
        ),
    ],
)
def test_a_price_that_cannot_be_read_is_an_error_naming_the_field(
    cost: dict[str, Any] | None, field: str, reason: str
) -> None:
    error = only_error(with_container(costInformation=cost))

    assert error["field"] == f"multipleUnitUsage[0].usedUnitContainer[0].{field}"
    assert reason in error["reason"]


def test_a_price_on_the_unit_usage_serves_its_single_container() -> None:
    cost = {"unitValue": {"valueDigits": 10, "exponent": -2}, "currencyCode": 826}
    one = a_request(
        multipleUnitUsage=[
            {
                "ratingGroup": 10,
                "costInformation": cost,
                "usedUnitContainer": [a_container(costInformation=None)],
            }
        ]
    )
    two = copy.deepcopy(one)
    two["multipleUnitUsage"][0]["usedUnitContainer"].append(
        a_container(localSequenceNumber=2, costInformation=None)
    )

    assert only_record(one)["charge"] == {"amount": "0.1000", "currency": "GBP"}
    assert only_error(two)["field"] == "multipleUnitUsage[0].costInformation"


# Key case and other spellings.


def test_keys_are_matched_without_regard_to_case() -> None:
    request = {
        "SubscriberIdentifier": "imsi-234150000000001",
        "NFConsumerIdentification": {"NFPLMNID": {"Mcc": "234", "Mnc": "15"}},
        "InvocationTimeStamp": "2026-11-21T10:00:06Z",
        "InvocationSequenceNumber": 2,
        "MultipleUnitUsage": [
            {
                "RatingGroup": 10,
                "UsedUnitContainer": [
                    {
                        "LocalSequenceNumber": 1,
                        "Time": 125,
                        "CostInformation": {
                            "UnitValue": {"ValueDigits": 25, "Exponent": -2},
                            "CurrencyCode": "GBP",
                        },
                    }
                ],
            }
        ],
    }

    record = only_record(request)

    assert (record["record_id"], record["duration_seconds"]) == (
        "234150000000001:t20261121T100006Z:2:10:1",
        125,
    )


def test_a_key_given_twice_in_two_spellings_is_an_error() -> None:
    request = a_request()
    usage = request["multipleUnitUsage"][0]
    usage["UsedUnitContainer"] = usage["usedUnitContainer"]

    error = only_error(request)

    assert error["field"] == "multipleUnitUsage[0].usedUnitContainer"
    assert "given more than once" in error["reason"]


# Lines that are not requests.


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ('{"subscriberIdentifier": "imsi-2341', "is not JSON"),
        ("[1, 2]", "is not a JSON object"),
        ('{"a": NaN}', "is not JSON"),
        ("not json at all", "is not JSON"),
    ],
)
def test_a_line_that_is_not_a_json_request_is_an_error_and_the_rest_goes_on(
    line: str, reason: str
) -> None:
    result = transform(
        a_request(), line + "\n", "\n", with_container(localSequenceNumber=2)
    )

    assert len(result.records) == 2
    assert [(error["line"], error["field"]) for error in result.errors] == [(2, "line")]
    assert reason in result.errors[0]["reason"]
    assert result.errors[0]["raw"] == line


def test_bytes_lines_are_read_as_utf8_and_a_bad_byte_is_an_error_for_its_line() -> None:
    good = (json.dumps(a_request()) + "\n").encode()

    result = ocs.transform([good, b"\xff\xfe{}\n"], PROFILE, "OCS1")

    assert len(result.records) == 1
    assert result.errors[0]["reason"].startswith("is not valid UTF-8")


# Record ids.


def test_record_ids_are_stable_and_a_repeated_request_is_a_duplicate() -> None:
    request = a_request(retransmissionIndicator=True)

    first = transform(request)
    again = transform(request, request)

    assert first.records == again.records[:1]
    assert again.errors[0]["field"] == "record_id"
    assert "duplicates a record of line 1" in again.errors[0]["reason"]


def test_record_ids_differ_between_sessions_invocations_and_groups() -> None:
    base = a_request()
    other_session = a_request(chargingId=7002)
    other_invocation = a_request(invocationSequenceNumber=3)
    other_subscriber = a_request(subscriberIdentifier="imsi-234150000000002")

    result = transform(base, other_session, other_invocation, other_subscriber)

    assert [record["record_id"] for record in result.records] == [
        "234150000000001:c7001:2:10:1",
        "234150000000001:c7002:2:10:1",
        "234150000000001:c7001:3:10:1",
        "234150000000002:c7001:2:10:1",
    ]


def test_a_record_id_too_long_for_the_generic_format_is_hashed_stably() -> None:
    request = a_request(invocationSequenceNumber=4294967295, chargingId=None)
    request["invocationTimeStamp"] = "2026-11-21T10:00:06.123456Z"
    request["multipleUnitUsage"][0]["ratingGroup"] = 11
    request["multipleUnitUsage"][0]["usedUnitContainer"][0]["localSequenceNumber"] = (
        2**62
    )
    del request["chargingId"]

    first = only_record(request)["record_id"]

    assert first.startswith("ocs-") and len(first) == 44
    assert only_record(request)["record_id"] == first


def test_a_missing_local_sequence_number_is_an_error() -> None:
    error = only_error(with_container(localSequenceNumber=None))

    assert (
        error["field"]
        == "multipleUnitUsage[0].usedUnitContainer[0].localSequenceNumber"
    )


def test_a_missing_invocation_sequence_number_is_an_error() -> None:
    request = a_request()
    del request["invocationSequenceNumber"]

    assert only_error(request)["field"] == "invocationSequenceNumber"


# Direction and called number.


@pytest.mark.parametrize(
    ("extra", "direction"),
    [
        ({}, "MO"),
        ({"iMSChargingInformation": {"roleOfNode": "ORIGINATING"}}, "MO"),
        ({"iMSChargingInformation": {"roleOfNode": "TERMINATING"}}, "MT"),
        ({"iMSChargingInformation": {"roleOfNode": "terminating"}}, "MT"),
        ({"sMSChargingInformation": {"sMMessageType": "DELIVERY"}}, "MT"),
        ({"sMSChargingInformation": {"sMMessageType": "SUBMISSION"}}, "MO"),
    ],
)
def test_the_direction_comes_from_the_role_of_node_or_the_message_type(
    extra: dict[str, Any], direction: str
) -> None:
    assert only_record(a_request(**extra))["direction"] == direction


def test_an_unknown_role_of_node_is_an_error() -> None:
    error = only_error(a_request(iMSChargingInformation={"roleOfNode": "ROAMING"}))

    assert error["field"] == "iMSChargingInformation.roleOfNode"


@pytest.mark.parametrize(
    ("extra", "called"),
    [
        (
            {"iMSChargingInformation": {"calledPartyAddress": "tel:+44-1632-960001"}},
            "441632960001",
        ),
        (
            {
                "iMSChargingInformation": {
                    "calledPartyAddress": "sip:+441632960001@ims.example.org;user=phone"
                }
            },
            "441632960001",
        ),
        (
            {"iMSChargingInformation": {"calledPartyAddress": "sip:alice@example.org"}},
            None,
        ),
        (
            {
                "sMSChargingInformation": {
                    "recipientInfo": [{"recipientGPSI": "msisdn-447700900456"}]
                }
            },
            "447700900456",
        ),
        (
            {
                "sMSChargingInformation": {
                    "recipientInfo": [
                        {"recipientOtherAddress": {"sMaddressData": "+447700900457"}}
                    ]
                }
            },
            "447700900457",
        ),
    ],
)
def test_the_called_number_is_kept_when_it_is_a_telephone_number(
    extra: dict[str, Any], called: str | None
) -> None:
    assert only_record(a_request(**extra)).get("called_number") == called


# The profile.


def profile_with(**changes: Any) -> ocs.OcsProfile:
    import yaml

    document = yaml.safe_load(DEFAULT_PROFILE.read_text(encoding="utf-8"))
    document.update(changes)
    return parse_profile(document, "test")


def test_the_default_profile_maps_rating_groups_to_usage_classes() -> None:
    groups = PROFILE.rating_groups

    assert (groups[10].usage_class, groups[10].roaming_usage_class) == (
        "VOICE_NAT",
        "VOICE_ROAM",
    )
    assert (groups[20].usage_class, groups[30].usage_class) == ("SMS_NAT", "DATA_NAT")
    assert PROFILE.home_plmns == {("234", "15")}


def test_a_rating_group_may_be_given_as_a_bare_usage_class() -> None:
    profile = profile_with(rating_groups={"40": "IOT_NAT"})

    assert (
        profile.rating_groups[40].usage_class,
        profile.rating_groups[40].roaming_usage_class,
    ) == ("IOT_NAT", "IOT_ROAM")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"home_plmn": {"mcc": "234", "mnc": 15}}, "home_plmn.mnc: must be text"),
        ({"home_plmn": {"mcc": "23", "mnc": "15"}}, "home_plmn.mcc: must be 3 digits"),
        ({"rating_groups": {"ten": "VOICE_NAT"}}, "rating_groups.ten: must be a whole"),
        (
            {"rating_groups": {10: {"usage_class": "voice"}}},
            "rating_groups.10.usage_class: must be a usage class code",
        ),
        (
            {"rating_groups": {10: {"usage_class": "V", "quantity": "minutes"}}},
            "rating_groups.10.quantity: must be one of time, volume, units",
        ),
        (
            {"rating_groups": {10: {"class": "V"}}},
            "rating_groups.10.class: unknown key",
        ),
        (
            {"subscriber": {"nai_patterns": ["(unclosed"]}},
            "subscriber.nai_patterns[0]: is not a regular expression",
        ),
        (
            {"subscriber": {"nai_patterns": [".*@realm"]}},
            "subscriber.nai_patterns[0]: needs a named group",
        ),
        ({"direction": {"default": "IN"}}, "direction.default: must be one of MO, MT"),
        (
            {"plmn": {"three_digit_mnc_mccs": [310]}},
            "plmn.three_digit_mnc_mccs[0]: must be text",
        ),
        ({"colour": "blue"}, "colour: unknown key"),
    ],
)
def test_a_bad_profile_is_refused_naming_the_offending_key(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ProfileError) as refused:
        profile_with(**changes)

    assert message in str(refused.value)


def test_a_profile_without_its_required_keys_is_refused() -> None:
    with pytest.raises(ProfileError) as refused:
        parse_profile({"name": "empty"}, "empty.yaml")

    assert "home_plmn: is required" in str(refused.value)
    assert "rating_groups: is required" in str(refused.value)


# Money and currency helpers.


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Decimal("0.25"), "0.2500"),
        (Decimal("0.250000"), "0.2500"),
        (Decimal("0.123456"), "0.123456"),
        (Decimal("12"), "12.0000"),
        (Decimal("1E+3"), "1000.0000"),
        (Decimal("-1.5"), "-1.5000"),
        (Decimal("-0.00"), "0.0000"),
        (Decimal("999999999999.999999"), "999999999999.999999"),
    ],
)
def test_money_is_written_with_at_least_four_places_and_never_rounded(
    amount: Decimal, text: str
) -> None:
    assert money_text(amount) == text


@pytest.mark.parametrize(
    "amount", [Decimal("0.1234567"), Decimal("1000000000000"), Decimal("NaN")]
)
def test_money_that_the_generic_format_cannot_hold_is_refused(amount: Decimal) -> None:
    with pytest.raises(ValueError):
        money_text(amount)


def test_the_numeric_currency_table_holds_the_common_currencies() -> None:
    expected = {
        826: "GBP",
        978: "EUR",
        840: "USD",
        392: "JPY",
        756: "CHF",
        752: "SEK",
        578: "NOK",
        208: "DKK",
        985: "PLN",
        124: "CAD",
        36: "AUD",
        710: "ZAR",
        356: "INR",
        784: "AED",
        949: "TRY",
    }

    assert {code: ISO_4217_NUMERIC[code] for code in expected} == expected
    assert currency_code("036") == "AUD"
    assert currency_code(" eur ") == "EUR"
    with pytest.raises(ValueError):
        currency_code(True)
