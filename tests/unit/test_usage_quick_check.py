"""The fast lane of the record validator vouches only for what the validator
accepts, and gives the same fields.

``QuickCheck`` either steps aside (None) or returns the fields that
``validate_record`` gives for the same record, with the start time as the
views store it and money as the file's decimal strings. The records are those
of the schema agreement tests: valid ones, ones near the edge of every rule,
and arbitrary JSON. One checker per kind serves every example, so what it
remembers from earlier records is put to the test too.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.usage_records import (
    KINDS,
    QuickCheck,
    RecordError,
    UsageRecord,
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


def assert_same_answer(raw: object, kind: str) -> None:
    quick = CHECKERS[kind].check(raw)
    full = validate_record(raw, kind, 0)
    if quick is not None:
        assert not isinstance(full, RecordError), (raw, full)
        assert quick == fields_of(full), raw


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


def test_money_keeps_the_files_decimal_strings() -> None:
    record = example_record("rated")
    record["charge"] = {"amount": "0.2500", "currency": "GBP"}
    record["discount"] = {"amount": "-0"}

    quick = QuickCheck("rated").check(record)

    assert quick is not None
    assert (quick[12], quick[13], quick[14]) == ("0.2500", "GBP", "-0")
