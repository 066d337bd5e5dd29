"""Reading usage files as a stream: the records as json.loads gives them, with
their text, in chunks; and every way a file can be unreadable, refused."""

from __future__ import annotations

import io
import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.usage_records import UsualRatedRecord, plain_record
from ingest.reader import FileUnreadable, Record, UsageFileReader

SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
BOM = b"\xef\xbb\xbf"
HEADER = {
    "file_id": "OCS1-20261121-0001",
    "source": "OCS1",
    "created_at": "2026-11-21T10:00:00Z",
    "kind": "rated",
    "record_count": 2,
}


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


def usage_file(
    records: list[Any], header: Any = HEADER, indent: int | None = 2
) -> bytes:
    return json.dumps({"header": header, "records": records}, indent=indent).encode()


def read(
    data: bytes, *, block_size: int = 1 << 20, size: int = 1000
) -> tuple[list[Record], object]:
    """The records of ``data`` and its header."""
    reader = UsageFileReader(io.BytesIO(data), block_size=block_size)
    records = [record for chunk in reader.chunks(size) for record in chunk]
    assert reader.records_read == len(records)
    return records, reader.header


def values(data: bytes, **options: Any) -> list[object]:
    return [value for value, _ in read(data, **options)[0]]


def refusal(data: bytes, **options: Any) -> FileUnreadable:
    with pytest.raises(FileUnreadable) as caught:
        read(data, **options)
    return caught.value


def expected_code(data: bytes, cut: int) -> str:
    """How the reader refuses ``data[:cut]``, a proper prefix of a usage file:
    as empty while nothing but whitespace (after a whole byte order mark) is
    left, otherwise as truncated."""
    inside_bom = data.startswith(BOM) and 0 < cut < len(BOM)
    if inside_bom or data[:cut].removeprefix(BOM).strip(b" \t\n\r"):
        return "truncated"
    return "empty"


def same(left: object, right: object) -> bool:
    """Equal and of the same types throughout (``1``, ``1.0`` and ``True``
    are equal in Python, not here)."""
    return repr(left) == repr(right)


# What is read.


def test_the_records_are_read_in_order_with_their_exact_text() -> None:
    records = [voice_call(), voice_call(record_id="OCS1-000002", duration_seconds=7)]
    data = usage_file(records)
    read_records, header = read(data)
    assert [value for value, _ in read_records] == records
    text = data.decode()
    for value, raw in read_records:
        assert raw in text
        assert same(json.loads(raw), value)
    assert read_records[0][1].startswith('{\n      "record_id": "OCS1-000001"')
    assert header == HEADER


@pytest.mark.parametrize(
    ("count", "size", "lengths"),
    [(5, 2, [2, 2, 1]), (4, 2, [2, 2]), (5, 5, [5]), (3, 1, [1, 1, 1]), (2, 10, [2])],
)
def test_chunks_hold_size_records_and_the_last_the_rest(
    count: int, size: int, lengths: list[int]
) -> None:
    data = usage_file(list(range(count)))
    reader = UsageFileReader(io.BytesIO(data), block_size=3)
    chunks = list(reader.chunks(size))
    assert [len(chunk) for chunk in chunks] == lengths
    assert [value for chunk in chunks for value, _ in chunk] == list(range(count))
    assert reader.records_read == count


def test_a_file_without_records_yields_no_chunk() -> None:
    reader = UsageFileReader(io.BytesIO(usage_file([])))
    assert list(reader.chunks(10)) == []
    assert reader.header == HEADER
    assert reader.records_read == 0


def test_the_header_may_follow_the_records() -> None:
    data = b'{"records": [1, {"a": 2}], "header": {"kind": "rated"}}'
    records, header = read(data, block_size=4)
    assert records == [(1, "1"), ({"a": 2}, '{"a": 2}')]
    assert header == {"kind": "rated"}


def test_a_header_before_the_records_is_known_before_they_are_read() -> None:
    reader = UsageFileReader(io.BytesIO(usage_file([1, 2, 3])), block_size=8)
    chunks = reader.chunks(1)
    assert next(chunks) == [(1, "1")]
    assert reader.header == HEADER


