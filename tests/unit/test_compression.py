"""Big event states compressed with lz4 (the SQLite event store's)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from application.compression import BIG_STATE, LZ4_FRAME_MAGIC, BigStatesCompressor

COMPRESSOR = BigStatesCompressor()


def correction_page(records: int) -> bytes:
    return json.dumps(
        {
            "corrections": [
                [f"R{n:06d}", "batch", "postpaid", "sub", "0.10", "0.12", "0.02"]
                for n in range(records)
            ]
        }
    ).encode()


def test_a_big_state_is_stored_as_an_lz4_frame_and_read_back_as_it_was() -> None:
    state = correction_page(2000)

    stored = COMPRESSOR.compress(state)

    assert stored.startswith(LZ4_FRAME_MAGIC)
    assert len(stored) * 4 < len(state)
    assert COMPRESSOR.decompress(stored) == state


def test_a_small_state_is_stored_as_it_is() -> None:
    state = correction_page(1)
    assert len(state) < BIG_STATE

    assert COMPRESSOR.compress(state) == state
    assert COMPRESSOR.decompress(state) == state


def test_a_state_stored_before_compression_reads_back_as_it_is() -> None:
    # Stores written before the compressor, however big their states.
    state = correction_page(2000)

    assert COMPRESSOR.decompress(state) == state


STATES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
)


@given(STATES, st.integers(min_value=0, max_value=3 * BIG_STATE))
def test_any_event_state_reads_back_as_it_was_stored(value: object, pad: int) -> None:
    # An event's state is JSON text of an object, below or above the size
    # from which it is compressed.
    state = json.dumps({"value": value, "pad": "x" * pad}).encode()

    stored = COMPRESSOR.compress(state)

    assert stored.startswith(LZ4_FRAME_MAGIC) == (len(state) >= BIG_STATE)
    assert COMPRESSOR.decompress(stored) == state
