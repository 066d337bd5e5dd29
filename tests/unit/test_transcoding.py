"""The orjson transcoder of bulk events reads back what it wrote."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
)

from application.transcoding import OrjsonTranscoder

WHEN = datetime(2026, 11, 21, 9, 58, 1, tzinfo=UTC)


def transcoders() -> tuple[OrjsonTranscoder, JSONTranscoder]:
    fast, standard = OrjsonTranscoder(), JSONTranscoder()
    for transcoder in (fast, standard):
        transcoder.register(DatetimeAsISO())
        transcoder.register(DecimalAsStr())
    return fast, standard


def test_an_events_own_transcoded_fields_are_read_back() -> None:
    fast, _ = transcoders()
    state = {"timestamp": WHEN, "rows": [[0, "R1", "0.25", None]], "chunk": 3}

    assert fast.decode(fast.encode(state)) == state


def test_transcoded_values_inside_rows_and_objects_are_read_back() -> None:
    fast, standard = transcoders()
    state = {
        "timestamp": WHEN,
        "rows": [{"at": WHEN, "amount": Decimal("0.25")}],
        "totals": {"sub": [Decimal("1.5"), 2]},
    }

    assert fast.decode(fast.encode(state)) == state
    assert fast.decode(standard.encode(state)) == state


def test_a_string_that_reads_like_a_transcoded_name_stays_a_string() -> None:
    fast, _ = transcoders()
    state = {"timestamp": WHEN, "rows": [["_type_", '"_type_"', "_data_"]]}

    assert fast.decode(fast.encode(state)) == state
