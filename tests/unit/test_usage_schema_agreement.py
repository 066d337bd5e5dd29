"""The hot-path validator and the published JSON Schemas agree on every input.

``jsonschema`` is the reference: for generated valid records, near misses and
arbitrary JSON, ``validate_record`` accepts exactly when the schema of the same
kind does, and when both refuse, the schema reports an error at the path the
validator names, of a matching kind (a missing field at ``required``, a wrong
type at ``type`` …). The reference runs with and without a ``date-time`` format
checker (``rfc3339-validator`` may or may not be installed): the schemas carry
the RFC 3339 rules in a ``pattern`` as well, so the answer is the same.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.usage_records import (
    KINDS,
    RecordError,
    check_count,
    split_batch,
    validate_header,
    validate_record,
)

SCHEMAS = Path(__file__).resolve().parents[2] / "ingest" / "schemas"
# Enough examples for the file to run in a few seconds; raise them locally
# (or run the file again: each run draws new examples) to search harder.
SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def load_schema(kind: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"usage-{kind}.schema.json").read_text("utf-8"))


def references(kind: str) -> list[jsonschema.Draft202012Validator]:
    """The schema with the format checker jsonschema has here, and without one."""
    schema = load_schema(kind)
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    return [
        jsonschema.Draft202012Validator(schema, format_checker=checker),
        jsonschema.Draft202012Validator(schema),
    ]


REFERENCES = {kind: references(kind) for kind in KINDS}

# The schema keywords that can report each error code of validate_record.
KEYWORDS = {
    "missing_field": {"required"},
    "wrong_type": {"type", "enum", "const"},
    "out_of_range": {"minimum", "maximum"},
    "bad_format": {"pattern", "minLength", "maxLength", "format", "enum", "const"},
    "unknown_field": {"additionalProperties"},
    "forbidden_field": {"not"},
    "no_subscriber": {"anyOf"},
    "no_quantity": {"anyOf"},
    "wrong_kind": {"const"},
}

# --- generators ---------------------------------------------------------------
# Strategies are built once, here: building them inside a draw costs more than
# the check they feed.

DIGITS = "0123456789"
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ID_CHARACTERS = UPPER + UPPER.lower() + DIGITS + "._-"


def characters(alphabet: str, shortest: int, longest: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=shortest, max_size=longest)


def whole_numbers(maximum: int) -> st.SearchStrategy[int | float]:
    """Integers in range, sometimes written with a zero fraction (125.0)."""
    as_float = st.integers(0, min(maximum, 2**53)).map(float)
    return st.integers(0, maximum) | as_float | st.sampled_from([0, maximum])


MAXIMA = {"duration_seconds": 2_678_400, "volume_bytes": 2**63 - 1, "units": 10**9}
QUANTITIES = {name: whole_numbers(maximum) for name, maximum in MAXIMA.items()}
TEXT_FIELDS = {
    "record_id": characters(ID_CHARACTERS + ":", 1, 64),
    "msisdn": characters(DIGITS, 6, 15),
    "imsi": characters(DIGITS, 14, 15),
    "usage_class": characters(UPPER + DIGITS + "_", 1, 32),
    "called_number": characters(DIGITS, 1, 32),
    "mcc": characters(DIGITS, 3, 3),
    "mnc": characters(DIGITS, 2, 3),
}
FIELDS = [*TEXT_FIELDS, "start_time", *MAXIMA, "direction", "charge", "discount"]
AMOUNTS = st.builds(
    lambda sign, whole, fraction: sign + str(whole) + fraction,
    st.sampled_from(["", "-"]),
    st.integers(0, 10**12 - 1) | st.sampled_from([0, 10**12 - 1]),
    st.just("") | characters(DIGITS, 1, 6).map(lambda digits: "." + digits),
)
CURRENCIES = characters(UPPER, 3, 3)
DIRECTIONS = st.sampled_from(["MO", "MT"])
SUBSCRIBERS = st.sampled_from([["msisdn"], ["imsi"], ["msisdn", "imsi"]])
OPTIONAL = st.sets(st.sampled_from(["called_number", "mcc", "mnc"]))
QUANTITY_SETS = st.sets(st.sampled_from(sorted(MAXIMA)), min_size=1)
RANDOMS = st.randoms(use_true_random=False)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)

VALID_TIMES = st.builds(
    lambda day, moment, fraction, offset: (
        f"{day.isoformat()}T{moment:%H:%M:%S}{fraction}{offset}"
    ),
    st.dates(date(1900, 1, 1), date(2999, 12, 31)),
    st.times(),
    st.sampled_from(["", "", ".5", ".123456", ".123456789"]),
    st.sampled_from(["Z", "+00:00", "-00:00", "+01:00", "-05:30", "+23:59"]),
)
# Date-times from parts that may be out of range, with separators, fractions,
# offsets and endings that may go astray.
ANY_TIMES = st.builds(
    lambda date_parts, clock, separator, fraction, offset, ending: (
        "{:04d}-{:02d}-{:02d}".format(*date_parts)
        + separator
        + "{:02d}:{:02d}:{:02d}".format(*clock)
        + fraction
        + offset
        + ending
    ),
    st.tuples(st.integers(0, 10_999), st.integers(0, 13), st.integers(0, 32)),
    st.tuples(st.integers(0, 25), st.integers(0, 61), st.integers(0, 61)),
    st.sampled_from(["T", "T", "T", "t", " ", "_"]),
    st.sampled_from(["", "", ".5", ".123456789", ".", ".1234567890", ",5"]),
    st.sampled_from(
        [
            *("Z", "Z", "+01:00", "z", "", "+00:00", "-07:00", "+24:00", "+23:60"),
            *("+0100", "+01", "+01:00:00", "Z+01:00", "UTC"),
        ]
    ),
    st.sampled_from(["", "", "", "\n", " ", "Z"]),
)
TIMES = VALID_TIMES | ANY_TIMES


def twisted(right: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Right values with a character added or taken away, or lower case."""
    twists = st.sampled_from(["\n", " ", "+", "a", "Z", "-", ":", "٣", "0" * 40])
    return (
        st.tuples(right, twists, st.booleans()).map(
            lambda t: t[0] + t[1] if t[2] else t[1] + t[0]
        )
        | right.map(lambda text: text[:-1])
        | right.map(str.lower)
    )


