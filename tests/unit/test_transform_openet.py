"""Openet rated events become generic rated records through a field-mapping
profile; another vendor is another profile, and outputs are written atomically."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingest.transform import common, openet
from ingest.transform.common import FileRefusedError, TransformResult, write_outputs
from ingest.transform.converters import ConversionError, build_steps, run_steps
from ingest.transform.profiles import Checker, ProfileError

PACKAGE = Path(openet.__file__).resolve().parent.parent
SAMPLE = PACKAGE / "samples" / "openet-sample.csv"
PROFILE = openet.load_profile()
HEADER = SAMPLE.read_text(encoding="utf-8").splitlines()[0]


def convert(spec: object, text: str, target: type = str) -> Any:
    """Run a field's ``convert`` entry as a profile would on one cell."""
    check = Checker()
    steps = build_steps(spec, "convert", check, target)
    assert check.problems == []
    assert steps is not None
    return run_steps(steps, text)


def refusal(spec: object, text: str, target: type = str) -> str:
    with pytest.raises(ConversionError) as refused:
        convert(spec, text, target)
    return str(refused.value)


def profile_problems(spec: object, target: type = str) -> list[str]:
    check = Checker()
    build_steps(spec, "fields.x.convert", check, target)
    return check.problems


def default_document() -> dict[str, Any]:
    return yaml.safe_load(openet.DEFAULT_PROFILE.read_text(encoding="utf-8"))


def line(**cells: str) -> str:
    """A line of the sample layout: a valid national call unless cells change."""
    values = {
        "EVENT_ID": "OPN-1",
        "EVENT_TYPE": "MOC",
        "SERVED_MSISDN": "447700900123",
        "SERVED_IMSI": "234150000000001",
        "CALLED_PARTY": "+441632960001",
        "EVENT_START": "20261121095801",
        "DURATION_SEC": "125",
        "VOLUME_BYTES": "",
        "EVENT_UNITS": "",
        "SERVING_MCC": "234",
        "SERVING_MNC": "15",
        "CHARGE": "0.2500",
        "CURRENCY": "GBP",
        "DISCOUNT": "",
        "DESCRIPTION": "test",
    }
    values.update(cells)
    return ",".join(values[name] for name in HEADER.split(",")) + "\n"


def transform(*lines: str, profile: openet.Profile = PROFILE) -> TransformResult:
    return openet.transform([HEADER + "\n", *lines], profile, "OPENET1")


# The sample file and the default profile.


def test_the_sample_file_gives_eighteen_records_and_two_errors() -> None:
    result = openet.transform_file(SAMPLE, PROFILE, "OPENET1")

    assert (result.lines_read, result.record_count, result.error_count) == (20, 18, 2)
    assert [
        (error["line"], error["record_ref"], error["field"]) for error in result.errors
    ] == [
        (20, "OPN-20261121-000019", "start_time"),
        (21, "OPN-20261121-000020", "line"),
    ]
    assert "'20261131101500' is not a time" in result.errors[0]["reason"]
    assert result.errors[1]["reason"] == "has 4 columns, expected 15"


def test_the_sample_file_maps_voice_sms_data_and_roaming() -> None:
    records = {
        record["record_id"]: record
        for record in openet.transform_file(SAMPLE, PROFILE, "OPENET1").records
    }

    assert records["OPN-20261121-000001"] == {
        "record_id": "OPN-20261121-000001",
        "msisdn": "447700900123",
        "imsi": "234150000000001",
        "usage_class": "VOICE_NAT",
        "start_time": "2026-11-21T09:58:01Z",
        "duration_seconds": 125,
        "direction": "MO",
        "called_number": "441632960001",
        "mcc": "234",
        "mnc": "15",
        "charge": {"amount": "0.2500", "currency": "GBP"},
        "discount": {"amount": "0.0500"},
    }
    assert {record["usage_class"] for record in records.values()} == {
        "VOICE_NAT",
        "VOICE_INT",
        "VOICE_ROAM",
        "SMS_NAT",
        "SMS_ROAM",
        "MMS_NAT",
        "DATA_NAT",
        "DATA_ROAM",
    }
    sms = records["OPN-20261121-000003"]
    assert (sms["units"], sms["called_number"]) == (1, "447700900456")
    assert records["OPN-20261121-000002"]["direction"] == "MT"
    assert records["OPN-20261121-000006"]["volume_bytes"] == 5368709120
    assert records["OPN-20261121-000007"]["called_number"] == "33142685300"
    roaming = records["OPN-20261121-000008"]
    assert (roaming["usage_class"], roaming["mcc"], roaming["mnc"]) == (
        "VOICE_ROAM",
        "208",
        "01",
    )
    assert records["OPN-20261121-000012"]["mnc"] == "410"
    assert "msisdn" not in records["OPN-20261121-000013"]


