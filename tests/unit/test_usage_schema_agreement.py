"""The hot-path validator and the published JSON Schemas agree on every input.

``jsonschema`` is the reference. For valid records, records near the edge of
every rule and arbitrary JSON, ``validate_record`` accepts exactly when the
schema of the same kind does; when both refuse, the schema reports an error at
the path the validator names, of a matching kind (a missing field at
``required``, a wrong type at ``type`` …). The reference runs with and without
a ``date-time`` format checker (jsonschema checks that format only when
``rfc3339-validator`` is installed): the schemas carry the RFC 3339 rules in a
``pattern`` too, so the answer is the same either way.

The edges of each rule are listed once (``EDGES``) and checked every run; the
property tests then search around them.
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
# Enough examples for the file to run in a few seconds; each run draws new
# ones, and raising max_examples locally searches harder.
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

# The schema keywords that can report each error code of the validator.
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

# --- the edges of every rule ------------------------------------------------------

DIGITS = "0123456789"
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ID_CHARACTERS = UPPER + UPPER.lower() + DIGITS + "._-"
TEXT_RULES = {  # alphabet, shortest, longest
    "record_id": (ID_CHARACTERS + ":", 1, 64),
    "msisdn": (DIGITS, 6, 15),
    "imsi": (DIGITS, 14, 15),
    "usage_class": (UPPER + DIGITS + "_", 1, 32),
    "called_number": (DIGITS, 1, 32),
    "mcc": (DIGITS, 3, 3),
    "mnc": (DIGITS, 2, 3),
}
MAXIMA = {"duration_seconds": 2_678_400, "volume_bytes": 2**63 - 1, "units": 10**9}
FIELDS = [*TEXT_RULES, "start_time", *MAXIMA, "direction", "charge", "discount"]
ODD_VALUES = [None, True, False, 0, 1.5, "", [], {}, float("nan"), float("inf")]


def text_edges(alphabet: str, shortest: int, longest: int) -> list[Any]:
    def sized(n: int) -> str:
        return (alphabet * 70)[:n]

    valid = sized(longest)
    return [
        *(sized(n) for n in (shortest - 1, shortest, longest, longest + 1) if n >= 0),
        *(valid + twist for twist in ("\n", " ", "+", "a", "Z", "0", "\u0663", "\x00")),
        *(
            "\n" + valid,
            "+" + valid,
            valid.lower(),
            valid[:-1] + "\u0661",
            "\uff11" * shortest,
        ),
        int(DIGITS[: max(shortest, 1)]),
        *ODD_VALUES,
    ]


def quantity_edges(top: int) -> list[Any]:
    return [
        *(-1, 0, top, top + 1, float(top), float(top + 1), 0.0, -0.0, 1.0, 1.5),
        *(True, False, "1", None, float("inf"), float("nan"), 10**30, -(10**30)),
        *(2**64, 1e300, [1], {"value": 1}),
    ]


BASE_TIME = "2026-11-21T09:58:01Z"
TIME_EDGES = [
    *(BASE_TIME, "2026-11-21T10:58:01+01:00", "2026-11-21T04:28:01-05:30"),
    *("2026-11-21T09:58:01-00:00", "2026-11-21T09:58:01+23:59", "2026-11-21T09:58:01"),
    *("2026-11-21t09:58:01Z", "2026-11-21T09:58:01z", "2026-11-21 09:58:01Z"),
    *("2026-11-21_09:58:01Z", "2026-11-21T09:58:01+24:00", "2026-11-21T09:58:01+23:60"),
    *("2026-11-21T09:58:01+0100", "2026-11-21T09:58:01+01", "2026-11-21T09:58Z"),
    *("2026-11-21T09:58:01+01:00:00", "2026-11-21T09:58:01Z+01:00", "2026-11-21"),
    *("2026-11-21T09:58:01UTC", "2026-11-21T09:58:01.5Z", "2026-11-21T09:58:01.Z"),
    *("2026-11-21T09:58:01.123456789Z", "2026-11-21T09:58:01.1234567890Z"),
    *("2026-11-21T09:58:01,5Z", "2026-11-21T09:58:01Z\n", "\n2026-11-21T09:58:01Z"),
    *(" 2026-11-21T09:58:01Z", "2026-11-21T09:58:01Z ", "20261121T095801Z"),
    *(
        "2026-W47-6T09:58:01Z",
        "2026-325T09:58:01Z",
        "\uff12\uff10\uff12\uff16-11-21T09:58:01Z",
    ),
    *("2026-11-21T24:00:00Z", "2026-11-21T23:60:00Z", "2026-11-21T23:59:60Z"),
    *("2026-11-21T23:59:59Z", "2026-11-21T00:00:00Z", "2026-11-21T9:58:01Z"),
    *("2026-02-29T00:00:00Z", "2028-02-29T00:00:00Z", "1900-02-29T00:00:00Z"),
    *("2000-02-29T00:00:00Z", "2100-02-29T00:00:00Z", "2400-02-29T00:00:00Z"),
    *("1904-02-29T00:00:00Z", "2026-02-30T00:00:00Z", "2026-04-31T00:00:00Z"),
    *("2026-12-31T00:00:00Z", "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z"),
    *("2026-11-00T00:00:00Z", "2026-11-32T00:00:00Z", "1899-12-31T23:59:59Z"),
    *("1900-01-01T00:00:00Z", "2999-12-31T23:59:59Z", "3000-01-01T00:00:00Z"),
    *("0000-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00"),
    *(
        "1900-01-01T00:30:00+01:00",
        "2999-12-31T23:30:00-01:00",
        "+2026-11-21T09:58:01Z",
    ),
    *ODD_VALUES,
    1_763_719_081,
]
AMOUNT_EDGES = [
    *("0", "-0", "0.0", "1", "12", "0.2500", "999999999999", "1000000000000"),
    *("-999999999999.999999", "0.123456", "0.1234567", "007", "00", "01", "1."),
    *(
        "1.0",
        ".5",
        "+1",
        "1e3",
        "1E3",
        " 1",
        "1 ",
        "1\n",
        "\u0663",
        "\uff11",
        "-",
        "--1",
    ),
    *("NaN", "Infinity", "0x10", "1_000", 0.25, 1, None, True),
]
CURRENCY_EDGES = [
    "GBP",
    "gbp",
    "GB",
    "GBPX",
    "G8P",
    "\uff27\uff22\uff30",
    "GBP\n",
    826,
    None,
]
EDGES: dict[str, list[Any]] = {
    **{name: text_edges(*rule) for name, rule in TEXT_RULES.items()},
    **{name: quantity_edges(top) for name, top in MAXIMA.items()},
    "start_time": TIME_EDGES,
    "direction": ["MO", "MT", "mo", "Mo", "MO ", "MO\n", "XX", "MOMT", *ODD_VALUES],
    "charge": [
        *({"amount": amount, "currency": "GBP"} for amount in AMOUNT_EDGES),
        *({"amount": "0.25", "currency": currency} for currency in CURRENCY_EDGES),
        *({"amount": "0.25"}, {"currency": "GBP"}, {"amount": "1", "vat": "0.2"}),
        *({"amount": "1", "currency": "GBP", "": 1}, "0.25", 0.25, *ODD_VALUES),
    ],
    "discount": [
        *({"amount": amount} for amount in AMOUNT_EDGES),
        *({"amount": "1", "currency": "GBP"}, {"currency": "GBP"}, "0.05"),
        *ODD_VALUES,
    ],
}
EXTRA_NAMES = ["msidsn", "MSISDN", "charge_amount", "a/b", "~", "~1", "", " ", "\n"]

# --- generators ----------------------------------------------------------------
# Strategies are built once, here: building them inside a draw costs more than
# the check they feed.


def characters(alphabet: str, shortest: int, longest: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=shortest, max_size=longest)


def mostly(
    valid: st.SearchStrategy[Any], edges: Iterable[Any]
) -> st.SearchStrategy[Any]:
    """Valid three times in four, otherwise one of ``edges``."""
    return st.one_of(valid, valid, valid, st.sampled_from(list(edges)))


def whole_numbers(maximum: int) -> st.SearchStrategy[int | float]:
    """Integers in range, sometimes written with a zero fraction (125.0)."""
    as_float = st.integers(0, min(maximum, 2**53)).map(float)
    return st.integers(0, maximum) | as_float | st.sampled_from([0, maximum])


TEXTS = {name: characters(*rule) for name, rule in TEXT_RULES.items()}
QUANTITIES = {name: whole_numbers(top) for name, top in MAXIMA.items()}
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


def render_time(
    parts: tuple[int, ...], separator: str, fraction: str, offset: str
) -> str:
    year, month, day, hour, minute, second = parts
    return (
        f"{year:04d}-{month:02d}-{day:02d}{separator}"
        f"{hour:02d}:{minute:02d}:{second:02d}{fraction}{offset}"
    )


VALID_TIMES = st.builds(
    lambda day, moment, fraction, offset: render_time(
        (day.year, day.month, day.day, moment.hour, moment.minute, moment.second),
        "T",
        fraction,
        offset,
    ),
    st.dates(date(1900, 1, 1), date(2999, 12, 31)),
    st.times(),
    st.sampled_from(["", "", ".5", ".123456", ".123456789"]),
    st.sampled_from(["Z", "+00:00", "-00:00", "+01:00", "-05:30", "+23:59"]),
)
# Each part of a date-time mostly valid, sometimes at or over its edge; days
# run to 31 in every month so that the calendar is put to the test.
ANY_TIMES = st.builds(
    render_time,
    st.tuples(
        mostly(st.integers(1900, 2999), [0, 1899, 3000, 9999, 1900, 2000, 2100]),
        mostly(st.integers(1, 12), [0, 13, 2]),
        mostly(st.integers(1, 31), [0, 29, 32]),
        mostly(st.integers(0, 23), [24, 99]),
        mostly(st.integers(0, 59), [60]),
        mostly(st.integers(0, 59), [60, 61]),
    ),
    mostly(st.just("T"), ["t", " ", "_", ""]),
    mostly(st.sampled_from(["", ".5", ".123456789"]), [".", ".1234567890", ",5"]),
    mostly(
        st.sampled_from(["Z", "+01:00", "-23:59"]),
        ["z", "", "+24:00", "+23:60", "+0100", "+01", "+01:00:00", "Z\n", "Z "],
    ),
)
TIMES = VALID_TIMES | ANY_TIMES


def near_texts(alphabet: str, shortest: int, longest: int) -> st.SearchStrategy[str]:
    """Strings around a text rule: too short or long, with a stray character,
    in lower case, or anything."""
    right = characters(alphabet, shortest, longest)
    stray = st.sampled_from(["\n", " ", "+", "a", "Z", "0", ":", "\u0663"])
    return st.one_of(
        characters(alphabet, longest + 1, longest + 3),
        characters(alphabet, 0, max(shortest - 1, 0)),
        st.tuples(right, stray).map(lambda pair: pair[0] + pair[1]),
        st.tuples(stray, right).map(lambda pair: pair[0] + pair[1]),
        right.map(str.lower),
        right,
        st.text(max_size=longest + 2),
    )


NEAR_AMOUNTS = st.builds(
    lambda sign, whole, fraction: sign + whole + fraction,
    st.sampled_from(["", "-", "+", "--"]),
    characters(DIGITS, 0, 14),
    st.sampled_from(["", "."]) | characters(DIGITS, 0, 8).map(lambda d: "." + d),
)
NEAR_MISSES: dict[str, st.SearchStrategy[Any]] = {
    **{name: near_texts(*rule) for name, rule in TEXT_RULES.items()},
    **{
        name: st.sampled_from(quantity_edges(top))
        | st.integers(top - 2, top + 2)
        | st.integers()
        | st.floats()
        for name, top in MAXIMA.items()
    },
    "start_time": TIMES,
    "direction": st.sampled_from(EDGES["direction"]) | st.text(max_size=3),
    "charge": st.fixed_dictionaries(
        {},
        optional={
            "amount": mostly(NEAR_AMOUNTS, AMOUNT_EDGES),
            "currency": mostly(CURRENCIES, CURRENCY_EDGES),
            "vat": json_values,
        },
    ),
    "discount": st.fixed_dictionaries(
        {},
        optional={"amount": mostly(NEAR_AMOUNTS, AMOUNT_EDGES), "currency": CURRENCIES},
    ),
}
EXTRA_KEYS = st.text(max_size=10) | st.sampled_from(EXTRA_NAMES)
MUTATIONS = st.sampled_from(["drop", "replace", "near", "near", "extra", "whole"])
MUTATED_FIELDS = st.sampled_from(FIELDS)


@st.composite
def records(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """A valid record of ``kind``, its fields in any order."""
    record: dict[str, Any] = {
        "record_id": draw(TEXTS["record_id"]),
        "usage_class": draw(TEXTS["usage_class"]),
        "start_time": draw(VALID_TIMES),
        "direction": draw(DIRECTIONS),
    }
    for name in [*draw(SUBSCRIBERS), *draw(OPTIONAL)]:
        record[name] = draw(TEXTS[name])
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
    """A valid record changed in one way (or not at all) that may make it invalid:
    a field dropped, set to any JSON value or to a value near its rule's edge, a
    field added, or the whole record replaced."""
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
        record[draw(EXTRA_KEYS)] = draw(json_values)
    else:
        return draw(json_values)
    return record


# --- comparing the answers -----------------------------------------------------


def pointer(parts: Iterable[object]) -> str:
    return "".join(
        "/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts
    )


def reported(errors: Iterable[jsonschema.ValidationError]) -> set[tuple[str, str]]:
    """(JSON Pointer, keyword) of every error jsonschema reports; for a missing
    or an extra property the pointer names that property."""
    found = set()
    for error in errors:
        path = list(error.absolute_path)
        found.add((pointer(path), str(error.validator)))
        if error.validator == "required":
            missing = [
                name for name in error.validator_value if name not in error.instance
            ]
            found.update((pointer([*path, name]), "required") for name in missing)
        if error.validator == "additionalProperties":
            known = error.schema.get("properties", {})
            extra = [name for name in error.instance if name not in known]
            found.update(
                (pointer([*path, name]), "additionalProperties") for name in extra
            )
    return found


def header(kind: str, record_count: int = 1) -> dict[str, Any]:
    return {
        "file_id": "OCS1-20261121-0001",
        "source": "OCS1",
        "created_at": "2026-11-21T10:00:00Z",
        "kind": kind,
        "record_count": record_count,
    }


def assert_agreement(document: object, kind: str, ours: list[RecordError]) -> None:
    """``ours``, the validator's errors in ``document``, is empty exactly when
    each reference finds it valid, and each of ours is one the reference reports."""
    for reference in REFERENCES[kind]:
        theirs = reported(reference.iter_errors(document))
        assert (not ours) == (not theirs), (document, ours, theirs)
        for error in ours:
            keywords = KEYWORDS[error.code]
            assert any((error.path, k) in theirs for k in keywords), (error, theirs)


def assert_record_agreement(record: object, kind: str) -> None:
    result = validate_record(record, kind, 0)
    ours = [result] if isinstance(result, RecordError) else []
    assert_agreement({"header": header(kind), "records": [record]}, kind, ours)


def validate_file(document: object, kind: str) -> list[RecordError]:
    """Every error the validator finds in a parsed file, as a loader would."""
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


def example_record(kind: str) -> dict[str, Any]:
    return copy.deepcopy(load_schema(kind)["examples"][0]["records"][0])


# --- the edges, every run --------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", FIELDS)
def test_both_judge_the_edges_of_each_field_alike(kind: str, name: str) -> None:
    for value in EDGES[name]:
        record = example_record(kind)
        record[name] = value
        assert_record_agreement(record, kind)
        del record[name]
        assert_record_agreement(record, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_both_refuse_an_added_field_and_a_record_that_is_not_an_object(
    kind: str,
) -> None:
    for name in EXTRA_NAMES:
        assert_record_agreement({**example_record(kind), name: 1}, kind)
    for value in ["record", 1, None, [example_record(kind)]]:
        assert_record_agreement(value, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_both_judge_the_edges_of_the_header_alike(kind: str) -> None:
    other = "unrated" if kind == "rated" else "rated"
    edges: dict[str, list[Any]] = {
        "file_id": text_edges(ID_CHARACTERS, 1, 64),
        "source": text_edges(ID_CHARACTERS, 1, 32),
        "created_at": TIME_EDGES,
        "kind": [kind, other, kind.upper(), "", *ODD_VALUES],
        "record_count": quantity_edges(10**9),
    }
    for name, values in edges.items():
        for value in [*values, "absent"]:
            raw = header(kind)
            if value == "absent":
                del raw[name]
            else:
                raw[name] = value
            result = validate_header(raw, kind)
            ours = result if isinstance(result, list) else []
            assert_agreement({"header": raw, "records": []}, kind, ours)


# --- properties ------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@SETTINGS
@given(data=st.data())
def test_every_generated_valid_record_is_accepted_by_both(
    kind: str, data: st.DataObject
) -> None:
    record = data.draw(records(kind))

    assert not isinstance(validate_record(record, kind, 0), RecordError)
    assert_record_agreement(record, kind)


@pytest.mark.parametrize("kind", KINDS)
@settings(SETTINGS, max_examples=300)
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
    if kind == "rated":
        required.append("charge")
    name = data.draw(st.sampled_from(required))
    del record[name]

    result = validate_record(record, kind, 0)

    assert isinstance(result, RecordError)
    assert (result.code, result.path) == ("missing_field", f"/records/0/{name}")
    assert_record_agreement(record, kind)


def is_wrong_type(name: str) -> Callable[[Any], bool]:
    if name in ("charge", "discount"):
        return lambda value: not isinstance(value, dict)
    if name == "direction":
        return lambda value: not isinstance(value, str)
    if name in MAXIMA:
        return lambda value: (
            isinstance(value, bool) or not isinstance(value, int | float)
        )
    return lambda value: not isinstance(value, str)


@pytest.mark.parametrize("kind", KINDS)
@settings(SETTINGS, max_examples=60)
@given(data=st.data())
def test_a_field_of_the_wrong_json_type_is_refused_by_both_at_that_field(
    kind: str, data: st.DataObject
) -> None:
    record = data.draw(records(kind))
    name = data.draw(st.sampled_from(sorted(record)))
    record[name] = data.draw(json_values.filter(is_wrong_type(name)))

    result = validate_record(record, kind, 0)

    assert isinstance(result, RecordError)
    assert (result.code, result.path) == ("wrong_type", f"/records/0/{name}")
    assert_record_agreement(record, kind)


HEADER_VALUES = (
    json_values
    | TIMES
    | st.sampled_from([*KINDS, 10**9, 10**9 + 1, -1, 1.0, True])
    | characters(ID_CHARACTERS, 0, 70)
)


@pytest.mark.parametrize("kind", KINDS)
@settings(SETTINGS, max_examples=100)
@given(data=st.data())
def test_a_changed_header_is_refused_exactly_when_the_schema_refuses_it(
    kind: str, data: st.DataObject
) -> None:
    raw: Any = header(kind)
    how = data.draw(st.sampled_from(["none", "drop", "replace", "extra", "whole"]))
    name = data.draw(st.sampled_from(sorted(raw)))
    if how == "drop":
        del raw[name]
    elif how == "replace":
        raw[name] = data.draw(HEADER_VALUES)
    elif how == "extra":
        raw[data.draw(EXTRA_KEYS)] = data.draw(json_values)
    elif how == "whole":
        raw = data.draw(json_values)

    result = validate_header(raw, kind)

    ours = result if isinstance(result, list) else []
    assert_agreement({"header": raw, "records": []}, kind, ours)


@pytest.mark.parametrize("kind", KINDS)
@settings(SETTINGS, max_examples=60)
@given(data=st.data())
def test_a_whole_file_is_refused_exactly_when_the_schema_refuses_it(
    kind: str, data: st.DataObject
) -> None:
    some_records = data.draw(
        st.lists(records(kind) | mutated_records(kind), max_size=4)
    )
    document: Any = {"header": header(kind), "records": some_records}
    how = data.draw(st.sampled_from(["none", "drop", "extra", "records", "whole"]))
    if how == "drop":
        del document[data.draw(st.sampled_from(["header", "records"]))]
    elif how == "extra":
        document[data.draw(EXTRA_KEYS)] = data.draw(json_values)
    elif how == "records":
        document["records"] = data.draw(json_values.filter(lambda v: v != []))
    elif how == "whole":
        document = data.draw(json_values)

    assert_agreement(document, kind, validate_file(document, kind))


# --- the schemas themselves ------------------------------------------------------


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


def test_both_schemas_are_draft_2020_12_schemas_with_their_published_id() -> None:
    for kind in KINDS:
        schema = load_schema(kind)
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"] == (
            f"https://monetise.invalid/schemas/usage-{kind}.schema.json"
        )


def test_every_field_of_both_schemas_is_documented_for_partners() -> None:
    for kind in KINDS:
        schema = load_schema(kind)
        header_fields = schema["$defs"]["header"]["properties"]
        record_fields = schema["$defs"]["record"]["properties"]
        money = [
            field["properties"]
            for field in record_fields.values()
            if "properties" in field
        ]
        for fields in [header_fields, record_fields, *money]:
            for name, field in fields.items():
                assert field.get("title"), (kind, name)
                assert len(field.get("description", "")) > 20, (kind, name)
