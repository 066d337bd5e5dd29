"""Streaming reader of usage files in the generic usage format.

A usage file is one JSON object with exactly two members, ``header`` and
``records`` (an array), in either order::

    {"header": {...}, "records": [{...}, {...}, ...]}

Files run to millions of records, so :class:`UsageFileReader` reads them from a
binary stream in blocks, with memory bounded by the block size and the largest
single value, and hands out the records in chunks: each record's value exactly
as :func:`json.loads` would produce it, with the record's own JSON text. Given
a ``shape`` (a :class:`msgspec.Struct`), runs of records that all fit it are
read as instances of it instead, several times faster than as dicts; any run
with a record that does not fit is read as plain values.

The reader judges only whether the file is readable JSON of that shape; what a
record or the header holds is for :mod:`domain.usage_records` to judge. A file
that is not readable raises :class:`FileUnreadable` as soon as it proves so:
not UTF-8, not JSON (``NaN`` and ``Infinity`` included, which :mod:`json`
accepts by default), cut short, not an object, or an object with members other
than exactly one ``header`` and one ``records``. A leading UTF-8 byte order
mark is skipped.

How it works: blocks are decoded with an incremental UTF-8 decoder into a text
buffer, and each record is parsed in place with the C scanner of :mod:`json`.
A value that ends at, or a syntax error that lies near, the end of the buffer
may be an artefact of the block boundary (``12`` of ``125``, ``"abc`` of
``"abcd"``), so the reader reads on and parses again; only at the end of the
file is such a failure the file's. Consumed text is dropped at each refill.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Generator, Iterator
from json.scanner import make_scanner
from typing import Any, BinaryIO, Final, NoReturn

import msgspec

from domain.usage_records import json_type

__all__ = ["FileUnreadable", "Record", "UsageFileReader"]

Record = tuple[object, str]
"""A record as read: its value as :func:`json.loads` gives it, and its text."""

_MEMBERS: Final = ("header", "records")
# JSON whitespace, and the separator between two array elements.
_WHITESPACE: Final = re.compile(r"[ \t\n\r]*")
_SEPARATOR: Final = re.compile(r"[ \t\n\r]*,[ \t\n\r]*")
# How far before the end of the buffer a syntax error may be caused by the
# buffer ending there (the longest is ``-Infinit``, then ``\u123``).
_NEAR_END: Final = 32
# A value that ends this close to the end of the buffer is parsed again with
# more text: a number stops before ``.``, ``e`` or ``e+`` when no digit follows
# in the buffer, and the digit may be in the next block.
_MARGIN: Final = 3
# What is left of the file after a failure when the file was merely cut short:
# part of a literal or a number where a value was expected, part of the
# fraction or exponent of a number, or a \u escape (the scanner refuses one
# that ends the text, even whole).
_CUT_VALUE: Final = re.compile(r"-|t(?:ru?)?|f(?:a(?:ls?)?)?|n(?:ul?)?")
_CUT_NUMBER: Final = re.compile(r"\.|[eE][+-]?")
_CUT_ESCAPE: Final = re.compile(r"u[0-9a-fA-F]{0,4}")


class FileUnreadable(Exception):
    """The file is not a readable usage file at all (the batch fails).

    ``code`` is one of ``empty``, ``invalid_utf8``, ``not_json``,
    ``truncated``, ``wrong_type``, ``unknown_field``, ``missing_field``,
    ``duplicate_field``, ``too_deep``, ``too_large``; ``reason`` says what is
    wrong, for an operator; ``path`` is the JSON Pointer of where (``""`` for
    the whole file, ``/records/17`` for a record); ``offset`` is the byte
    offset in the file, when known.
    """

    def __init__(
        self, code: str, reason: str, path: str = "", offset: int | None = None
    ) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.path = path
        self.offset = offset

    def __repr__(self) -> str:
        return (
            f"FileUnreadable(code={self.code!r}, reason={self.reason!r}, "
            f"path={self.path!r}, offset={self.offset!r})"
        )


class _Constant(Exception):
    """``NaN``, ``Infinity`` or ``-Infinity``: accepted by :mod:`json`, not JSON."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _refuse_constant(name: str) -> NoReturn:
    raise _Constant(name)