def test_the_written_sample_matches_the_published_schema(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema_file = PACKAGE / "schemas" / "usage-rated.schema.json"
    if not schema_file.exists():
        pytest.skip("the generic format's schema is not published yet")
    result = openet.transform_file(SAMPLE, PROFILE, "OPENET1")

    written = write_outputs(result, {"file_id": "OPENET1-1"}, tmp_path, "OPENET1-1")

    document = json.loads(written.path.read_text(encoding="utf-8"))
    jsonschema.validate(document, json.loads(schema_file.read_text(encoding="utf-8")))


def test_local_switch_time_is_stored_in_utc_across_summer_time() -> None:
    summer = transform(line(EVENT_ID="S", EVENT_START="20260701120000"))
    winter = transform(line(EVENT_ID="W", EVENT_START="20261201120000"))

    assert summer.records[0]["start_time"] == "2026-07-01T11:00:00Z"
    assert winter.records[0]["start_time"] == "2026-12-01T12:00:00Z"


@pytest.mark.parametrize(
    ("cells", "field", "reason"),
    [
        ({"EVENT_TYPE": "MOC_SAT"}, "usage_class", "unknown value 'MOC_SAT'"),
        ({"SERVED_MSISDN": "", "SERVED_IMSI": ""}, "msisdn", "no subscriber"),
        ({"SERVED_MSISDN": "07700 900123"}, "msisdn", "is not digits only"),
        ({"CHARGE": "25p"}, "charge.amount", "is not a decimal number"),
        ({"CHARGE": ""}, "charge.amount", "column CHARGE is empty"),
        ({"CHARGE": "0.1234567"}, "charge.amount", "more than 6 decimal places"),
        ({"CURRENCY": "999"}, "charge.currency", "not an ISO 4217 numeric code"),
        ({"DURATION_SEC": ""}, "quantity", "none of duration_seconds"),
        ({"DURATION_SEC": "-5"}, "duration_seconds", "-5 is less than 0"),
        ({"DURATION_SEC": "3000000"}, "duration_seconds", "is not between 0 and"),
        ({"SERVING_MNC": ""}, "mcc", "mcc and mnc come together"),
        ({"SERVING_MNC": "1"}, "mnc", "has 1 digits, expected 2 to 3"),
        ({"EVENT_ID": "OPN 1"}, "record_id", "is not 1 to 64 of"),
        ({"EVENT_START": "20260329013000"}, "start_time", "does not exist in Europe"),
    ],
)
def test_a_line_that_breaks_a_rule_is_an_error_naming_the_field(
    cells: dict[str, str], field: str, reason: str
) -> None:
    result = transform(line(**cells), line(EVENT_ID="OPN-2"))

    assert [record["record_id"] for record in result.records] == ["OPN-2"]
    assert result.errors[0]["field"] == field
    assert reason in result.errors[0]["reason"]
    assert result.errors[0]["line"] == 2


def test_every_problem_of_a_line_is_listed() -> None:
    result = transform(line(EVENT_TYPE="X", CHARGE="abc"))

    assert [problem["field"] for problem in result.errors[0]["problems"]] == [
        "usage_class",
        "charge.amount",
    ]


def test_a_repeated_event_id_is_an_error() -> None:
    result = transform(line(), line())

    assert len(result.records) == 1
    assert result.errors[0]["reason"] == "duplicates the record on line 2"


def test_a_quoted_cell_may_hold_the_delimiter_but_an_open_quote_is_an_error() -> None:
    result = transform(
        line(DESCRIPTION='"Call, national"'),
        line(EVENT_ID="OPN-2", DESCRIPTION='"open quote'),
    )

    assert [record["record_id"] for record in result.records] == ["OPN-1"]
    assert result.errors[0]["field"] == "line"
    assert "cannot be split into columns" in result.errors[0]["reason"]


def test_blank_lines_and_a_byte_order_mark_are_ignored() -> None:
    result = openet.transform(
        ["\ufeff" + HEADER + "\r\n", "\n", line(), "   \n"], PROFILE, "OPENET1"
    )

    assert (result.record_count, result.error_count, result.lines_read) == (1, 0, 1)


def test_bytes_are_decoded_with_the_profile_encoding_and_a_bad_line_is_an_error() -> (
    None
):
    lines = [HEADER.encode() + b"\n", line().encode(), b"OPN-2,\xff\xfe\n"]

    result = openet.transform(lines, PROFILE, "OPENET1")

    assert result.record_count == 1
    assert result.errors[0]["reason"].startswith("is not valid utf-8-sig")


def test_a_header_without_a_column_the_profile_names_refuses_the_file() -> None:
    header = HEADER.replace("EVENT_START", "START")

    with pytest.raises(FileRefusedError, match="has no column 'EVENT_START'"):
        openet.transform([header + "\n", line()], PROFILE, "OPENET1")


def test_header_names_are_matched_without_regard_to_case() -> None:
    result = openet.transform([HEADER.lower() + "\n", line()], PROFILE, "OPENET1")

    assert result.record_count == 1


# Converters.


@pytest.mark.parametrize(
    ("spec", "text", "value"),
    [
        ("string", "  VOICE  ", "VOICE"),
        ({"name": "string", "upper": True}, "moc", "MOC"),
        ("digits", " 447700900123 ", "447700900123"),
        ({"name": "digits", "min_length": 3, "max_length": 3}, "234", "234"),
        (
            {"name": "strip_prefix", "prefixes": ["+", "00"]},
            "+447700900123",
            "447700900123",
        ),
        ({"name": "strip_prefix", "prefixes": ["+", "00"]}, "00331426", "331426"),
        ({"name": "strip_prefix", "prefixes": ["+"]}, "447700900123", "447700900123"),
        (
            {"name": "strip_prefix", "prefixes": {"0": "44", "00": "", "+": ""}},
            "07700900123",
            "447700900123",
        ),
        (
            {"name": "strip_prefix", "prefixes": {"0": "44", "00": "", "+": ""}},
            "0033142685300",
            "33142685300",
        ),
        ({"name": "map", "table": {"MOC": "VOICE_NAT"}}, "MOC", "VOICE_NAT"),
        ({"name": "map", "table": {"MTC": "MT"}, "default": "MO"}, "GPRS", "MO"),
        ({"name": "constant", "value": "GBP"}, "", "GBP"),
        ("currency", "gbp", "GBP"),
        ("currency", "826", "GBP"),
        ("currency", "978", "EUR"),
        ("currency", "840", "USD"),
    ],
)
def test_text_converters(spec: object, text: str, value: str) -> None:
    assert convert(spec, text) == value


@pytest.mark.parametrize(
    ("spec", "text", "value"),
    [
        ("int", "125", 125),
        ("int", " +7 ", 7),
        ("int", "18446744073709551615", 2**64 - 1),
        ({"name": "int", "multiply": 1024}, "10240", 10485760),
        ({"name": "int", "min": -10}, "-5", -5),
        ({"name": "map", "table": {"SMS": 1}, "default": 0}, "SMS", 1),
        ({"name": "constant", "value": 1}, "", 1),
    ],
)
def test_whole_number_converters(spec: object, text: str, value: int) -> None:
    assert convert(spec, text, int) == value


@pytest.mark.parametrize(
    ("spec", "text", "value"),
    [
        ("decimal", "0.2500", Decimal("0.2500")),
        ("decimal", "-1.5", Decimal("-1.5")),
        ("decimal", "12", Decimal("12")),
        ({"name": "decimal", "decimal_separator": ","}, "0,25", Decimal("0.25")),
        (
            "decimal",
            "0.1000000000000000000000000000001",
            Decimal("0.1000000000000000000000000000001"),
        ),
        ("money_minor_units", "2500", Decimal("25.00")),
        ({"name": "money_minor_units", "scale": 4}, "2500", Decimal("0.2500")),
        ({"name": "money_minor_units", "scale": 0}, "120", Decimal("120")),
        ({"name": "money_minor_units", "scale": 2}, "-150", Decimal("-1.50")),
        ({"name": "constant", "value": "0.05"}, "", Decimal("0.05")),
    ],
)
def test_decimal_converters_are_exact(spec: object, text: str, value: Decimal) -> None:
    result = convert(spec, text, Decimal)

    assert result == value
    assert str(result) == str(value)  # the same digits, not just an equal value


@pytest.mark.parametrize(
    ("spec", "text", "moment"),
    [
        (
            {
                "name": "timestamp",
                "format": "%Y%m%d%H%M%S",
                "timezone": "Europe/London",
            },
            "20260701120000",
            datetime(2026, 7, 1, 11, tzinfo=UTC),
        ),
        (
            {
                "name": "timestamp",
                "format": "%d/%m/%Y %H:%M",
                "timezone": "Europe/Paris",
            },
            "21/11/2026 10:58",
            datetime(2026, 11, 21, 9, 58, tzinfo=UTC),
        ),
        (
            {
                "name": "timestamp",
                "format": "%Y%m%d%H%M%S",
                "timezone": "Europe/London",
            },
            "20261025013000",  # the hour repeated when clocks go back: the first
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        ),
        (
            {"name": "timestamp", "format": "%Y-%m-%d %H:%M:%S%z"},
            "2026-11-21 10:58:01+0100",
            datetime(2026, 11, 21, 9, 58, 1, tzinfo=UTC),
        ),
        (
            {"name": "timestamp", "format": "rfc3339"},
            "2026-11-21T09:58:01.5+00:00",
            datetime(2026, 11, 21, 9, 58, 1, 500000, tzinfo=UTC),
        ),
        (
            {"name": "timestamp", "format": "epoch"},
            "1795255081",
            datetime(2026, 11, 21, 9, 58, 1, tzinfo=UTC),
        ),
    ],
)
def test_the_timestamp_converter_gives_utc(
    spec: object, text: str, moment: datetime
) -> None:
    assert convert(spec, text, datetime) == moment


@pytest.mark.parametrize(
    ("spec", "text", "target", "reason"),
    [
        ("string", "   ", str, "is empty"),
        ("digits", "+4477", str, "'+4477' is not digits only"),
        ("digits", "١٢٣٤", str, "is not digits only"),
        ({"name": "digits", "max_length": 3}, "1234", str, "has 4 digits"),
        ("int", "1.5", int, "'1.5' is not a whole number"),
        ("int", "9" * 5000, int, "cannot be converted"),
        ("int", "-1", int, "-1 is less than 0"),
        ({"name": "int", "max": 10}, "11", int, "11 is more than 10"),
        ("decimal", "1e3", Decimal, "is not a decimal number"),
        ("decimal", "NaN", Decimal, "is not a decimal number"),
        ("money_minor_units", "12.5", Decimal, "is not a whole number of minor"),
        (
            {
                "name": "timestamp",
                "format": "%Y%m%d%H%M%S",
                "timezone": "Europe/London",
            },
            "20260329013000",
            datetime,
            "does not exist in Europe/London",
        ),
        (
            {"name": "timestamp", "format": "rfc3339"},
            "2026-11-21T09:58:01",
            datetime,
            "has no UTC offset",
        ),
        ({"name": "timestamp", "format": "epoch"}, "soon", datetime, "is not whole"),
        (
            {"name": "map", "table": {"MOC": "VOICE_NAT"}},
            "MTC",
            str,
            "unknown value 'MTC' (known: MOC)",
        ),
        ("currency", "pounds", str, "is not an ISO 4217 currency code"),
    ],
)
def test_a_converter_refuses_what_it_cannot_convert_and_says_why(
    spec: object, text: str, target: type, reason: str
) -> None:
    assert reason in refusal(spec, text, target)


# Profile checks.


@pytest.mark.parametrize(
    ("spec", "target", "message"),
    [
        ("uppercase", str, "fields.x.convert: unknown converter 'uppercase'"),
        ({"format": "%Y"}, datetime, "fields.x.convert.name: names the converter"),
        (
            {"name": "timestamp", "format": "%Y%m%d", "timezone": "Europe/Londn"},
            datetime,
            "fields.x.convert.timezone: unknown time zone 'Europe/Londn'",
        ),
        (
            {"name": "timestamp", "format": "%Y%m%d"},
            datetime,
            "fields.x.convert.timezone: is required",
        ),
        (
            {"name": "timestamp", "format": "rfc3339", "timezone": "UTC"},
            datetime,
            "fields.x.convert.timezone: is not used",
        ),
        (
            "string",
            datetime,
            "fields.x.convert: gives text, but the field needs a time",
        ),
        (
            ["int", "digits"],
            str,
            "fields.x.convert[1]: digits needs text, but the step before gives a whole",
        ),
        (
            {"name": "map", "table": {1: "MO"}},
            str,
            "fields.x.convert.table.1: key 1 must be quoted",
        ),
        (
            {"name": "map", "table": {"1": 2}},
            str,
            "fields.x.convert.table.1: must be text",
        ),
        ({"name": "digits", "min": 3}, str, "fields.x.convert.min: unknown key"),
        (
            {"name": "constant", "value": 0.25},
            Decimal,
            "fields.x.convert.value: must be a decimal number written as text",
        ),
        ({"name": "constant", "value": 15}, str, "write it quoted ('15')"),
        (
            {"name": "money_minor_units", "scale": -1},
            Decimal,
            "fields.x.convert.scale: must be a whole number from 0",
        ),
        ([], str, "fields.x.convert: needs at least one converter"),
    ],
)
def test_a_bad_converter_is_refused_naming_the_key(
    spec: object, target: type, message: str
) -> None:
    assert any(message in problem for problem in profile_problems(spec, target))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"delimiter": "||"}, "delimiter: must be one character"),
        ({"encoding": "utf-16"}, "encoding: must be ASCII-compatible"),
        ({"encoding": "klingon"}, "encoding: unknown encoding 'klingon'"),
        ({"quote_char": ","}, "quote_char: must differ from the delimiter"),
        ({"header": "yes"}, "header: must be true or false"),
        ({"colour": "red"}, "colour: unknown key"),
        ({"header": False}, "fields.record_id.column: names a header column"),
        ({"columns": 0}, "columns: must be a whole number from 1"),
    ],
)
def test_a_bad_profile_setting_is_refused_naming_the_key(
    change: dict[str, Any], message: str
) -> None:
    document = default_document()
    document.update(change)

    with pytest.raises(ProfileError) as refused:
        openet.parse_profile(document, "vendor.yaml")

    assert message in str(refused.value)
    assert str(refused.value).startswith("vendor.yaml: invalid profile:")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda fields: fields.pop("record_id"), "fields.record_id: is required"),
        (lambda fields: fields.pop("start_time"), "fields.start_time: is required"),
        (
            lambda fields: (fields.pop("msisdn"), fields.pop("imsi")),
            "fields: maps no subscriber",
        ),
        (
            lambda fields: [
                fields.pop(q) for q in ("duration_seconds", "volume_bytes", "units")
            ],
            "fields: maps no quantity",
        ),
        (
            lambda fields: fields.update(msisdn_2={"column": 3}),
            "fields.msisdn_2: is not",
        ),
        (
            lambda fields: fields["record_id"].update(required=False),
            "fields.record_id.required: record_id is always required",
        ),
        (
            lambda fields: fields["imsi"].update(column=0),
            "fields.imsi.column: must be a whole number from 1",
        ),
        (
            lambda fields: fields["imsi"].update(colum="X"),
            "fields.imsi.colum: unknown key",
        ),
        (
            lambda fields: fields["imsi"].pop("column"),
            "fields.imsi.column: is required",
        ),
    ],
)
def test_a_bad_field_list_is_refused_naming_the_key(
    edit: Callable[[dict[str, Any]], object], message: str
) -> None:
    document = default_document()
    edit(document["fields"])

    with pytest.raises(ProfileError) as refused:
        openet.parse_profile(document)

    assert message in str(refused.value)