def test_a_header_after_the_records_is_known_with_the_last_chunk() -> None:
    data = b'{"records": [1, 2], "header": 7}'
    reader = UsageFileReader(io.BytesIO(data))
    chunks = reader.chunks(2)
    with pytest.raises(RuntimeError, match="read them first"):
        _ = reader.header
    assert next(chunks) == [(1, "1"), (2, "2")]
    assert reader.header == 7


def test_a_leading_byte_order_mark_is_skipped() -> None:
    data = BOM + usage_file([voice_call()])
    assert values(data) == [voice_call()]
    assert values(data, block_size=1) == [voice_call()]


def test_whitespace_of_every_kind_is_allowed_between_tokens() -> None:
    data = b' \r\n\t{ "header"\t:\r\n{ } ,\n"records" : [ 1 ,\r\n\t2\t,"x" ]\r\n}\t\n '
    for block_size in (1, 2, 3, 1 << 20):
        records, header = read(data, block_size=block_size)
        assert records == [(1, "1"), (2, "2"), ("x", '"x"')]
        assert header == {}


def test_numbers_split_across_blocks_are_read_whole() -> None:
    data = b'{"header":0,"records":[125,1.5e3,-0.25,1E-7,true,false,null,"\\u00e9"]}'
    expected = json.loads(data)["records"]
    for block_size in range(1, 40):
        records, _ = read(data, block_size=block_size)
        assert same([value for value, _ in records], expected), block_size
        assert [raw for _, raw in records] == [
            "125",
            "1.5e3",
            "-0.25",
            "1E-7",
            "true",
            "false",
            "null",
            '"\\u00e9"',
        ]


def test_big_integers_stay_integers() -> None:
    data = usage_file([2**70, -(2**70), voice_call(duration_seconds=2**70), 1.0])
    read_values = values(data, block_size=5)
    assert same(read_values, json.loads(data)["records"])
    assert read_values[0] == 2**70 and type(read_values[0]) is int
    assert type(read_values[3]) is float


def test_non_ascii_text_is_read_in_any_block_size() -> None:
    records = [{"name": "Zoë €5 😀", "k": "\u2028"}, "日本語"]
    for ensure_ascii in (True, False):
        text = json.dumps(
            {"records": records, "header": "ü"}, ensure_ascii=ensure_ascii
        )
        for block_size in (1, 2, 3, 5, 1 << 20):
            read_records, header = read(text.encode(), block_size=block_size)
            assert [value for value, _ in read_records] == records
            assert header == "ü"


def test_a_record_larger_than_a_block_is_read() -> None:
    big = voice_call(record_id="X" * 100_000, note=["y" * 1000] * 50)
    data = usage_file([1, big, 2], indent=None)
    records, _ = read(data, block_size=64)
    assert [value for value, _ in records] == [1, big, 2]
    assert records[1][1] == json.dumps(big)


def test_a_record_may_be_any_json_value() -> None:
    data = b'{"header": null, "records": [1, "two", [3], null, false, {"x": {}}]}'
    assert values(data) == [1, "two", [3], None, False, {"x": {}}]


# Files that are not usage files at all.


@pytest.mark.parametrize("data", [b"", b" ", b"\n\r\t ", BOM, BOM + b"\n"])
def test_an_empty_file_is_refused(data: bytes) -> None:
    error = refusal(data)
    assert error.code == "empty"
    assert error.path == ""


def test_an_empty_file_and_one_of_whitespace_are_told_apart() -> None:
    assert refusal(b"").reason == "the file is empty"
    assert refusal(b"  \n").reason == "the file holds only whitespace"


@pytest.mark.parametrize(
    "data",
    [
        b"hello",
        b"{header: 1}",
        b"{'header': 1}",
        b'{"header" 1, "records": []}',
        b'{"header": 1 "records": []}',
        b'{"header": 1, "records": [1 2]}',
        b'{"header": 1, "records": [1,, 2]}',
        b'{"header": 1, "records": [01]}',
        b'{"header": 1, "records": [1.]}',
        b'{"header": 1, "records": ["tab\tinside"]}',
        b'{"header": 1, "records": ["\\x"]}',
        b'{"header": 1, "records": [tru]}',
        b'{"header": 1, "records": [1]]',
        b'{"header": 1,}',
    ],
)
def test_a_file_that_is_not_json_is_refused(data: bytes) -> None:
    for block_size in (1, 3, 1 << 20):
        error = refusal(data, block_size=block_size)
        assert error.code == "not_json", (data, block_size, error)
        assert error.reason.startswith("the file is not JSON: ")
        assert error.offset is not None