NEAR_AMOUNTS = AMOUNTS | st.sampled_from(
    [
        *("007", "1.", ".5", "+1", "1e3", "-0", "1234567890123", "0.1234567"),
        *("123456789012.123456", "0.2500\n", " 1", "٣", "-", "1 ", "00.5", 0.25),
    ]
)
NEAR_MISSES: dict[str, st.SearchStrategy[Any]] = {
    **{name: twisted(right) for name, right in TEXT_FIELDS.items()},
    **{
        name: st.integers()
        | st.sampled_from(
            [
                *(-1, top, top + 1, float(top), float(top + 1), 1.5, True),
                *(False, "1", -0.0, float("inf"), float("nan"), 10**30),
            ]
        )
        for name, top in MAXIMA.items()
    },
    "start_time": TIMES,
    "direction": st.sampled_from(["mo", "MO ", "XX", "", "MO\n", 0, None, ["MO"]]),
    "charge": st.fixed_dictionaries(
        {},
        optional={
            "amount": NEAR_AMOUNTS | json_values,
            "currency": st.sampled_from(["GBP", "gbp", "GB", "GBPX", 826, None]),
            "vat": json_values,
        },
    ),
    "discount": st.fixed_dictionaries(
        {}, optional={"amount": NEAR_AMOUNTS, "currency": CURRENCIES}
    ),
}
EXTRA_NAMES = st.text(max_size=10) | st.sampled_from(["msidsn", "a/b", "~", ""])
MUTATIONS = st.sampled_from(["drop", "replace", "near", "extra", "whole"])
MUTATED_FIELDS = st.sampled_from(FIELDS)


