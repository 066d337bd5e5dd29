"""Usage records of the generic usage format: what is read, what is refused, why."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from domain.usage_records import (
    Header,
    RecordError,
    UsageRecord,
    check_count,
    split_batch,
    validate_header,
    validate_record,
)


def voice_call(**changes: Any) -> dict[str, Any]:
    """The first record of the issue's example file, with ``changes``."""
    record: dict[str, Any] = {
        "record_id": "OCS1-000001",
        "msisdn": "447700900123",
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
    record.update(changes)
    return record


def data_session() -> dict[str, Any]:
    return {
        "record_id": "OCS1-000002",
        "imsi": "234150000000001",
        "usage_class": "DATA_ROAM",
        "start_time": "2026-11-21T09:59:00Z",
        "volume_bytes": 10485760,
        "direction": "MO",
        "mcc": "208",
        "mnc": "01",
        "charge": {"amount": "1.0000", "currency": "GBP"},
    }


def unrated(record: dict[str, Any]) -> dict[str, Any]:
    return {
        name: value
        for name, value in record.items()
        if name not in ("charge", "discount")
    }


def without(record: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key != name}


def refusal(raw: object, kind: str = "rated", index: int = 0) -> RecordError:
    result = validate_record(raw, kind, index)
    assert isinstance(result, RecordError), result
    return result


def accepted(raw: object, kind: str = "rated") -> UsageRecord:
    result = validate_record(raw, kind, 0)
    assert isinstance(result, UsageRecord), result
    return result


# --- what a valid record becomes ---------------------------------------------------


def test_a_rated_voice_call_is_read_with_every_field() -> None:
    record = accepted(voice_call())

    assert record == UsageRecord(
        record_id="OCS1-000001",
        msisdn="447700900123",
        imsi=None,
        usage_class="VOICE_NAT",
        start_time=datetime(2026, 11, 21, 9, 58, 1, tzinfo=UTC),
        duration_seconds=125,
        volume_bytes=None,
        units=None,
        direction="MO",
        called_number="441632960001",
        mcc="234",
        mnc="15",
        charge=Decimal("0.2500"),
        currency="GBP",
        discount=Decimal("0.0500"),
    )


def test_a_data_session_named_by_imsi_is_read() -> None:
    record = accepted(data_session())

    assert (record.msisdn, record.imsi) == (None, "234150000000001")
    assert record.volume_bytes == 10485760
    assert record.mnc == "01"
    assert record.discount is None


def test_an_sms_counted_in_units_is_read() -> None:
    sms = without(voice_call(usage_class="SMS_NAT", units=1), "duration_seconds")

    assert accepted(sms).units == 1


def test_amounts_keep_every_digit_as_written() -> None:
    record = accepted(voice_call(charge={"amount": "0.2500", "currency": "GBP"}))

    assert record.charge is not None
    assert str(record.charge) == "0.2500"
    assert record.charge.as_tuple() == Decimal("0.2500").as_tuple()


def test_a_refund_is_a_negative_charge() -> None:
    record = accepted(voice_call(charge={"amount": "-1.5", "currency": "EUR"}))

    assert (record.charge, record.currency) == (Decimal("-1.5"), "EUR")


def test_a_start_time_with_an_offset_is_stored_in_utc() -> None:
    record = accepted(voice_call(start_time="2026-11-21T10:58:01+01:00"))

    assert record.start_time == datetime(2026, 11, 21, 9, 58, 1, tzinfo=UTC)
    assert record.start_time.tzinfo is UTC


def test_a_start_time_across_midnight_moves_to_the_utc_date() -> None:
    record = accepted(voice_call(start_time="2026-11-21T22:30:00-05:00"))

    assert record.start_time == datetime(2026, 11, 22, 3, 30, tzinfo=UTC)


def test_a_fraction_beyond_microseconds_is_cut_not_rounded() -> None:
    record = accepted(voice_call(start_time="2026-11-21T09:58:01.123456789Z"))

    assert record.start_time.microsecond == 123456


def test_a_whole_number_written_with_a_zero_fraction_is_that_integer() -> None:
    record = accepted(voice_call(duration_seconds=125.0))

    assert record.duration_seconds == 125
    assert type(record.duration_seconds) is int


def test_the_largest_volume_a_signed_64_bit_integer_holds_is_read_exactly() -> None:
    big = without(voice_call(volume_bytes=2**63 - 1), "duration_seconds")

    assert accepted(big).volume_bytes == 9_223_372_036_854_775_807


def test_an_unrated_record_has_no_charge() -> None:
    record = accepted(unrated(voice_call()), "unrated")

    assert (record.charge, record.currency, record.discount) == (None, None, None)


def test_a_usage_record_cannot_be_changed() -> None:
    record = accepted(voice_call())

    with pytest.raises(dataclasses.FrozenInstanceError):
        record.msisdn = "447700900999"  # type: ignore[misc]


# --- what is refused, and where ------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["record_id", "usage_class", "start_time", "direction", "charge"]
)
def test_each_required_field_missing_is_refused_at_that_field(name: str) -> None:
    error = refusal(without(voice_call(), name), index=17)

    assert error.code == "missing_field"
    assert error.path == f"/records/17/{name}"
    assert error.message == f"{name} is required"
    assert error.error_class == "schema"