def test_a_syntax_error_is_placed_by_line_column_and_byte() -> None:
    data = b'{\n  "header": {},\n  "records": [\n    1,\n    2 3\n  ]\n}\n'
    for block_size in (1, 7, 1 << 20):
        error = refusal(data, block_size=block_size)
        assert error.code == "not_json"
        offset = data.index(b"3")
        assert error.offset == offset
        assert error.reason == (
            "the file is not JSON: expecting ',' delimiter "
            f"at line 5 column 7 (byte {offset})"
        )


def test_a_syntax_error_far_into_a_large_file_is_placed_exactly() -> None:
    records = [voice_call(record_id=f"R{number}") for number in range(2000)]
    text = usage_file(records).decode()
    cut = text.index('"R1500"')
    data = (text[:cut] + "R1500" + text[cut + 7 :]).encode()
    error = refusal(data, block_size=4096)
    assert error.code == "not_json"
    assert error.offset == cut
    line = data[:cut].count(b"\n") + 1
    column = cut - data[:cut].rindex(b"\n")
    assert f"at line {line} column {column} (byte {cut})" in error.reason
    assert error.path == "/records/1500"


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_refused(constant: bytes) -> None:
    data = b'{"header": 1, "records": [1, {"charge": %s}]}' % constant
    for block_size in (1, 1 << 20):
        error = refusal(data, block_size=block_size)
        assert error.code == "not_json"
        assert constant.decode() in error.reason
        assert error.path == "/records/1"


def test_nan_in_the_header_is_refused() -> None:
    error = refusal(b'{"header": {"x": NaN}, "records": []}')
    assert (error.code, error.path) == ("not_json", "/header")


def test_anything_after_the_top_level_object_is_refused() -> None:
    for trailer in (b"x", b"{}", b"\n,", b" 1", b"\x00"):
        data = usage_file([1, 2]) + trailer
        error = refusal(data, block_size=5)
        assert error.code == "not_json"
        assert error.offset == data.rindex(trailer.strip())
        assert "extra data after the top-level object" in error.reason


def test_trailing_whitespace_is_allowed() -> None:
    assert values(usage_file([1]) + b" \n\r\t\n") == [1]


def test_the_last_records_wait_until_the_rest_of_the_file_is_read() -> None:
    reader = UsageFileReader(io.BytesIO(usage_file([1, 2, 3]) + b"x"))
    chunks = reader.chunks(2)
    assert next(chunks) == [(1, "1"), (2, "2")]
    with pytest.raises(FileUnreadable):
        next(chunks)
    assert reader.records_read == 2


def test_a_file_cut_short_anywhere_is_refused_as_truncated() -> None:
    header = {"file_id": "F-é", "n": -12.5e-3, "ok": True, "none": None}
    records = [
        voice_call(),
        {"s": 'a\\"b\u00e9\u20ac\U0001f600', "u": "\\u00e9", "n": [1, -2, 3.25e10]},
        [],
        {},
        -0.5,
        "x",
        False,
    ]
    text = json.dumps({"header": header, "records": records}, indent=1)
    text = text.replace('"\\\\u00e9"', '"\\u00e9"')  # a real \u escape too
    data = BOM + text.encode()
    assert values(data) == json.loads(data.decode("utf-8-sig"))["records"]
    for block_size in (1, 7, 1 << 20):
        for cut in range(len(data)):
            error = refusal(data[:cut], block_size=block_size)
            assert error.code == expected_code(data, cut), (cut, block_size, error)
            assert error.offset is None or error.offset <= cut


def test_a_truncated_file_says_where_it_ends() -> None:
    data = usage_file([voice_call(), voice_call()])
    cut = data.index(b"record_id")
    error = refusal(data[:cut])
    assert error.code == "truncated"
    assert error.path == "/records/0"
    assert error.offset == cut
    error = refusal(data[: data.rindex(b"]")])
    assert (
        error.reason == "the file ends in the middle of the records array (truncated?)"
    )


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"[]", "an array"),
        (b'[{"header": 1, "records": []}]', "an array"),
        (b'"header"', "a string"),
        (b"12", "a number"),
        (b"true", "a boolean"),
        (b"null", "null"),
    ],
)
def test_a_file_that_is_not_an_object_is_refused(data: bytes, kind: str) -> None:
    error = refusal(data)
    assert (error.code, error.path) == ("wrong_type", "")
    assert error.reason == f"a usage file must be an object, not {kind}"