@st.composite
def records(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """A valid record of ``kind``, fields in any order."""
    record: dict[str, Any] = {
        "record_id": draw(TEXT_FIELDS["record_id"]),
        "usage_class": draw(TEXT_FIELDS["usage_class"]),
        "start_time": draw(VALID_TIMES),
        "direction": draw(DIRECTIONS),
    }
    for name in [*draw(SUBSCRIBERS), *draw(OPTIONAL)]:
        record[name] = draw(TEXT_FIELDS[name])
    for name in draw(QUANTITY_SETS):
        record[name] = draw(QUANTITIES[name])
    if kind == "rated":
        record["charge"] = {"amount": draw(AMOUNTS), "currency": draw(CURRENCIES)}
        if draw(st.booleans()):
            record["discount"] = {"amount": draw(AMOUNTS)}
    items = list(record.items())
    draw(RANDOMS).shuffle(items)
    return dict(items)


@st.composite
def mutated_records(draw: st.DrawFn, kind: str) -> object:
    """A valid record changed in one way (or none) that may make it invalid."""
    record = draw(records(kind))
    how = draw(MUTATIONS)
    name = draw(MUTATED_FIELDS)
    if how == "drop":
        del record[draw(RANDOMS).choice(sorted(record))]
    elif how == "replace":
        record[name] = draw(json_values)
    elif how == "near":
        record[name] = draw(NEAR_MISSES[name])
    elif how == "extra":
        record[draw(EXTRA_NAMES)] = draw(json_values)
    else:
        return draw(json_values)
    return record


# --- comparing the answers -------------------------------------------------------


def pointer(parts: Iterable[object]) -> str:
    return "".join(
        "/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts
    )


def reported(errors: Iterable[jsonschema.ValidationError]) -> set[tuple[str, str]]:
    """(JSON Pointer, keyword) of every error jsonschema reports; for a missing
    or an extra property the pointer names the property."""
    found = set()
    for error in errors:
        base = pointer(error.absolute_path)
        found.add((base, str(error.validator)))
        instance = error.instance
        if error.validator == "required":
            for name in error.validator_value:
                if name not in instance:
                    found.add((pointer([*error.absolute_path, name]), "required"))
        if error.validator == "additionalProperties":
            known = error.schema.get("properties", {})
            for name in instance:
                if name not in known:
                    found.add(
                        (
                            pointer([*error.absolute_path, name]),
                            "additionalProperties",
                        )
                    )
    return found


def header(kind: str) -> dict[str, Any]:
    return {
        "file_id": "OCS1-20261121-0001",
        "source": "OCS1",
        "created_at": "2026-11-21T10:00:00Z",
        "kind": kind,
        "record_count": 1,
    }


def assert_agreement(
    document: object,
    kind: str,
    ours: list[RecordError],
) -> None:
    """``ours`` (the validator's errors for ``document``) is empty exactly
    when each reference finds ``document`` valid, and each of ours is among
    the reference's errors."""
    for reference in REFERENCES[kind]:
        theirs = reported(reference.iter_errors(document))
        assert (not ours) == (not theirs), (ours, theirs)
        for error in ours:
            keywords = KEYWORDS[error.code]
            assert any((error.path, k) in theirs for k in keywords), (error, theirs)


def assert_record_agreement(record: object, kind: str) -> None:
    result = validate_record(record, kind, 0)
    ours = [result] if isinstance(result, RecordError) else []
    assert_agreement({"header": header(kind), "records": [record]}, kind, ours)


# --- properties ------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_every_generated_valid_record_is_accepted_by_both(
    kind: str, data: st.DataObject
) -> None:
    record = data.draw(records(kind))

    assert_record_agreement(record, kind)
    assert not isinstance(validate_record(record, kind, 0), RecordError)


@pytest.mark.parametrize("kind", KINDS)
@settings(SETTINGS, max_examples=400)
@given(data=st.data())
def test_a_changed_record_is_refused_exactly_when_the_schema_refuses_it(
    kind: str, data: st.DataObject
) -> None:
    assert_record_agreement(data.draw(mutated_records(kind)), kind)


@pytest.mark.parametrize("kind", KINDS)
@settings(SETTINGS, max_examples=40)
@given(data=st.data())
def test_a_record_without_a_required_field_is_refused_by_both_at_that_field(
    kind: str, data: st.DataObject
) -> None:
    record = data.draw(records(kind))
    required = ["record_id", "usage_class", "start_time", "direction"]
    name = data.draw(st.sampled_from([*required, "charge"][: 4 + (kind == "rated")]))
    del record[name]

    result = validate_record(record, kind, 0)

    assert isinstance(result, RecordError)
    assert result.path == f"/records/0/{name}"
    assert_record_agreement(record, kind)