def test_a_record_without_msisdn_or_imsi_names_no_subscriber() -> None:
    error = refusal(without(voice_call(), "msisdn"), index=3)

    assert (error.code, error.path) == ("no_subscriber", "/records/3")
    assert error.record_id == "OCS1-000001"


def test_a_record_without_any_quantity_is_refused() -> None:
    error = refusal(without(voice_call(), "duration_seconds"))

    assert (error.code, error.path) == ("no_quantity", "/records/0")
    assert "duration_seconds, volume_bytes or units" in error.message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("record_id", 1),
        ("msisdn", 447700900123),
        ("imsi", None),
        ("usage_class", ["VOICE_NAT"]),
        ("start_time", 1_763_719_081),
        ("duration_seconds", "125"),
        ("volume_bytes", None),
        ("units", 1.5),
        ("direction", 0),
        ("called_number", 441632960001),
        ("mcc", 234),
        ("mnc", 15),
        ("charge", "0.2500"),
        ("discount", 0.05),
    ],
)
def test_a_field_of_the_wrong_json_type_is_refused(name: str, value: object) -> None:
    error = refusal(voice_call(**{name: value}))

    assert (error.code, error.path) == ("wrong_type", f"/records/0/{name}")


def test_an_amount_written_as_a_json_number_is_refused_to_keep_it_exact() -> None:
    error = refusal(voice_call(charge={"amount": 0.25, "currency": "GBP"}))

    assert (error.code, error.path) == ("wrong_type", "/records/0/charge/amount")
    assert error.message.startswith("charge: amount must be a string")


@pytest.mark.parametrize("name", ["duration_seconds", "volume_bytes", "units"])
@pytest.mark.parametrize("flag", [True, False])
def test_a_boolean_is_not_a_quantity(name: str, flag: bool) -> None:
    error = refusal(voice_call(**{name: flag}))

    assert (error.code, error.path) == ("wrong_type", f"/records/0/{name}")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("duration_seconds", 2_678_401),
        ("duration_seconds", -1),
        ("volume_bytes", 2**63),
        ("volume_bytes", 1e19),
        ("units", 10**9 + 1),
        ("units", 10**400),
    ],
)
def test_a_number_out_of_range_is_refused(name: str, value: object) -> None:
    error = refusal(voice_call(**{name: value}))

    assert (error.code, error.path) == ("out_of_range", f"/records/0/{name}")


def test_the_largest_quantities_are_accepted() -> None:
    record = accepted(voice_call(duration_seconds=2_678_400, units=10**9))

    assert (record.duration_seconds, record.units) == (2_678_400, 10**9)