@pytest.mark.parametrize(
    ("records", "kind"),
    [(b"{}", "an object"), (b'"x"', "a string"), (b"null", "null"), (b"7", "a number")],
)
def test_records_that_are_not_an_array_are_refused(records: bytes, kind: str) -> None:
    data = b'{"header": {}, "records": %s}' % records
    error = refusal(data, block_size=2)
    assert (error.code, error.path) == ("wrong_type", "/records")
    assert error.reason == f"records must be an array, not {kind}"
    assert error.offset == data.index(records, 20)


def test_an_unknown_member_is_refused_by_name() -> None:
    data = b'{"header": {}, "footer": 1, "records": []}'
    error = refusal(data)
    assert (error.code, error.path) == ("unknown_field", "/footer")
    assert "'footer'" in error.reason
    assert error.offset == data.index(b'"footer"')


def test_an_unknown_member_name_is_escaped_in_the_path() -> None:
    error = refusal(b'{"a/b~c": 1}')
    assert (error.code, error.path) == ("unknown_field", "/a~1b~0c")


def test_a_file_without_a_header_is_refused() -> None:
    data = b'{"records": [1, 2]}'
    error = refusal(data)
    assert (error.code, error.path) == ("missing_field", "/header")
    reader = UsageFileReader(io.BytesIO(data))
    with pytest.raises(FileUnreadable):
        list(reader.chunks(10))
    with pytest.raises(FileUnreadable) as caught:
        _ = reader.header
    assert caught.value.code == "missing_field"


@pytest.mark.parametrize("data", [b'{"header": {}}', b"{}"])
def test_a_file_without_records_is_refused(data: bytes) -> None:
    error = refusal(data)
    assert error.code == "missing_field"
    assert error.path == ("/records" if data != b"{}" else "/header")


@pytest.mark.parametrize("name", ["header", "records"])
def test_a_member_given_twice_is_refused(name: str) -> None:
    data = b'{"header": {}, "records": [1], "%s": []}' % name.encode()
    error = refusal(data)
    assert (error.code, error.path) == ("duplicate_field", f"/{name}")
    assert error.offset == data.rindex(b'"%s"' % name.encode())


def test_a_member_name_is_read_as_json_reads_it() -> None:
    data = b'{"head\\u0065r": 1, "records": [], "header": 2}'
    assert refusal(data).code == "duplicate_field"


@pytest.mark.parametrize("block_size", [1, 2, 3, 4, 5, 1 << 20])
def test_invalid_utf8_is_refused_with_its_offset(block_size: int) -> None:
    prefix = '{"header": {"source": "Zoë"}, "records": [{"x": "é€'.encode()
    data = prefix + b'\xff"}]}'
    error = refusal(data, block_size=block_size)
    assert error.code == "invalid_utf8"
    assert error.offset == len(prefix)
    assert error.reason == (
        f"the file is not valid UTF-8: byte 0xff at offset {len(prefix)}"
    )
    assert error.path == "/records/0"


