"""The envelope of encrypted inbound files (``*.enc``), version 1.

A sender needs only the recipient's X25519 public key. The plaintext is sealed
with AES-256-GCM in chunks (the STREAM construction), so files of any size are
written and read in constant memory, and every change to the file is detected:
an edited header, an edited, dropped, reordered or appended chunk, and a file
cut short, even exactly at a chunk boundary.

The envelope gives confidentiality and integrity, not proof of the sender:
anyone who holds the public key can make a valid file. Who sent a file is
established by the channel that delivered it (an SFTP account, an API key).

Specification
=============

All integers are unsigned and big-endian. ``‖`` is concatenation.

File layout::

    offset  size  field
    0       8     magic: the ASCII bytes "MONETENC" (4D 4F 4E 45 54 45 4E 43)
    8       1     version: 0x01
    9       4     header length H, 1 ≤ H ≤ 65536
    13      H     header: a JSON object, UTF-8
    13+H    ...   chunks, one or more, each:
                      4 bytes  ciphertext length L, 16 ≤ L ≤ chunk_size + 16
                      L bytes  AES-256-GCM ciphertext ‖ 16-byte tag

The header object has these members (readers ignore members they do not know;
writers emit them with sorted keys and no whitespace, though readers must not
rely on that):

``algorithm``
    ``"X25519-HKDF-SHA256/AES-256-GCM"``.
``key_id``
    The id of the recipient's key pair, matching ``[A-Za-z0-9._-]{1,64}``; the
    recipient uses it to pick the private key from its key ring.
``ephemeral_public_key``
    The sender's fresh X25519 public key for this file: 32 raw bytes in
    standard base64 with padding (RFC 4648 section 4).
``chunk_size``
    Plaintext bytes per chunk, 1 ≤ chunk_size ≤ 67108864 (64 MiB); the
    default is 1048576 (1 MiB).
``nonce_prefix``
    7 random bytes, standard base64 with padding.

``HEADER`` below means bytes 0 to 13+H of the file exactly as they were
written (magic, version, length and JSON): a reader authenticates those bytes,
never a re-encoding of the JSON.

Content key. The sender makes a fresh X25519 key pair per file; both sides
compute the 32-byte shared secret ``Z = X25519(ephemeral, recipient)`` and::

    content_key = HKDF-SHA256(
        IKM  = Z,
        salt = nonce_prefix,
        info = "monetise envelope v1" ‖ 0x00 ‖ key_id (ASCII) ‖ 0x00
               ‖ ephemeral_public_key (32 raw bytes)
               ‖ recipient_public_key (32 raw bytes),
        L    = 32)

A reader refuses an all-zero ``Z`` (an ephemeral key of low order).

Chunks. The plaintext is cut into chunks of ``chunk_size`` bytes; the last one
holds the rest, 0 to ``chunk_size`` bytes. There is always at least one chunk:
an empty plaintext is one empty last chunk. Writers fill every chunk but the
last; readers accept any plaintext length from 0 to ``chunk_size`` in any
chunk. Chunk ``i`` (counting from 0, at most 2³² chunks) is sealed as::

    nonce_i      = nonce_prefix (7 bytes) ‖ uint32(i) ‖ last
    chunk_i      = AES-256-GCM(content_key, nonce_i, plaintext_i,
                               associated data = HEADER)

where ``last`` is one byte, 0x01 for the last chunk and 0x00 for every other.
The last chunk ends the file: nothing may follow it.

Reading. Decrypt the chunks in order; a chunk is the last one when the file
ends right after it. Plaintext of a chunk may be passed on as soon as that
chunk is authenticated, but the file as a whole is valid only once the last
chunk has been authenticated with ``last`` = 0x01 and the file ends there: a
consumer must discard what it received from a file that then fails.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

MAGIC = b"MONETENC"
VERSION = 1
ALGORITHM = "X25519-HKDF-SHA256/AES-256-GCM"
DEFAULT_CHUNK_SIZE = 1024 * 1024
MAX_CHUNK_SIZE = 64 * 1024 * 1024
MAX_HEADER_LENGTH = 64 * 1024
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")

NONCE_PREFIX_LENGTH = 7
TAG_LENGTH = 16
MAX_CHUNKS = 2**32
_KDF_LABEL = b"monetise envelope v1"
_PREAMBLE = struct.Struct(">8sBI")  # magic, version, header length
_LENGTH = struct.Struct(">I")
_T = TypeVar("_T")


class EnvelopeError(ValueError):
    """A file that cannot be decrypted, with the reason in words for operators."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class EnvelopeHeader:
    """The header of an encrypted file, read before any key is needed."""

    key_id: str
    algorithm: str
    ephemeral_public_key: bytes
    chunk_size: int
    nonce_prefix: bytes
    encoded: bytes
    """The header exactly as in the file (magic to JSON): every chunk's AAD."""


def is_envelope(first_bytes: bytes) -> bool:
    """Whether a file that starts with these bytes is an encrypted file.

    Eight bytes (the length of the magic) are enough to tell.
    """
    return first_bytes.startswith(MAGIC)