@pytest.mark.parametrize(
    "amount",
    ["1234567890123", "0.1234567", "007", ".5", "1.", "+1", "1e3", "0.25\n", "NaN"],
)
def test_an_amount_that_is_not_a_short_decimal_is_refused(amount: str) -> None:
    error = refusal(voice_call(discount={"amount": amount}))

    assert (error.code, error.path) == ("bad_format", "/records/0/discount/amount")


def test_a_start_time_without_an_offset_is_refused_with_how_to_fix_it() -> None:
    error = refusal(voice_call(start_time="2026-11-21T09:58:01"))

    assert (error.code, error.path) == ("bad_format", "/records/0/start_time")
    assert "has no offset: add Z or +hh:mm" in error.message


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-21t09:58:01Z",
        "2026-11-21T09:58:01z",
        "2026-11-21 09:58:01Z",
        "2026-11-21T09:58Z",
        "2026-11-21T24:00:00Z",
        "2026-11-21T23:59:60Z",
        "2026-11-21T09:58:01+24:00",
        "2026-11-21T09:58:01+0100",
        "2026-11-21T09:58:01.1234567890Z",
        "2026-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "1899-12-31T23:59:59Z",
        "3000-01-01T00:00:00Z",
        "20261121T095801Z",
    ],
)
def test_a_start_time_that_is_not_rfc_3339_in_range_is_refused(text: str) -> None:
    error = refusal(voice_call(start_time=text))

    assert (error.code, error.path) == ("bad_format", "/records/0/start_time")


@pytest.mark.parametrize(
    "text",
    ["2028-02-29T00:00:00Z", "2000-02-29T00:00:00Z", "1900-01-01T00:30:00+01:00"],
)
def test_leap_days_and_the_edges_of_the_years_allowed_are_accepted(text: str) -> None:
    assert accepted(voice_call(start_time=text))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("record_id", "OCS1 000001"),
        ("record_id", "X" * 65),
        ("msisdn", "+447700900123"),
        ("msisdn", "12345"),
        ("msisdn", "447700900123\n"),
        ("msisdn", "\u0664\u0664\u0667\u0667\u0660\u0660\u0669"),
        ("imsi", "2341500000000"),
        ("usage_class", "voice_nat"),
        ("direction", "mo"),
        ("called_number", ""),
        ("mcc", "2345"),
        ("mnc", "1"),
    ],
)
def test_a_value_in_the_wrong_format_is_refused(name: str, value: str) -> None:
    error = refusal(voice_call(**{name: value}))

    assert (error.code, error.path) == ("bad_format", f"/records/0/{name}")


def test_a_misspelt_field_is_an_error_not_dropped() -> None:
    record = voice_call(msidsn="447700900123")

    error = refusal(record)

    assert (error.code, error.path) == ("unknown_field", "/records/0/msidsn")
    assert error.message == "'msidsn' is not a field here"


def test_an_unknown_field_name_is_escaped_in_the_path() -> None:
    error = refusal(voice_call(**{"a/b~c": 1}))

    assert error.path == "/records/0/a~1b~0c"


def test_an_unknown_field_inside_the_charge_is_refused_there() -> None:
    error = refusal(voice_call(charge={"amount": "1", "currency": "GBP", "vat": "0"}))

    assert (error.code, error.path) == ("unknown_field", "/records/0/charge/vat")


@pytest.mark.parametrize("name", ["charge", "discount"])
def test_unrated_usage_with_a_charge_or_discount_is_refused(name: str) -> None:
    record = {**unrated(voice_call()), name: voice_call()[name]}

    error = refusal(record, "unrated")

    assert (error.code, error.path) == ("forbidden_field", f"/records/0/{name}")


def test_rated_usage_without_a_charge_is_refused() -> None:
    error = refusal(unrated(voice_call()), "rated")

    assert (error.code, error.path) == ("missing_field", "/records/0/charge")