@pytest.mark.parametrize(
    "bad", [b"\xc3(", b"\xe2\x82(", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf8"]
)
def test_every_kind_of_invalid_utf8_is_refused(bad: bytes) -> None:
    prefix = b'{"header": 1, "records": ["\xc3\xa9'
    for block_size in (1, 2, 1 << 20):
        error = refusal(prefix + bad + b'"]}', block_size=block_size)
        assert (error.code, error.offset) == ("invalid_utf8", len(prefix))


def test_a_utf16_file_is_refused_as_not_utf8() -> None:
    error = refusal(json.dumps({"header": 1, "records": []}).encode("utf-16"))
    assert (error.code, error.offset) == ("invalid_utf8", 0)


def test_a_file_cut_inside_a_character_is_truncated() -> None:
    data = '{"header": 1, "records": ["€'.encode()[:-1]
    error = refusal(data, block_size=1)
    assert error.code == "truncated"
    assert error.offset == len(data) - 2


def test_too_deep_nesting_is_refused() -> None:
    data = b'{"header": 1, "records": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    error = refusal(data)
    assert (error.code, error.path) == ("too_deep", "/records/0")


def test_a_value_larger_than_the_limit_is_refused() -> None:
    data = usage_file(["x" * 5000], indent=None)
    reader = UsageFileReader(io.BytesIO(data), block_size=256, max_value_size=1000)
    with pytest.raises(FileUnreadable) as caught:
        list(reader.chunks(10))
    assert (caught.value.code, caught.value.path) == ("too_large", "/records/0")


def test_a_chunk_size_below_one_is_an_error() -> None:
    with pytest.raises(ValueError, match="size"):
        UsageFileReader(io.BytesIO(usage_file([]))).chunks(0)


def test_a_file_is_read_once() -> None:
    reader = UsageFileReader(io.BytesIO(usage_file([1])))
    list(reader.chunks(1))
    with pytest.raises(RuntimeError):
        reader.chunks(1)


# Properties.

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=16,
)


def dump(value: object, rng: random.Random, ascii_only: bool) -> str:
    """``value`` as JSON with random whitespace between its tokens."""

    def space() -> str:
        return "".join(rng.choice(" \t\n\r") for _ in range(rng.choice([0, 0, 1, 3])))

    if isinstance(value, dict):
        members = [
            space()
            + json.dumps(name, ensure_ascii=ascii_only)
            + space()
            + ":"
            + space()
            + dump(item, rng, ascii_only)
            + space()
            for name, item in value.items()
        ]
        return "{" + (",".join(members) or space()) + "}"
    if isinstance(value, list):
        items = [space() + dump(item, rng, ascii_only) + space() for item in value]
        return "[" + (",".join(items) or space()) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