def is_valid_key_id(key_id: str) -> bool:
    """Whether a key id may be used: 1 to 64 of ``A-Z a-z 0-9 . _ -``."""
    return KEY_ID_PATTERN.fullmatch(key_id) is not None


def encrypt_stream(
    reader: BinaryIO,
    writer: BinaryIO,
    public_key: X25519PublicKey,
    key_id: str,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> None:
    """Encrypt everything ``reader`` yields for the holder of ``public_key``.

    Writes the envelope to ``writer`` chunk by chunk, holding at most two
    chunks of plaintext in memory.
    """
    if not is_valid_key_id(key_id):
        raise ValueError(f"{key_id!r} is not a key id: use 1-64 of A-Z a-z 0-9 . _ -")
    if not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise ValueError(f"the chunk size must be 1 to {MAX_CHUNK_SIZE} bytes")
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = _raw(ephemeral.public_key())
    nonce_prefix = os.urandom(NONCE_PREFIX_LENGTH)
    fields = {
        "algorithm": ALGORITHM,
        "chunk_size": chunk_size,
        "ephemeral_public_key": base64.b64encode(ephemeral_public).decode("ascii"),
        "key_id": key_id,
        "nonce_prefix": base64.b64encode(nonce_prefix).decode("ascii"),
    }
    body = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    encoded = _PREAMBLE.pack(MAGIC, VERSION, len(body)) + body
    writer.write(encoded)

    content_key = _content_key(
        ephemeral.exchange(public_key),
        nonce_prefix,
        key_id,
        ephemeral_public,
        _raw(public_key),
    )
    aead = AESGCM(content_key)
    current = _read_up_to(reader, chunk_size)
    index = 0
    while True:
        # A short chunk can only be the last; a full one is the last when
        # nothing follows it, which only reading ahead can tell.
        following = b""
        if len(current) == chunk_size:
            following = _read_up_to(reader, chunk_size)
        last = not following
        if index >= MAX_CHUNKS:
            raise ValueError("the plaintext has too many chunks for this chunk size")
        sealed = aead.encrypt(_nonce(nonce_prefix, index, last), current, encoded)
        writer.write(_LENGTH.pack(len(sealed)))
        writer.write(sealed)
        if last:
            return
        current = following
        index += 1


def read_header(reader: BinaryIO) -> EnvelopeHeader:
    """Read and check the header, leaving ``reader`` at the first chunk."""
    preamble = _read_up_to(reader, _PREAMBLE.size)
    if not is_envelope(preamble):
        raise EnvelopeError("not an encrypted monetise file")
    if len(preamble) < _PREAMBLE.size:
        raise EnvelopeError("the file is truncated: its header is incomplete")
    _, version, length = _PREAMBLE.unpack(preamble)
    if version != VERSION:
        raise EnvelopeError(
            f"unsupported envelope version {version} (this monetise reads {VERSION})"
        )
    if not 1 <= length <= MAX_HEADER_LENGTH:
        raise EnvelopeError(
            f"the header is malformed: its length {length} is not 1 to "
            f"{MAX_HEADER_LENGTH} bytes"
        )
    body = _read_up_to(reader, length)
    if len(body) < length:
        raise EnvelopeError("the file is truncated: its header is incomplete")
    return _parse_header(body, preamble + body)


def decrypt_stream(
    reader: BinaryIO, private_key: X25519PrivateKey, header: EnvelopeHeader
) -> Iterator[bytes]:
    """Yield the plaintext chunk by chunk; ``reader`` is at the first chunk.

    Each chunk is yielded once it is authenticated. Raises ``EnvelopeError``
    when the file turns out altered, truncated or sealed for another key; what
    was yielded before then must be discarded.
    """
    try:
        ephemeral = X25519PublicKey.from_public_bytes(header.ephemeral_public_key)
        shared = private_key.exchange(ephemeral)
    except ValueError:
        raise EnvelopeError(
            "the header is malformed: its ephemeral public key is not usable"
        ) from None
    content_key = _content_key(
        shared,
        header.nonce_prefix,
        header.key_id,
        header.ephemeral_public_key,
        _raw(private_key.public_key()),
    )
    aead = AESGCM(content_key)
    prefix = _read_up_to(reader, _LENGTH.size)
    if not prefix:
        raise EnvelopeError("the file is truncated: its last chunk is missing")
    index = 0
    while True:
        sealed = _read_sealed(reader, header, index, prefix)
        # Whether this chunk is the last depends only on whether anything
        # follows; the next chunk's framing is judged once this one is genuine,
        # so that garbage appended to a whole file is named as such.
        prefix = _read_up_to(reader, _LENGTH.size)
        at_end = not prefix
        plaintext = _open(aead, header, index, sealed, last=at_end)
        if plaintext is None:
            raise _explain_failure(aead, header, index, sealed, at_end)
        yield plaintext
        if at_end:
            return
        index += 1


def _open(
    aead: AESGCM, header: EnvelopeHeader, index: int, sealed: bytes, *, last: bool
) -> bytes | None:
    try:
        return aead.decrypt(
            _nonce(header.nonce_prefix, index, last), sealed, header.encoded
        )
    except InvalidTag:
        return None


def _explain_failure(
    aead: AESGCM, header: EnvelopeHeader, index: int, sealed: bytes, at_end: bool
) -> EnvelopeError:
    # The chunk failed as what its place in the file says it is. If it opens as
    # the other kind, the chunks are genuine and the file's end was moved.
    if _open(aead, header, index, sealed, last=not at_end) is not None:
        if at_end:
            return EnvelopeError("the file is truncated: its last chunk is missing")
        return EnvelopeError(
            f"the file has unexpected data after its last chunk (chunk {index})"
        )
    return EnvelopeError(
        "authentication failed: the file was altered or the wrong key was used"
    )


def _read_sealed(
    reader: BinaryIO, header: EnvelopeHeader, index: int, prefix: bytes
) -> bytes:
    """The sealed chunk at ``index``, whose length prefix has been read."""
    if len(prefix) < _LENGTH.size:
        raise EnvelopeError(f"the file is truncated: chunk {index} is incomplete")
    if index >= MAX_CHUNKS:
        raise EnvelopeError("the file is corrupt: it has more chunks than allowed")
    (length,) = _LENGTH.unpack(prefix)
    # Checked before reading, so that a forged length cannot make us allocate.
    if not TAG_LENGTH <= length <= header.chunk_size + TAG_LENGTH:
        raise EnvelopeError(
            f"the file is corrupt: chunk {index} declares {length} bytes, which a "
            f"chunk size of {header.chunk_size} does not allow"
        )
    sealed = _read_up_to(reader, length)
    if len(sealed) < length:
        raise EnvelopeError(f"the file is truncated: chunk {index} is incomplete")
    return sealed


def _parse_header(body: bytes, encoded: bytes) -> EnvelopeHeader:
    try:
        fields = json.loads(body.decode("utf-8"), object_pairs_hook=_unique_members)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise EnvelopeError(
            f"the header is malformed: it is not UTF-8 JSON ({error})"
        ) from None
    except ValueError as error:
        raise EnvelopeError(f"the header is malformed: {error}") from None
    if not isinstance(fields, dict):
        raise EnvelopeError("the header is malformed: it is not a JSON object")
    algorithm = _member(fields, "algorithm", str)
    if algorithm != ALGORITHM:
        raise EnvelopeError(
            f"unsupported algorithm {algorithm!r} (this monetise reads {ALGORITHM})"
        )
    key_id = _member(fields, "key_id", str)
    if not is_valid_key_id(key_id):
        raise EnvelopeError(f"the header is malformed: {key_id!r} is not a key id")
    chunk_size = _member(fields, "chunk_size", int)
    if isinstance(chunk_size, bool) or not 1 <= chunk_size <= MAX_CHUNK_SIZE:
        raise EnvelopeError(
            f"the header is malformed: chunk_size {chunk_size} is not 1 to "
            f"{MAX_CHUNK_SIZE}"
        )
    return EnvelopeHeader(
        key_id=key_id,
        algorithm=algorithm,
        ephemeral_public_key=_base64_member(fields, "ephemeral_public_key", 32),
        chunk_size=chunk_size,
        nonce_prefix=_base64_member(fields, "nonce_prefix", NONCE_PREFIX_LENGTH),
        encoded=encoded,
    )


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for name, value in pairs:
        if name in members:
            raise ValueError(f"member {name!r} appears twice")
        members[name] = value
    return members


def _member(fields: dict[str, Any], name: str, kind: type[_T]) -> _T:
    value = fields.get(name)
    if not isinstance(value, kind):
        raise EnvelopeError(
            f"the header is malformed: {name} is missing or not a {kind.__name__}"
        )
    return value


def _base64_member(fields: dict[str, Any], name: str, size: int) -> bytes:
    text = _member(fields, name, str)
    try:
        value = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"the header is malformed: {name} is not base64") from None
    if len(value) != size:
        raise EnvelopeError(
            f"the header is malformed: {name} is {len(value)} bytes, not {size}"
        )
    return value


def _content_key(
    shared: bytes,
    nonce_prefix: bytes,
    key_id: str,
    ephemeral_public: bytes,
    recipient_public: bytes,
) -> bytes:
    info = b"".join(
        [
            _KDF_LABEL,
            b"\x00",
            key_id.encode("ascii"),
            b"\x00",
            ephemeral_public,
            recipient_public,
        ]
    )
    kdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=nonce_prefix, info=info)
    return kdf.derive(shared)


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + struct.pack(">IB", index, 1 if last else 0)


def _raw(public_key: X25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _read_up_to(reader: BinaryIO, size: int) -> bytes:
    """Exactly ``size`` bytes, or fewer only where the stream ends."""
    data = reader.read(size)
    if len(data) == size or not data:
        return data
    # Pipes and sockets may return less than asked before their end.
    parts = [data]
    missing = size - len(data)
    while missing:
        more = reader.read(missing)
        if not more:
            break
        parts.append(more)
        missing -= len(more)
    return b"".join(parts)
