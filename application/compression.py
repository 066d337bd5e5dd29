"""Big event states stored compressed with lz4.

The usage application's events carry whole chunks of records (a load) or
pages of corrections (a rerate), each record with its rating breakdown: about
a kilobyte a record, so a million-record load or rerate wrote a gigabyte into
the event store, and the worker read it back. They compress five to seven
times (measured: chunks of loaded records 5.3, of staged records 6.5, pages
of corrections 5.7). The mapper compresses them, through this compressor, on
both backends: SQLite compresses nothing itself, and PostgreSQL, which did
(TOAST), spent more doing it than the client does and then handled six times
the bytes (it now stores the states as given:
``store_states_as_given`` in :mod:`application.bulk_recorder`).

Small states (a batch received, a run completed, any event of customer
care) stay plain JSON, readable by eye in the database. A state is read as
compressed only if it begins with the lz4 frame's magic number, which JSON
text never does: stores written before this compressor, or with it switched
off, read back as they are.
"""

from __future__ import annotations

from typing import Final

import lz4.frame
from eventsourcing.persistence import Compressor

# The first bytes of every lz4 frame (0x184D2204, little endian).
LZ4_FRAME_MAGIC: Final = b"\x04\x22\x4d\x18"
# States of at least this many bytes are compressed: a chunk of records or a
# page of corrections, not the events of an aggregate's ordinary life.
BIG_STATE: Final = 4096
# Where the event store's settings name it (``COMPRESSOR_TOPIC``).
TOPIC: Final = "application.compression:BigStatesCompressor"


class BigStatesCompressor(Compressor):
    """lz4 frames for big states; small ones as they are."""

    def compress(self, data: bytes) -> bytes:
        if len(data) < BIG_STATE:
            return data
        # lz4's default, fast level: compressing costs less than writing and
        # reading back the bytes it saves (~1.1 GB/s for a page of corrections).
        return bytes(lz4.frame.compress(data, store_size=True))

    def decompress(self, data: bytes) -> bytes:
        if data[:4] != LZ4_FRAME_MAGIC:
            return data
        return bytes(lz4.frame.decompress(data))