@st.composite
def usage_files(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    """A usage file of arbitrary JSON records, and each record's text."""
    rng = draw(st.randoms(use_true_random=False))
    ascii_only = draw(st.booleans())
    records = [dump(value, rng, ascii_only) for value in draw(st.lists(json_values))]
    header = dump(draw(json_values), rng, ascii_only)

    def space() -> str:
        return "".join(rng.choice(" \t\n\r") for _ in range(rng.choice([0, 1, 2])))

    array = "[" + space() + (space() + "," + space()).join(records) + space() + "]"
    members = [
        space() + '"header"' + space() + ":" + space() + header + space(),
        space() + '"records"' + space() + ":" + space() + array + space(),
    ]
    if draw(st.booleans()):
        members.reverse()
    text = space() + "{" + ",".join(members) + "}" + space()
    data = text.encode()
    return (BOM + data if draw(st.booleans()) else data), records


@SETTINGS
@given(
    usage_files(),
    st.integers(min_value=1, max_value=64),
    st.integers(min_value=1, max_value=10),
)
def test_the_reader_reads_what_json_loads_reads(
    file: tuple[bytes, list[str]], block_size: int, size: int
) -> None:
    data, texts = file
    expected = json.loads(data.decode("utf-8-sig"))
    reader = UsageFileReader(io.BytesIO(data), block_size=block_size)
    chunks = list(reader.chunks(size))
    assert all(0 < len(chunk) <= size for chunk in chunks)
    assert all(len(chunk) == size for chunk in chunks[:-1])
    records = [record for chunk in chunks for record in chunk]
    assert same([value for value, _ in records], expected["records"])
    assert [raw for _, raw in records] == texts
    assert all(same(json.loads(raw), value) for value, raw in records)
    assert same(reader.header, expected["header"])
    assert reader.records_read == len(texts)


@SETTINGS
@given(usage_files(), st.integers(min_value=1, max_value=64), st.data())
def test_a_file_cut_short_is_never_read_as_fewer_records(
    file: tuple[bytes, list[str]], block_size: int, data: st.DataObject
) -> None:
    whole, _ = file
    end = whole.rindex(b"}")
    cut = data.draw(st.integers(min_value=0, max_value=end), label="cut")
    with pytest.raises(FileUnreadable) as caught:
        read(whole[:cut], block_size=block_size)
    assert caught.value.code == expected_code(whole, cut)


@st.composite
def files_of_objects(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    """A usage file whose records are mostly objects, as real files are (the
    loader reads runs of them in bulk), and each record's text."""
    rng = draw(st.randoms(use_true_random=False))
    ascii_only = draw(st.booleans())
    records = draw(
        st.lists(
            st.dictionaries(st.text(max_size=6), json_values, max_size=5) | json_values,
            max_size=40,
        )
    )
    texts = [dump(value, rng, ascii_only) for value in records]

    def space() -> str:
        return "".join(rng.choice(" \t\n\r") for _ in range(rng.choice([0, 1, 2])))

    array = "[" + space() + (space() + "," + space()).join(texts) + space() + "]"
    text = '{"header": {}, "records": ' + array + "}"
    return text.encode(), texts


@SETTINGS
@given(
    files_of_objects(),
    st.integers(min_value=16, max_value=4096),
    st.integers(min_value=1, max_value=10),
)
def test_records_read_in_bulk_are_what_json_loads_reads(
    file: tuple[bytes, list[str]], block_size: int, size: int
) -> None:
    data, texts = file
    expected = json.loads(data)["records"]

    records, _ = read(data, block_size=block_size, size=size)

    assert same([value for value, _ in records], expected)
    assert [raw for _, raw in records] == texts


@pytest.mark.parametrize(
    "odd",
    [
        "18446744073709551616",  # beyond 64 bits: an int all the same
        "-123456789012345678901234567890",
        "1E400",  # json reads inf; the validator refuses it later
        '"\\ud800"',  # a lone surrogate, which json reads
        '"\\ud83d\\ude00"',
        "-0",
        "1.0",
        '{"a": 1, "b": 2, "a": 3}',  # the last of repeated names, in the first's place
    ],
)
def test_values_that_bulk_parsers_read_otherwise_are_read_as_json_loads_does(
    odd: str,
) -> None:
    texts = [json.dumps(voice_call(record_id=f"R{n}")) for n in range(50)]
    texts[25] = texts[25][:-1] + ', "volume_bytes": ' + odd + "}"
    data = ('{"header": {}, "records": [' + ",\n".join(texts) + "]}").encode()

    records, _ = read(data, block_size=2048, size=7)

    assert same([value for value, _ in records], json.loads(data)["records"])
    assert [raw for _, raw in records] == texts


def test_too_deep_nesting_among_records_read_in_bulk_is_refused_at_its_record() -> None:
    texts = [json.dumps(voice_call(record_id=f"R{n}")) for n in range(8)]
    texts[3] = '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    data = ('{"header": {}, "records": [' + ",\n".join(texts) + "]}").encode()

    error = refusal(data)

    assert (error.code, error.path) == ("too_deep", "/records/3")


# --- reading typed --------------------------------------------------------------


def read_typed(data: bytes, block_size: int = 1 << 20) -> list[Record]:
    reader = UsageFileReader(
        io.BytesIO(data), block_size=block_size, shape=UsualRatedRecord
    )
    return [record for chunk in reader.chunks(1000) for record in chunk]


def test_records_that_fit_the_shape_are_read_as_it() -> None:
    calls = [voice_call(record_id=f"OCS1-{n:06d}") for n in range(500)]

    records = read_typed(usage_file(calls, indent=None))

    typed = [value for value, _ in records if type(value) is UsualRatedRecord]
    # The first record of a buffer is read by the careful loop, as plain JSON.
    assert len(typed) >= 490
    assert [plain_record(value) for value, _ in records] == calls
    assert [json.loads(text) for _, text in records] == calls


@given(
    unusual=st.sets(st.integers(0, 299), max_size=5),
    block_size=st.sampled_from([64, 1000, 1 << 20]),
)
@SETTINGS
def test_a_file_with_records_that_do_not_fit_the_shape_reads_as_plain_json(
    unusual: set[int], block_size: int
) -> None:
    calls: list[Any] = [voice_call(record_id=f"OCS1-{n:06d}") for n in range(300)]
    for n in unusual:  # null, a number for a text, a field of no record
        calls[n] = voice_call(**[{"msisdn": None}, {"mcc": 234}, {"x": 1}][n % 3])

    records = read_typed(usage_file(calls), block_size=block_size)

    assert [plain_record(value) for value, _ in records] == calls
    assert all(type(records[n][0]) is dict for n in unusual)
