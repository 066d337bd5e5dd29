"""The fast lane of the record validator vouches only for what the validator
accepts, and gives the same fields.

``QuickCheck`` either steps aside (None) or returns the fields that
``validate_record`` gives for the same record, with the start time as the
views store it and money as the file's decimal strings. The records are those
of the schema agreement tests: valid ones, ones near the edge of every rule,
and arbitrary JSON. One checker per kind serves every example, so what it
remembers from earlier records is put to the test too.

Each record is also read as the loader reads it, typed (``USUAL_RECORD``)
where its text fits the typed shape: the checker answers the same for it as
for the dict, and the validator the same for it (as ``plain_record``) as for
the dict, refusals included.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.usage_records import (
    KINDS,
    USUAL_RECORD,
    QuickCheck,
    RecordError,
    UsageRecord,
    plain_record,
    utc_text,
    validate_record,
)
from tests.unit.test_usage_schema_agreement import (
    EDGES,
    EXTRA_NAMES,
    FIELDS,
    SETTINGS,
    example_record,
    mutated_records,
    records,
)

CHECKERS = {kind: QuickCheck(kind) for kind in KINDS}


def fields_of(record: UsageRecord) -> tuple[Any, ...]:
    return (
        record.record_id,
        record.msisdn,
        record.imsi,
        record.usage_class,
        utc_text(record.start_time),
        record.duration_seconds,
        record.volume_bytes,
        record.units,
        record.direction,
        record.called_number,
        record.mcc,
        record.mnc,
        None if record.charge is None else str(record.charge),
        record.currency,
        None if record.discount is None else str(record.discount),
    )


TYPED = {kind: msgspec.json.Decoder(USUAL_RECORD[kind]) for kind in KINDS}


def assert_same_answer(raw: object, kind: str) -> None:
    quick = CHECKERS[kind].check(raw)
    full = validate_record(raw, kind, 0)
    if quick is not None:
        assert not isinstance(full, RecordError), (raw, full)
        assert quick == fields_of(full), raw
    assert_same_answer_typed(raw, kind)


def assert_same_answer_typed(raw: object, kind: str) -> None:
    """The record as the loader reads it, if its text fits the typed shape."""
    try:
        text = json.dumps(raw, allow_nan=False)
    except ValueError:
        return  # not JSON: no file holds it
    plain = json.loads(text)
    try:
        typed = TYPED[kind].decode(text)
    except msgspec.DecodeError:  # validation errors included
        return
    assert type(typed) is USUAL_RECORD[kind]
    assert plain_record(typed) == plain
    assert CHECKERS[kind].check(typed) == CHECKERS[kind].check(plain), text
    assert validate_record(plain_record(typed), kind, 0) == validate_record(
        plain, kind, 0
    ), text


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", FIELDS)
def test_the_quick_lane_answers_as_the_validator_at_the_edges_of_each_field(
    kind: str, name: str
) -> None:
    for value in EDGES[name]:
        record = example_record(kind)
        record[name] = value
        assert_same_answer(record, kind)
        del record[name]
        assert_same_answer(record, kind)
    for extra in EXTRA_NAMES:
        assert_same_answer({**example_record(kind), extra: 1}, kind)


@pytest.mark.parametrize("kind", KINDS)
@settings(SETTINGS, max_examples=300)
@given(data=st.data())
def test_the_quick_lane_answers_as_the_validator_for_changed_records(
    kind: str, data: st.DataObject
) -> None:
    assert_same_answer(data.draw(mutated_records(kind)), kind)


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_the_quick_lane_answers_as_the_validator_for_valid_records(
    kind: str, data: st.DataObject
) -> None:
    assert_same_answer(data.draw(records(kind)), kind)


@pytest.mark.parametrize("kind", KINDS)
def test_a_record_of_the_usual_shape_takes_the_quick_lane(kind: str) -> None:
    record = example_record(kind)
    for start in ("2026-11-21T09:58:01Z", "2026-11-21T10:58:01+01:00"):
        record["start_time"] = start
        assert CHECKERS[kind].check(record) is not None
        assert_same_answer(record, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_a_typed_record_of_the_usual_shape_takes_the_quick_lane(kind: str) -> None:
    text = json.dumps(example_record(kind))

    quick = QuickCheck(kind).check(TYPED[kind].decode(text))

    assert quick is not None
    assert quick == QuickCheck(kind).check(json.loads(text))


@pytest.mark.parametrize(
    ("change", "code", "path"),
    [
        ({"msisdn": "+447700900123"}, "bad_format", "/records/0/msisdn"),
        ({"duration_seconds": -1}, "out_of_range", "/records/0/duration_seconds"),
        ({"direction": "SIDEWAYS"}, "bad_format", "/records/0/direction"),
        ({"start_time": "2026-02-30T10:00:00Z"}, "bad_format", "/records/0/start_time"),
    ],
)
def test_a_typed_record_the_quick_lane_steps_aside_for_is_refused_as_a_dict_is(
    change: dict[str, Any], code: str, path: str
) -> None:
    text = json.dumps({**example_record("rated"), **change})
    typed = TYPED["rated"].decode(text)

    assert QuickCheck("rated").check(typed) is None
    refused = validate_record(plain_record(typed), "rated", 0)
    assert isinstance(refused, RecordError)
    assert (refused.code, refused.path) == (code, path)
    assert refused == validate_record(json.loads(text), "rated", 0)


@pytest.mark.parametrize(
    "change",
    [
        {"msisdn": None},  # null is not a text
        {"duration_seconds": 125.5},
        {"charge": {"amount": "0.25"}},  # no currency
        {"charge": {"amount": "0.25", "currency": "GBP", "tax": "0"}},
        {"colour": "blue"},
    ],
)
def test_a_record_that_does_not_fit_the_typed_shape_is_not_read_typed(
    change: dict[str, Any],
) -> None:
    with pytest.raises(msgspec.ValidationError):
        TYPED["rated"].decode(json.dumps({**example_record("rated"), **change}))


def test_charge_and_discount_do_not_fit_the_typed_shape_of_unrated_records() -> None:
    record = example_record("rated")

    with pytest.raises(msgspec.ValidationError):
        TYPED["unrated"].decode(json.dumps(record))


def test_money_keeps_the_files_decimal_strings() -> None:
    record = example_record("rated")
    record["charge"] = {"amount": "0.2500", "currency": "GBP"}
    record["discount"] = {"amount": "-0"}

    quick = QuickCheck("rated").check(record)

    assert quick is not None
    assert (quick[12], quick[13], quick[14]) == ("0.2500", "GBP", "-0")