def test_every_problem_of_a_profile_is_reported_at_once(tmp_path: Path) -> None:
    document = default_document()
    document["delimiter"] = ";;"
    document["fields"]["start_time"]["convert"]["timezone"] = "Mars/Olympus"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")

    with pytest.raises(ProfileError) as refused:
        openet.load_profile(path)

    assert len(refused.value.problems) == 2
    assert refused.value.origin == str(path)


def test_a_profile_that_is_not_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n", encoding="utf-8")

    with pytest.raises(ProfileError, match="is not valid YAML"):
        openet.load_profile(path)


# Another vendor: a second profile file, no code.

SECOND_VENDOR_PROFILE = """
# A headerless, semicolon-separated layout in another column order: amounts in
# euro cents with numeric currency codes, local Paris time, national numbers,
# and 0 where a quantity does not apply.
name: second-vendor
delimiter: ";"
header: false
quote_char: null
encoding: latin-1
skip_prefixes: ["#", "TRL;"]
columns: 9
fields:
  start_time:
    column: 1
    convert: {name: timestamp, format: "%d/%m/%Y %H:%M:%S", timezone: Europe/Paris}
  msisdn:
    column: 2
    convert:
      - {name: strip_prefix, prefixes: {"+": "", "00": "", "0": "33"}}
      - digits
  usage_class:
    column: 3
    convert: {name: map, table: {V: VOICE_NAT, S: SMS_NAT, D: DATA_NAT}}
  direction: {convert: {name: constant, value: MO}}
  duration_seconds: {column: 4, convert: int, required: false, empty_values: ["0"]}
  volume_bytes:
    column: 5
    convert: {name: int, multiply: 1024}
    required: false
    empty_values: ["0"]
  units: {column: 6, convert: int, required: false, empty_values: ["0"]}
  charge.amount: {column: 7, convert: money_minor_units}
  charge.currency: {column: 8, convert: currency}
  record_id: {column: 9}
"""