# The C scanner of json (its stub types the decoder it takes wrongly).
_DECODER: Final[Any] = json.JSONDecoder(parse_constant=_refuse_constant)
_SCANNER: Final = make_scanner(_DECODER)
# Whatever the scanner raises, the fast path of the records loop hands the
# record to the careful path, which parses it again and says why.
_SCAN_ERRORS: Final = (StopIteration, ValueError, RecursionError, _Constant)
# Reading records in bulk: the values and the texts of the elements of an
# array, and how many closing braces to try back from the end of the buffer
# for one that ends a record.
_VALUES: Final = msgspec.json.Decoder(list[Any])
# ... and of records of a known shape, read typed when they all fit it.
_TYPED: dict[type, msgspec.json.Decoder[list[Any]]] = {}
_RAW_LIST: Final = msgspec.json.Decoder(list[msgspec.Raw])
_BULK_TRIES: Final = 64


class UsageFileReader:
    """Reads a usage file from ``binary`` in blocks of ``block_size`` bytes.

    Iterate over :meth:`chunks` to read the records; :attr:`header` is the
    header's value once it has been read (at the latest when :meth:`chunks`
    is exhausted, as the header may follow the records). A single value (a
    record or the header) longer than ``max_value_size`` characters is refused
    (``too_large``), which bounds the memory the reader needs. ``shape``: see
    the module's description.
    """

    def __init__(
        self,
        binary: BinaryIO,
        *,
        block_size: int = 1 << 20,
        max_value_size: int = 4 << 20,
        shape: type | None = None,
    ) -> None:
        if block_size < 1:
            raise ValueError(f"block_size must be at least 1, not {block_size}")
        if max_value_size < 1:
            raise ValueError(f"max_value_size must be at least 1, not {max_value_size}")
        self._binary = binary
        self._typed: msgspec.json.Decoder[list[Any]] | None = None
        if shape is not None:
            self._typed = _TYPED.get(shape)
            if self._typed is None:
                self._typed = _TYPED[shape] = msgspec.json.Decoder(list[shape])  # type: ignore[valid-type]
        self._block_size = block_size
        self._max_value_size = max_value_size
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self._buf = ""
        self._eof = False
        self._bytes_read = 0  # bytes handed to the decoder
        self._broken: FileUnreadable | None = None  # bad UTF-8 after the buffer
        self._broken_at_end = False  # ... a character cut at the end of the file
        # Where the buffer starts in the file: byte offset, lines before it,
        # and characters between the last newline and it.
        self._base_byte = 0
        self._base_line = 0
        self._base_column = 0
        self._started = False
        self._finished = False
        self._bulk = True  # whether _bulk_read may find records to read
        self._failure: FileUnreadable | None = None
        self._header: object = None
        self._has_header = False
        self.records_read = 0
        """How many records the reader has handed out (in yielded chunks)."""

    @property
    def header(self) -> object:
        """The value of the file's ``header`` member.

        Raises :class:`FileUnreadable` (``missing_field``, ``/header``) when
        the file has none, or the failure that stopped :meth:`chunks` before
        the header was read; :class:`RuntimeError` while the header has not
        been read yet.
        """
        if self._has_header:
            return self._header
        if self._failure is not None:
            raise self._failure
        if self._finished:
            raise self._missing("header")
        raise RuntimeError("the header follows the records: read them first")

    def chunks(self, size: int) -> Iterator[list[Record]]:
        """Yield the records in order, ``size`` at a time (the last chunk may be
        shorter, never empty), each as ``(value, raw_text)``: the value as
        :func:`json.loads` would produce it and the record's exact JSON text.
        Raises :class:`FileUnreadable` as soon as the file proves unreadable.

        The rest of the file is checked before the last chunk is yielded, so
        by then :attr:`header` is known.
        """
        if size < 1:
            raise ValueError(f"size must be at least 1, not {size}")
        if self._started:
            raise RuntimeError("a usage file can be read only once")
        self._started = True
        return self._read(size)

    # The structure of the file.

    def _read(self, size: int) -> Iterator[list[Record]]:
        try:
            leftover = yield from self._document(size)
        except FileUnreadable as failure:
            self._failure = failure
            raise
        self.records_read += len(leftover)
        self._finished = True
        if leftover:
            yield leftover

    def _document(self, size: int) -> Generator[list[Record], None, list[Record]]:
        self._fill(0, 1, "")
        start = 1 if self._buf.startswith("\ufeff") else 0
        pos = self._skip(start, "")
        if pos == len(self._buf):
            state = (
                "is empty" if self._bytes_read == start * 3 else "holds only whitespace"
            )
            raise FileUnreadable("empty", f"the file {state}", "", None)
        if self._buf[pos] != "{":
            self._not_container(pos, "", "{")
        pos += 1
        seen: set[str] = set()
        leftover: list[Record] = []
        while True:
            pos = self._skip(pos, "")
            buf = self._buf
            if pos == len(buf):
                raise self._truncated("the top-level object", "")
            if buf[pos] == "}" and not seen:
                pos += 1
                break
            if buf[pos] != '"':
                message = "expecting property name enclosed in double quotes"
                self._not_json(message, pos, "")
            name, key_at, pos = self._value(pos, "")
            assert isinstance(name, str)
            path = "/" + name.replace("~", "~0").replace("/", "~1")
            if name not in _MEMBERS:
                offset = self._where(key_at)[2]
                reason = (
                    f"{_shown(name)} is not a member of a usage file, "
                    "which has only header and records"
                )
                raise FileUnreadable("unknown_field", reason, path, offset)
            if name in seen:
                offset = self._where(key_at)[2]
                reason = f"the file gives {name} twice"
                raise FileUnreadable("duplicate_field", reason, path, offset)
            seen.add(name)
            pos = self._expect(pos, ":", "':' delimiter", "the top-level object")
            pos = self._skip(pos + 1, path)
            if pos == len(self._buf):
                raise self._truncated(f"the {name} member", path)
            if name == "header":
                self._header, _, pos = self._value(pos, path)
                self._has_header = True
            else:
                if self._buf[pos] != "[":
                    self._not_container(pos, path, "[")
                pos, leftover = yield from self._records(pos + 1, size)
            pos = self._expect(pos, ",}", "',' delimiter", "the top-level object")
            pos += 1
            if self._buf[pos - 1] == "}":
                break
        pos = self._skip(pos, "")
        if pos < len(self._buf):
            line, column, offset = self._where(pos)
            reason = (
                "the file is not JSON: extra data after the top-level object "
                f"at line {line} column {column} (byte {offset})"
            )
            raise FileUnreadable("not_json", reason, "", offset)
        for name in _MEMBERS:
            if name not in seen:
                raise self._missing(name)
        return leftover

    def _records(
        self, pos: int, size: int
    ) -> Generator[list[Record], None, tuple[int, list[Record]]]:
        """The records array from just after its ``[``: yields the full chunks,
        returns the position after its ``]`` and the last chunk, not full."""
        pos = self._skip(pos, "/records")
        buf = self._buf
        if pos == len(buf):
            raise self._truncated("the records array", "/records")
        if buf[pos] == "]":
            return pos + 1, []
        done = self.records_read
        scan = _SCANNER
        separator = _SEPARATOR.match
        limit = len(buf) if self._eof else len(buf) - _MARGIN
        ahead: list[Record] = []  # read in bulk, not yet in a chunk
        while True:
            chunk: list[Record] = []
            append = chunk.append
            while len(chunk) < size:
                if ahead or self._bulk:
                    if not ahead:
                        ahead, pos = self._bulk_read(buf, pos, limit)
                    if ahead:
                        # Each was followed by a comma: none is the last.
                        wanted = size - len(chunk)
                        chunk += ahead[:wanted]
                        del ahead[:wanted]
                        continue
                # The hot path: a value well inside the buffer, then a comma.
                try:
                    value, end = scan(buf, pos)
                except _SCAN_ERRORS:
                    end = -1
                if end < 0 or end > limit:
                    path = f"/records/{done + len(chunk)}"
                    value, pos, end = self._value(pos, path)
                    buf = self._buf
                    limit = len(buf) if self._eof else len(buf) - _MARGIN
                append((value, buf[pos:end]))
                match = separator(buf, end)
                if match is not None:
                    pos = match.end()
                    continue
                pos = self._expect(end, ",]", "',' delimiter", "the records array")
                buf = self._buf
                limit = len(buf) if self._eof else len(buf) - _MARGIN
                if buf[pos] == "]":
                    # The last chunk, even if full, waits for the rest of the file.
                    return pos + 1, chunk
                pos += 1
            # A comma follows: this is not the last chunk.
            done += size
            self.records_read = done
            yield chunk

    def _bulk_read(self, buf: str, pos: int, limit: int) -> tuple[list[Record], int]:
        """The records from ``pos`` to the last one in the buffer that a comma
        and another object follow, and where the next one starts; or none.

        The fast path of the records loop: ``msgspec`` parses many records at
        once, their values and their texts, instead of the scanner each. It
        reads JSON exactly as :mod:`json` does (integers of any size, the
        last of repeated names) but refuses what json takes and JSON does not
        allow (lone surrogates, numbers beyond a float): any refusal leaves
        the records to the careful loop until the buffer is next filled.
        """
        self._bulk = False  # again after the next fill
        if not buf.startswith("{", pos):
            return [], pos
        end = buf.rfind("}", pos, limit)
        after = -1
        for _ in range(_BULK_TRIES):
            if end < 0:
                return [], pos
            match = _SEPARATOR.match(buf, end + 1)
            if match is not None and buf.startswith("{", match.end()):
                after = match.end()
                break
            end = buf.rfind("}", pos, end)
        if after < 0 or after >= limit:
            return [], pos
        text = "[" + buf[pos : end + 1] + "]"
        try:
            values = self._typed_values(text)
            if values is None:
                values = _VALUES.decode(text)
            texts = _RAW_LIST.decode(text)
        except (msgspec.DecodeError, RecursionError):
            return [], pos
        if len(values) != len(texts):  # cannot be: both read the same array
            return [], pos
        self._bulk = True
        return [
            (value, bytes(raw).decode("utf-8"))
            for value, raw in zip(values, texts, strict=True)
        ], after

    def _typed_values(self, text: str) -> list[Any] | None:
        """The records of the array ``text`` as the reader's ``shape``, or
        None where there is none or a record does not fit it."""
        if self._typed is None:
            return None
        try:
            return self._typed.decode(text)
        except msgspec.DecodeError:  # a ValidationError, or not JSON (which
            return None  # the plain decoder finds again and says so)

    # Values and punctuation.

    def _value(self, pos: int, path: str) -> tuple[object, int, int]:
        """The JSON value at ``pos`` (after any whitespace) and where its text
        starts and ends, reading on while the end of the buffer may cut it."""
        pos = self._skip(pos, path)
        at_least = 1
        while True:
            buf = self._buf
            if pos == len(buf):
                raise self._truncated(_describe(path), path)
            message = "Expecting value"
            try:
                value, end = _SCANNER(buf, pos)
            except StopIteration as stop:
                failed_at = int(stop.value)
            except json.JSONDecodeError as error:
                failed_at, message = error.pos, error.msg
            except _Constant as constant:
                line, column, offset = self._where(pos)
                reason = (
                    f"the file is not JSON: {constant.name} is not a JSON number, "
                    f"in the value starting at line {line} column {column} "
                    f"(byte {offset})"
                )
                raise FileUnreadable("not_json", reason, path, offset) from None
            except RecursionError:
                offset = self._where(pos)[2]
                reason = f"the value at {path or '/'} is nested too deeply to read"
                raise FileUnreadable("too_deep", reason, path, offset) from None
            except ValueError as error:  # an integer of more than 4300 digits
                offset = self._where(pos)[2]
                reason = f"a number in the value at {path or '/'} is too large: {error}"
                raise FileUnreadable("too_large", reason, path, offset) from None
            else:
                if self._eof or end <= len(buf) - _MARGIN:
                    return value, pos, end
                failed_at = len(buf)
            unterminated = message.startswith("Unterminated string")
            if self._eof:
                if unterminated or _cut(buf, failed_at, message):
                    raise self._truncated(_describe(path), path)
                self._not_json(message, failed_at, path)
            if failed_at < len(buf) - _NEAR_END and not unterminated:
                self._not_json(message, failed_at, path)
            if len(buf) - pos > self._max_value_size:
                offset = self._where(pos)[2]
                reason = (
                    f"the value at {path or '/'} is longer than "
                    f"{self._max_value_size:,} characters"
                )
                raise FileUnreadable("too_large", reason, path, offset)
            pos -= self._fill(pos, at_least, path)
            # Read geometrically more, so that a value of n characters is
            # parsed O(log n) times, not O(n / block_size) times.
            at_least = min(len(self._buf) - pos, self._max_value_size)

    def _expect(self, pos: int, allowed: str, expected: str, inside: str) -> int:
        """The position of one of the ``allowed`` characters, after whitespace."""
        path = "/records" if inside == "the records array" else ""
        pos = self._skip(pos, path)
        buf = self._buf
        if pos == len(buf):
            raise self._truncated(inside, path)
        if buf[pos] not in allowed:
            if self._eof and _cut(buf, pos, "Expecting " + expected):
                raise self._truncated(inside, path)
            self._not_json("expecting " + expected, pos, path)
        return pos

    def _skip(self, pos: int, path: str) -> int:
        """The position after the whitespace at ``pos``: the end of the buffer
        only at the end of the file."""
        while True:
            pos = _WHITESPACE.match(self._buf, pos).end()  # type: ignore[union-attr]
            if pos < len(self._buf) or self._eof:
                return pos
            pos -= self._fill(pos, 1, path)

    def _not_container(self, pos: int, path: str, opening: str) -> NoReturn:
        """Refuse the value at ``pos``, which should have been an object (the
        file) or an array (its records)."""
        whole = "a usage file" if opening == "{" else "records"
        wanted = "an object" if opening == "{" else "an array"
        first = self._buf[pos]
        if first in "[{":
            # Not read through: it may be as large as the file.
            kind = "an array" if first == "[" else "an object"
        else:
            value, pos, _ = self._value(pos, path)
            kind = json_type(value)
        offset = self._where(pos)[2]
        reason = f"{whole} must be {wanted}, not {kind}"
        raise FileUnreadable("wrong_type", reason, path, offset)

    # Reading and decoding.

    def _fill(self, keep: int, at_least: int, path: str) -> int:
        """Drop the text before ``keep`` and read on until at least
        ``at_least`` more characters or the end of the file; the number of
        characters dropped."""
        if self._broken is not None:
            self._broken.path = path
            if self._broken_at_end:
                self._broken.code = "truncated"
            raise self._broken
        buf = self._buf
        if keep:
            if buf.isascii():
                self._base_byte += keep
            else:
                self._base_byte += len(buf[:keep].encode("utf-8"))
            newline = buf.rfind("\n", 0, keep)
            if newline < 0:
                self._base_column += keep
            else:
                self._base_line += buf.count("\n", 0, keep)
                self._base_column = keep - newline - 1
        self._bulk = True  # new text to read in bulk
        parts = [buf[keep:]]
        added = 0
        read = self._binary.read
        decode = self._decoder.decode
        while added < at_least and not self._eof and self._broken is None:
            data = read(self._block_size)
            try:
                text = decode(data, not data)
            except UnicodeDecodeError as error:
                text = self._undecodable(error, len(data))
            if not data:
                self._eof = self._broken is None
            self._bytes_read += len(data)
            parts.append(text)
            added += len(text)
        self._buf = "".join(parts)
        return keep

    def _undecodable(self, error: UnicodeDecodeError, size: int) -> str:
        """Note the bad UTF-8 for when the reader gets to it; the valid text
        before it."""
        data = error.object
        # The decoder had kept the start of a character from the last block.
        offset = self._bytes_read + size - len(data) + error.start
        bad = data[error.start]
        if error.reason == "unexpected end of data" and not size:
            self._broken_at_end = True
            reason = (
                f"the file ends in the middle of a UTF-8 character "
                f"(byte 0x{bad:02x} at offset {offset}; truncated?)"
            )
        else:
            reason = f"the file is not valid UTF-8: byte 0x{bad:02x} at offset {offset}"
        self._broken = FileUnreadable("invalid_utf8", reason, "", offset)
        return bytes(data[: error.start]).decode("utf-8")

    # Errors.

    def _where(self, pos: int) -> tuple[int, int, int]:
        """The line, column (both from 1) and byte offset of ``pos``."""
        buf = self._buf
        newline = buf.rfind("\n", 0, pos)
        if newline < 0:
            line, column = self._base_line + 1, self._base_column + pos + 1
        else:
            line, column = self._base_line + buf.count("\n", 0, pos) + 1, pos - newline
        if buf.isascii():
            offset = self._base_byte + pos
        else:
            offset = self._base_byte + len(buf[:pos].encode("utf-8"))
        return line, column, offset

    def _not_json(self, message: str, pos: int, path: str) -> NoReturn:
        """Refuse the file for a syntax error (as :mod:`json` words it) at
        ``pos``, within the value at ``path``."""
        line, column, offset = self._where(pos)
        message = message[:1].lower() + message[1:]
        reason = (
            f"the file is not JSON: {message} "
            f"at line {line} column {column} (byte {offset})"
        )
        raise FileUnreadable("not_json", reason, path, offset)

    def _truncated(self, inside: str, path: str) -> FileUnreadable:
        reason = f"the file ends in the middle of {inside} (truncated?)"
        return FileUnreadable("truncated", reason, path, self._bytes_read)

    @staticmethod
    def _missing(name: str) -> FileUnreadable:
        reason = f"the file has no {name}: a usage file needs header and records"
        return FileUnreadable("missing_field", reason, "/" + name, None)


def _cut(buf: str, pos: int, message: str) -> bool:
    """Whether the scanner's failure at ``pos``, at the end of the file, is
    the file being cut short rather than a syntax error."""
    if pos >= len(buf):
        return True
    if message == "Expecting value":
        return _CUT_VALUE.fullmatch(buf, pos) is not None
    if message == "Expecting ',' delimiter":
        return (
            pos > 0
            and buf[pos - 1] in "0123456789"
            and _CUT_NUMBER.fullmatch(buf, pos) is not None
        )
    if message == "Invalid \\uXXXX escape":
        return _CUT_ESCAPE.fullmatch(buf, pos) is not None
    return False


def _describe(path: str) -> str:
    if path.startswith("/records/"):
        return f"the record at {path}"
    if path == "/header":
        return "the header"
    return "the top-level object" if not path else f"the {path[1:]} member"


def _shown(value: str) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "...'"