@pytest.mark.parametrize("kind", KINDS)
@settings(SETTINGS, max_examples=60)
@given(data=st.data())
def test_a_field_of_the_wrong_json_type_is_refused_by_both(
    kind: str, data: st.DataObject
) -> None:
    record = data.draw(records(kind))
    name = data.draw(st.sampled_from(sorted(record)))
    wrong: Callable[[Any], bool] = {
        "charge": lambda v: not isinstance(v, dict),
        "discount": lambda v: not isinstance(v, dict),
        "direction": lambda v: v not in ("MO", "MT"),
    }.get(
        name,
        (lambda v: isinstance(v, bool) or not isinstance(v, int | float))
        if name in MAXIMA
        else (lambda v: not isinstance(v, str)),
    )
    record[name] = data.draw(json_values.filter(wrong))

    result = validate_record(record, kind, 0)

    assert isinstance(result, RecordError)
    assert result.path == f"/records/0/{name}"
    assert_record_agreement(record, kind)


@pytest.mark.parametrize("kind", KINDS)
@settings(SETTINGS, max_examples=150)
@given(data=st.data())
def test_headers_agree(kind: str, data: st.DataObject) -> None:
    raw = header(kind)
    how = data.draw(st.sampled_from(["none", "drop", "replace", "extra", "whole"]))
    name = data.draw(st.sampled_from(sorted(raw)))
    if how == "drop":
        del raw[name]
    elif how == "replace":
        raw[name] = data.draw(
            json_values
            | TIMES
            | st.sampled_from(KINDS)
            | st.integers(-1, 10**9 + 1)
            | characters(ID_CHARACTERS, 0, 70)
        )
    elif how == "extra":
        raw[data.draw(st.text(max_size=8))] = data.draw(json_values)
    document = {
        "header": data.draw(json_values) if how == "whole" else raw,
        "records": [],
    }

    result = validate_header(document["header"], kind)

    ours = result if isinstance(result, list) else []
    assert_agreement(document, kind, ours)


def validate_file(document: object, kind: str) -> list[RecordError]:
    """Every error the validator finds in a parsed file (as a loader would)."""
    split = split_batch(document)
    if isinstance(split, RecordError):
        return [split]
    raw_header, raw_records = split
    checked = validate_header(raw_header, kind)
    errors = checked if isinstance(checked, list) else []
    for index, raw in enumerate(raw_records):
        result = validate_record(raw, kind, index)
        if isinstance(result, RecordError):
            errors.append(result)
    return errors


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_whole_files_agree(kind: str, data: st.DataObject) -> None:
    records_ = data.draw(st.lists(records(kind) | mutated_records(kind), max_size=4))
    document: Any = {"header": header(kind), "records": records_}
    how = data.draw(st.sampled_from(["none", "none", "drop", "extra", "other"]))
    if how == "drop":
        del document[data.draw(st.sampled_from(["header", "records"]))]
    elif how == "extra":
        document[data.draw(st.text(max_size=8))] = data.draw(json_values)
    elif how == "other":
        document = data.draw(
            json_values | st.builds(lambda h: {"header": h, "records": {}}, st.just(1))
        )

    assert_agreement(document, kind, validate_file(document, kind))


def test_the_example_files_in_the_schemas_are_valid_for_both() -> None:
    for kind in KINDS:
        for document in load_schema(kind)["examples"]:
            assert validate_file(document, kind) == []
            assert_agreement(document, kind, [])
            checked = validate_header(document["header"], kind)
            assert not isinstance(checked, list)
            assert check_count(checked, len(document["records"])) is None


def without_prose(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {
            key: without_prose(value)
            for key, value in schema.items()
            if key not in ("title", "description", "examples", "$comment")
        }
    if isinstance(schema, list):
        return [without_prose(value) for value in schema]
    return schema


def test_the_unrated_schema_is_the_rated_one_without_charge_and_discount() -> None:
    rated = without_prose(load_schema("rated"))
    unrated = without_prose(load_schema("unrated"))
    expected = copy.deepcopy(rated)
    expected["$id"] = expected["$id"].replace("rated", "unrated")
    expected["$defs"]["header"]["properties"]["kind"]["const"] = "unrated"
    record = expected["$defs"]["record"]
    record["required"].remove("charge")
    record["properties"]["charge"] = {"not": {}}
    record["properties"]["discount"] = {"not": {}}

    assert unrated == expected


def test_both_schemas_are_valid_draft_2020_12_schemas() -> None:
    for kind in KINDS:
        schema = load_schema(kind)
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"] == (
            f"https://monetise.invalid/schemas/usage-{kind}.schema.json"
        )