@pytest.mark.parametrize("raw", [None, "record", 1, [voice_call()]])
def test_a_record_that_is_not_an_object_is_refused_at_its_index(raw: object) -> None:
    error = refusal(raw, index=4)

    assert (error.code, error.path, error.record_id) == (
        "wrong_type",
        "/records/4",
        None,
    )


def test_only_the_first_problem_of_a_record_is_reported() -> None:
    record = voice_call(usage_class="voice", direction="XX", mcc=1)

    error = refusal(record)

    assert error.path == "/records/0/usage_class"


def test_the_error_names_the_record_only_when_its_id_is_valid() -> None:
    assert refusal(voice_call(direction="XX")).record_id == "OCS1-000001"
    assert refusal(voice_call(record_id="bad id", direction="XX")).record_id is None


def test_a_kind_other_than_rated_or_unrated_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="rated"):
        validate_record(voice_call(), "RATED", 0)


# --- the header and the file -----------------------------------------------------


def header(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "file_id": "OCS1-20261121-0001",
        "source": "OCS1",
        "created_at": "2026-11-21T11:00:00+01:00",
        "kind": "rated",
        "record_count": 2,
    }
    raw.update(changes)
    return raw


def test_a_valid_header_is_read_with_its_time_in_utc() -> None:
    assert validate_header(header(), "rated") == Header(
        file_id="OCS1-20261121-0001",
        source="OCS1",
        created_at=datetime(2026, 11, 21, 10, 0, tzinfo=UTC),
        kind="rated",
        record_count=2,
    )


def test_every_problem_of_a_header_is_listed() -> None:
    raw = without(header(source="", record_count=10**9 + 1, extra=1), "file_id")

    errors = validate_header(raw)

    assert isinstance(errors, list)
    assert [(error.code, error.path) for error in errors] == [
        ("unknown_field", "/header/extra"),
        ("missing_field", "/header/file_id"),
        ("bad_format", "/header/source"),
        ("out_of_range", "/header/record_count"),
    ]


def test_a_header_of_the_other_kind_is_refused_when_a_kind_is_expected() -> None:
    assert isinstance(validate_header(header(kind="unrated")), Header)

    errors = validate_header(header(kind="unrated"), "rated")

    assert isinstance(errors, list)
    assert [(error.code, error.path) for error in errors] == [
        ("wrong_kind", "/header/kind")
    ]


def test_a_header_that_is_not_an_object_is_refused() -> None:
    errors = validate_header(["OCS1"])

    assert isinstance(errors, list)
    assert [(error.code, error.path) for error in errors] == [("wrong_type", "/header")]


def test_a_header_counting_other_records_than_the_file_holds_is_refused() -> None:
    checked = validate_header(header(record_count=3))
    assert isinstance(checked, Header)

    error = check_count(checked, 2)

    assert error == RecordError(
        None,
        "count_mismatch",
        "the header counts 3 records but the file holds 2",
        "/header/record_count",
    )
    assert check_count(checked, 3) is None


def test_a_file_is_split_into_its_header_and_records() -> None:
    document = {"header": header(), "records": [voice_call(), data_session()]}

    assert split_batch(document) == (header(), [voice_call(), data_session()])


@pytest.mark.parametrize(
    ("document", "code", "path"),
    [
        ([voice_call()], "wrong_type", ""),
        ("not a file", "wrong_type", ""),
        ({"records": []}, "missing_field", "/header"),
        ({"header": header()}, "missing_field", "/records"),
        ({"header": header(), "records": {}}, "wrong_type", "/records"),
        (
            {"header": header(), "records": [], "trailer": 1},
            "unknown_field",
            "/trailer",
        ),
    ],
)
def test_a_file_of_the_wrong_shape_is_refused_as_a_whole(
    document: object, code: str, path: str
) -> None:
    error = split_batch(document)

    assert isinstance(error, RecordError)
    assert (error.code, error.path) == (code, path)