SECOND_VENDOR_FILE = (
    "# exported by the second vendor, caf\xe9 edition\n"
    "21/11/2026 10:58:01;0612345678;V;125;0;0;25;978;SV-1\n"
    "21/11/2026 11:00:00;+33612345678;D;0;10240;0;150;978;SV-2\n"
    "21/07/2026 12:00:00;0033612345678;S;0;0;1;10;978;SV-3\n"
    "21/11/2026 11:05:00;0612345678;X;0;0;1;10;978;SV-4\n"
    "TRL;4\n"
)


def test_a_second_vendor_is_mapped_by_a_second_profile_file_alone(
    tmp_path: Path,
) -> None:
    profile_path = tmp_path / "second-vendor.yaml"
    profile_path.write_text(SECOND_VENDOR_PROFILE, encoding="utf-8")
    data_path = tmp_path / "second-vendor.txt"
    data_path.write_bytes(SECOND_VENDOR_FILE.encode("latin-1"))

    result = openet.transform_file(data_path, openet.load_profile(profile_path), "SV")

    assert result.records == [
        {
            "record_id": "SV-1",
            "msisdn": "33612345678",
            "usage_class": "VOICE_NAT",
            "start_time": "2026-11-21T09:58:01Z",
            "duration_seconds": 125,
            "direction": "MO",
            "charge": {"amount": "0.2500", "currency": "EUR"},
        },
        {
            "record_id": "SV-2",
            "msisdn": "33612345678",
            "usage_class": "DATA_NAT",
            "start_time": "2026-11-21T10:00:00Z",
            "volume_bytes": 10485760,
            "direction": "MO",
            "charge": {"amount": "1.5000", "currency": "EUR"},
        },
        {
            "record_id": "SV-3",
            "msisdn": "33612345678",
            "usage_class": "SMS_NAT",
            "start_time": "2026-07-21T10:00:00Z",
            "units": 1,
            "direction": "MO",
            "charge": {"amount": "0.1000", "currency": "EUR"},
        },
    ]
    assert [(error["line"], error["field"]) for error in result.errors] == [
        (5, "usage_class")
    ]


