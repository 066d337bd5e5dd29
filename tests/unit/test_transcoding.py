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


def care_transcoders() -> tuple[JSONTranscoder, JSONTranscoder]:
    from eventsourcing.persistence import UUIDAsHex

    from application.transcoding import CareTranscoder

    fast, standard = CareTranscoder(), JSONTranscoder()
    for transcoder in (fast, standard):
        transcoder.register(UUIDAsHex())
        transcoder.register(DatetimeAsISO())
        transcoder.register(DecimalAsStr())
    return fast, standard


def test_care_events_read_back_alike_through_either_transcoder() -> None:
    from tests.unit.test_stored_events import (
        account_with_every_kind_of_event,
        customer_with_every_kind_of_event,
        subscription_with_every_kind_of_event,
    )

    fast, standard = care_transcoders()
    histories = (
        subscription_with_every_kind_of_event(),
        account_with_every_kind_of_event(),
        customer_with_every_kind_of_event(),
    )
    events = [event for history in histories for event in history.collect_events()]
    assert len(events) > 40

    for event in events:
        state = dict(event.__dict__)
        expected = standard.decode(standard.encode(state))
        assert fast.decode(fast.encode(state)) == expected, type(event)
        assert standard.decode(fast.encode(state)) == expected, type(event)
        assert fast.decode(standard.encode(state)) == expected, type(event)


def test_ids_and_times_at_any_depth_read_back_as_such() -> None:
    from uuid import uuid4

    fast, standard = care_transcoders()
    first, second = uuid4(), uuid4()
    state = {
        "id": first,
        "items": [{"item_id": "I-1", "owner": second, "due_at": WHEN}],
        "ids": ["text", first, (second, "x")],  # mixed, and a tuple
        "nested": {"deeper": {"at": WHEN, "amount": Decimal("1.10")}},
        "big": 2**70,  # beyond orjson: the library's encoder writes it
    }

    read = fast.decode(fast.encode(state))

    assert read == standard.decode(standard.encode(state))
    assert read["ids"] == ["text", first, [second, "x"]]
    assert type(read["nested"]["deeper"]["amount"]) is Decimal
