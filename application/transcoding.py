"""A faster transcoder for applications whose events carry bulk data.

Usage batch events hold thousands of records each, and the standard library's
``json`` spent more time encoding and decoding them than anything else the
loader does but validation. ``OrjsonTranscoder`` writes the same JSON as the
library's ``JSONTranscoder`` — transcoded values as ``{"_type_", "_data_"}``
objects — so either transcoder reads what the other wrote; it only does it with
``orjson``.

Two limits, both checked by the round-trip tests of every stored event class of
the applications that use it:

- ``orjson`` writes UUIDs itself, as plain strings; an event with a UUID field
  would read back a string. Encoding refuses such events instead, and falls
  back to the library's encoder for anything else ``orjson`` cannot write
  (integers beyond 64 bits).
- Transcoded values are revived in objects at any depth and in lists whose
  first element is an object or a list: bulk rows (lists of scalars) are not
  walked element by element, and not at all when the text has no transcoded
  value but the event's own fields.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS


class OrjsonTranscoder(JSONTranscoder):
    def encode(self, obj: Any) -> bytes:
        if _has_uuid(obj):
            raise TranscodingNotRegisteredError(
                "OrjsonTranscoder cannot keep UUIDs as such; use JSONTranscoder"
            )
        try:
            return orjson.dumps(obj, default=self._encode_obj, option=_OPTIONS)
        except orjson.JSONEncodeError:
            return super().encode(obj)

    def decode(self, data: bytes) -> Any:
        value = orjson.loads(data)
        if type(value) is dict:
            # An event's state. Its transcoded values are nearly always fields
            # of its own (id, timestamp): when the text names "_type_" no more
            # often than those, its bulk rows hold none and need no walk. (The
            # name cannot appear inside a string: its quotes would be escaped.)
            own = [key for key, item in value.items() if _transcoded(item)]
            if data.count(b'"_type_"') == len(own):
                for key in own:
                    value[key] = self._decode_obj(value[key])
                return value
        return self._revive(value)

    def _revive(self, value: Any) -> Any:
        if type(value) is dict:
            if _transcoded(value):
                return self._decode_obj(value)
            return {key: self._revive(item) for key, item in value.items()}
        if type(value) is list and value and type(value[0]) in (dict, list):
            return [self._revive(item) for item in value]
        return value


_CONTAINERS = (dict, list)
_MARKABLE = (UUID, dict, list, tuple)


def _transcoded(value: Any) -> bool:
    """Whether a value read is a transcoded one: ``{"_type_", "_data_"}``."""
    return (
        type(value) is dict
        and len(value) == 2
        and "_type_" in value
        and "_data_" in value
    )


def _has_uuid(obj: Any) -> bool:
    """Whether a UUID is among the top-level values or in their objects."""
    if isinstance(obj, UUID):
        return True
    if type(obj) is dict:
        return any(_has_uuid(value) for value in obj.values())
    return False


class CareTranscoder(OrjsonTranscoder):
    """``orjson`` for the events of customer care, which carry ids (UUIDs) and
    times at any depth: the workflow events and actioned items of an
    aggregate's history. Same JSON as the library's ``JSONTranscoder``, read
    back the same (its encoding is a tenth of the worker's time otherwise).

    UUIDs are marked as transcoded values before ``orjson`` sees them (it
    would write them as plain strings), and reading revives transcoded
    values in objects and lists at any depth, as ``JSONTranscoder`` does.
    Anything ``orjson`` cannot write goes through the library's encoder.
    """

    def encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(
                self._marked(obj), default=self._encode_obj, option=_OPTIONS
            )
        except orjson.JSONEncodeError:
            return JSONTranscoder.encode(self, obj)

    def decode(self, data: bytes) -> Any:
        return self._revive_all(orjson.loads(data))

    def _marked(self, value: Any) -> Any:
        """``value`` with each UUID in it as its transcoded object (the same
        containers when there is none)."""
        kind = type(value)
        if kind is UUID:
            return self._encode_obj(value)
        if kind is dict or kind is list or kind is tuple:
            # Copied only when an item is marked (a tuple becomes a list, as
            # JSON writes it anyway).
            marked = None
            pairs = value.items() if kind is dict else enumerate(value)
            for key, item in pairs:
                if type(item) not in _MARKABLE:  # most values: no call
                    continue
                new = self._marked(item)
                if new is not item:
                    if marked is None:
                        marked = dict(value) if kind is dict else list(value)
                    marked[key] = new
            return value if marked is None else marked
        return value

    def _revive_all(self, value: Any) -> Any:
        """Transcoded values revived at any depth, in place (the containers
        are the ones just read)."""
        kind = type(value)
        if kind is dict:
            for key, item in value.items():
                if type(item) in _CONTAINERS:
                    value[key] = self._revive_all(item)
            return self._decode_obj(value) if _transcoded(value) else value
        if kind is list:
            for index, item in enumerate(value):
                if type(item) in _CONTAINERS:
                    value[index] = self._revive_all(item)
        return value