# Output files.


def a_result() -> TransformResult:
    return openet.transform_file(SAMPLE, PROFILE, "OPENET1")


def test_outputs_are_named_after_the_file_and_errors_sit_beside_it(
    tmp_path: Path,
) -> None:
    written = write_outputs(
        a_result(),
        {"file_id": "OPENET1-20261121", "created_at": "2026-11-21T12:00:00+01:00"},
        tmp_path,
        "OPENET1-20261121",
    )

    assert written.path == tmp_path / "OPENET1-20261121.json"
    assert written.errors_path == tmp_path / "OPENET1-20261121.errors.json"
    assert (written.record_count, written.error_count) == (18, 2)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "OPENET1-20261121.errors.json",
        "OPENET1-20261121.json",
    ]
    document = json.loads(written.path.read_text(encoding="utf-8"))
    assert document["header"] == {
        "file_id": "OPENET1-20261121",
        "source": "OPENET1",
        "created_at": "2026-11-21T11:00:00Z",
        "kind": "rated",
        "record_count": 18,
    }
    assert len(document["records"]) == 18
    assert written.errors_path is not None
    errors = json.loads(written.errors_path.read_text(encoding="utf-8"))
    assert (errors["output"], errors["error_count"]) == ("OPENET1-20261121.json", 2)
    assert set(errors["errors"][0]) == {
        "line",
        "record_ref",
        "field",
        "reason",
        "problems",
        "raw",
    }


def test_no_error_file_is_written_when_every_record_transformed(tmp_path: Path) -> None:
    result = transform(line())

    written = write_outputs(result, {"file_id": "F1"}, tmp_path, "F1.json")

    assert written.errors_path is None
    assert [path.name for path in tmp_path.iterdir()] == ["F1.json"]


def test_a_file_with_no_valid_record_still_leaves_a_generic_file(
    tmp_path: Path,
) -> None:
    result = transform(line(CHARGE="x"))

    written = write_outputs(result, {"file_id": "F1"}, tmp_path, "F1")

    assert json.loads(written.path.read_text(encoding="utf-8"))["records"] == []
    assert written.errors_path is not None and written.errors_path.exists()


def test_outputs_are_written_as_tmp_and_renamed_into_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renames: list[tuple[str, str, bool]] = []
    real_replace = os.replace

    def recording_replace(source: Any, target: Any) -> None:
        renames.append((Path(source).name, Path(target).name, Path(target).exists()))
        real_replace(source, target)

    monkeypatch.setattr(common.os, "replace", recording_replace)
    (tmp_path / "F1.json.tmp").write_text("stale half-written file", encoding="utf-8")

    write_outputs(a_result(), {"file_id": "F1"}, tmp_path, "F1")

    assert renames == [
        ("F1.errors.json.tmp", "F1.errors.json", False),
        ("F1.json.tmp", "F1.json", False),
    ]
    assert not list(tmp_path.glob("*.tmp"))


def test_a_failed_write_leaves_neither_output_nor_tmp_file(tmp_path: Path) -> None:
    result = TransformResult(source="OPENET1", records=[{"unserialisable": object()}])

    with pytest.raises(TypeError):
        write_outputs(result, {"file_id": "F1"}, tmp_path, "F1")

    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("header", "name", "message"),
    [
        ({}, "F1", "header file_id None"),
        ({"file_id": "F 1"}, "F1", "header file_id 'F 1'"),
        ({"file_id": "F1", "source": "x" * 33}, "F1", "header source"),
        ({"file_id": "F1", "kind": "unrated"}, "F1", "unknown header fields: kind"),
        ({"file_id": "F1"}, "../F1", "is not a plain file name"),
        ({"file_id": "F1"}, ".F1", "is not a plain file name"),
    ],
)
def test_bad_header_fields_or_names_are_refused_before_writing(
    tmp_path: Path, header: dict[str, Any], name: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        write_outputs(a_result(), header, tmp_path, name)

    assert list(tmp_path.iterdir()) == []
