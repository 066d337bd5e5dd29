"""The envelope of encrypted inbound files: round trips and every refusal."""

from __future__ import annotations

import base64
import io
import json
import os
import struct

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ingest.envelope import (
    ALGORITHM,
    DEFAULT_CHUNK_SIZE,
    MAX_CHUNK_SIZE,
    EnvelopeError,
    decrypt_stream,
    encrypt_stream,
    is_envelope,
    read_header,
)

CHUNK = 16
KEY = X25519PrivateKey.generate()
AUTHENTICATION_FAILED = (
    "authentication failed: the file was altered or the wrong key was used"
)
LAST_CHUNK_MISSING = "the file is truncated: its last chunk is missing"


def seal(
    plaintext: bytes,
    key: X25519PrivateKey = KEY,
    key_id: str = "partner-a",
    chunk_size: int = CHUNK,
) -> bytes:
    sealed = io.BytesIO()
    encrypt_stream(io.BytesIO(plaintext), sealed, key.public_key(), key_id, chunk_size)
    return sealed.getvalue()


def open_chunks(envelope: bytes, key: X25519PrivateKey = KEY) -> list[bytes]:
    reader = io.BytesIO(envelope)
    header = read_header(reader)
    return list(decrypt_stream(reader, key, header))


def refusal(envelope: bytes, key: X25519PrivateKey = KEY) -> str:
    with pytest.raises(EnvelopeError) as refused:
        open_chunks(envelope, key)
    return refused.value.reason


def split(envelope: bytes) -> tuple[bytes, list[bytes]]:
    """The header and the framed chunks (length prefix included) of an envelope."""
    (length,) = struct.unpack(">I", envelope[9:13])
    header, rest = envelope[: 13 + length], envelope[13 + length :]
    frames = []
    while rest:
        (size,) = struct.unpack(">I", rest[:4])
        frames.append(rest[: 4 + size])
        rest = rest[4 + size :]
    return header, frames


def with_header_fields(envelope: bytes, **changes: object) -> bytes:
    """The envelope with its header JSON rewritten (and its length fixed)."""
    header, frames = split(envelope)
    fields = json.loads(header[13:])
    fields.update(changes)
    body = json.dumps(fields).encode()
    return header[:9] + struct.pack(">I", len(body)) + body + b"".join(frames)


def flip(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


@pytest.mark.parametrize(
    "size",
    [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 1000],
    ids=[
        "empty",
        "one byte",
        "one short chunk",
        "exactly one chunk",
        "one chunk and a byte",
        "exactly three chunks",
        "many chunks",
    ],
)
def test_what_is_sealed_opens_to_the_same_bytes(size: int) -> None:
    plaintext = os.urandom(size)

    assert b"".join(open_chunks(seal(plaintext))) == plaintext


def test_the_plaintext_is_yielded_chunk_by_chunk() -> None:
    chunks = open_chunks(seal(b"x" * (2 * CHUNK + 5)))

    assert [len(chunk) for chunk in chunks] == [CHUNK, CHUNK, 5]


def test_an_empty_plaintext_is_one_empty_last_chunk() -> None:
    _, frames = split(seal(b""))

    assert [len(frame) for frame in frames] == [4 + 16]


def test_a_plaintext_of_whole_chunks_has_no_empty_chunk_after_them() -> None:
    _, frames = split(seal(b"y" * (2 * CHUNK)))

    assert [len(frame) for frame in frames] == [4 + CHUNK + 16] * 2


def test_the_default_chunk_size_is_one_mebibyte() -> None:
    header = read_header(io.BytesIO(seal(b"usage", chunk_size=DEFAULT_CHUNK_SIZE)))

    assert header.chunk_size == 1024 * 1024


def test_the_header_names_the_key_before_any_key_is_needed() -> None:
    reader = io.BytesIO(seal(b"usage", key_id="partner-2025.q3"))

    header = read_header(reader)

    assert header.key_id == "partner-2025.q3"
    assert header.algorithm == ALGORITHM == "X25519-HKDF-SHA256/AES-256-GCM"
    assert header.chunk_size == CHUNK
    assert len(header.ephemeral_public_key) == 32
    assert len(header.nonce_prefix) == 7


def test_the_same_plaintext_is_sealed_differently_each_time() -> None:
    assert seal(b"same usage") != seal(b"same usage")


def test_an_envelope_is_recognised_by_its_first_bytes() -> None:
    assert is_envelope(seal(b"usage")[:8])
    assert not is_envelope(b'{"header": {"file_id": "F1"}}')
    assert not is_envelope(b"")


def test_a_reader_that_returns_a_few_bytes_at_a_time_still_reads_everything() -> None:
    class Trickle(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            return super().read(min(3, size) if size and size > 0 else 3)

    plaintext = os.urandom(5 * CHUNK + 7)
    sealed = io.BytesIO()
    encrypt_stream(Trickle(plaintext), sealed, KEY.public_key(), "partner-a", CHUNK)
    reader = Trickle(sealed.getvalue())

    header = read_header(reader)

    assert b"".join(decrypt_stream(reader, KEY, header)) == plaintext


@pytest.mark.parametrize(
    "content", [b"", b"{}", b'{"header": {}, "records": []}', b"MONET"]
)
def test_a_file_that_is_not_an_envelope_is_refused_as_such(content: bytes) -> None:
    with pytest.raises(EnvelopeError) as refused:
        read_header(io.BytesIO(content))

    assert refused.value.reason == "not an encrypted monetise file"


def test_a_later_envelope_version_is_refused_by_number() -> None:
    envelope = seal(b"usage")

    with pytest.raises(EnvelopeError) as refused:
        read_header(io.BytesIO(envelope[:8] + b"\x02" + envelope[9:]))

    assert refused.value.reason == (
        "unsupported envelope version 2 (this monetise reads 1)"
    )


def test_a_file_sealed_for_another_key_fails_authentication() -> None:
    envelope = seal(b"usage of partner A")

    assert refusal(envelope, X25519PrivateKey.generate()) == AUTHENTICATION_FAILED


@pytest.mark.parametrize("chunk", [0, 1, 2])
def test_a_flipped_bit_in_any_chunk_fails_authentication(chunk: int) -> None:
    header, frames = split(seal(b"z" * (2 * CHUNK + 3)))
    frames[chunk] = flip(frames[chunk], 4 + 2)

    assert refusal(header + b"".join(frames)) == AUTHENTICATION_FAILED


def test_a_flipped_bit_in_the_tag_of_the_last_chunk_fails_authentication() -> None:
    envelope = seal(b"z" * (2 * CHUNK + 3))

    assert refusal(flip(envelope, len(envelope) - 1)) == AUTHENTICATION_FAILED


def test_an_edited_ephemeral_key_in_the_header_fails_authentication() -> None:
    envelope = seal(b"usage")
    other = X25519PrivateKey.generate().public_key()
    raw = other.public_bytes(Encoding.Raw, PublicFormat.Raw)

    edited = with_header_fields(
        envelope, ephemeral_public_key=base64.b64encode(raw).decode()
    )

    assert refusal(edited) == AUTHENTICATION_FAILED


def test_an_edited_nonce_prefix_in_the_header_fails_authentication() -> None:
    edited = with_header_fields(
        seal(b"usage"), nonce_prefix=base64.b64encode(b"\x00" * 7).decode()
    )

    assert refusal(edited) == AUTHENTICATION_FAILED


def test_a_header_renamed_to_another_key_id_fails_authentication() -> None:
    edited = with_header_fields(seal(b"usage"), key_id="partner-b")

    assert refusal(edited) == AUTHENTICATION_FAILED


def test_a_header_reencoded_with_the_same_fields_fails_authentication() -> None:
    # Every chunk authenticates the header bytes, not the fields they encode.
    reencoded = with_header_fields(seal(b"usage"))

    assert refusal(reencoded) == AUTHENTICATION_FAILED


def test_chunks_in_another_order_fail_authentication() -> None:
    header, frames = split(seal(b"a" * CHUNK + b"b" * CHUNK + b"c"))

    assert refusal(header + frames[1] + frames[0] + frames[2]) == (
        AUTHENTICATION_FAILED
    )


def test_a_dropped_middle_chunk_fails_authentication() -> None:
    header, frames = split(seal(b"a" * CHUNK + b"b" * CHUNK + b"c"))

    assert refusal(header + frames[0] + frames[2]) == AUTHENTICATION_FAILED


def test_a_file_cut_at_a_chunk_boundary_is_named_truncated() -> None:
    header, frames = split(seal(b"q" * (3 * CHUNK + 1)))

    assert refusal(header + b"".join(frames[:-1])) == LAST_CHUNK_MISSING


def test_a_file_of_whole_chunks_cut_at_a_chunk_boundary_is_named_truncated() -> None:
    header, frames = split(seal(b"q" * (3 * CHUNK)))

    assert refusal(header + b"".join(frames[:2])) == LAST_CHUNK_MISSING


def test_a_file_cut_right_after_its_header_is_named_truncated() -> None:
    header, _ = split(seal(b"usage"))

    assert refusal(header) == LAST_CHUNK_MISSING


@pytest.mark.parametrize(
    ("cut", "chunk"),
    [(1, 2), (10, 2), (19, 2), (21, 2), (23 + 15, 1)],
    ids=["tag", "ciphertext", "whole body", "length prefix", "middle chunk"],
)
def test_a_file_cut_inside_a_chunk_is_named_truncated(cut: int, chunk: int) -> None:
    # Chunks of 36, 36 and 23 bytes (length prefix, ciphertext, tag).
    envelope = seal(b"q" * (2 * CHUNK + 3))

    assert refusal(envelope[:-cut]) == (
        f"the file is truncated: chunk {chunk} is incomplete"
    )


def test_a_file_cut_inside_its_header_is_named_truncated() -> None:
    envelope = seal(b"usage")

    for cut in (9, 12, 20):
        with pytest.raises(EnvelopeError) as refused:
            read_header(io.BytesIO(envelope[:cut]))
        assert refused.value.reason == (
            "the file is truncated: its header is incomplete"
        )


@pytest.mark.parametrize(
    "garbage",
    [b"\x00", b"\x00\x00\x00", b"\x00\x00\x00\x20" + b"!" * 32, b"\xff" * 100],
)
def test_data_appended_after_the_last_chunk_is_refused(garbage: bytes) -> None:
    envelope = seal(b"q" * (2 * CHUNK + 3))

    assert refusal(envelope + garbage) == (
        "the file has unexpected data after its last chunk (chunk 2)"
    )


def test_a_copy_of_the_last_chunk_appended_is_refused() -> None:
    header, frames = split(seal(b"q" * (CHUNK + 3)))

    assert refusal(header + frames[0] + frames[1] + frames[1]) == (
        "the file has unexpected data after its last chunk (chunk 1)"
    )


def test_a_chunk_longer_than_the_chunk_size_allows_is_refused_before_reading() -> None:
    header, _ = split(seal(b"usage"))

    reason = refusal(header + struct.pack(">I", 2**31) + b"\x00" * 64)

    assert reason == (
        "the file is corrupt: chunk 0 declares 2147483648 bytes, which a chunk "
        "size of 16 does not allow"
    )


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"key_id": None}, "the header is malformed: key_id is missing or not a str"),
        ({"key_id": "../etc/x"}, "the header is malformed: '../etc/x' is not a key id"),
        ({"chunk_size": 0}, "the header is malformed: chunk_size 0 is not 1 to "),
        ({"chunk_size": True}, "the header is malformed: chunk_size True is not 1 "),
        (
            {"chunk_size": MAX_CHUNK_SIZE + 1},
            f"the header is malformed: chunk_size {MAX_CHUNK_SIZE + 1} is not",
        ),
        (
            {"nonce_prefix": base64.b64encode(b"12345678").decode()},
            "the header is malformed: nonce_prefix is 8 bytes, not 7",
        ),
        (
            {"ephemeral_public_key": "not base64!"},
            "the header is malformed: ephemeral_public_key is not base64",
        ),
        (
            {"algorithm": "RSA-OAEP/AES-256-GCM"},
            "unsupported algorithm 'RSA-OAEP/AES-256-GCM' (this monetise reads "
            "X25519-HKDF-SHA256/AES-256-GCM)",
        ),
    ],
)
def test_a_malformed_header_is_refused_with_the_field_named(
    changes: dict[str, object], reason: str
) -> None:
    edited = with_header_fields(seal(b"usage"), **changes)

    with pytest.raises(EnvelopeError) as refused:
        read_header(io.BytesIO(edited))

    assert refused.value.reason.startswith(reason)


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b'{"a": 1, "a": 2}', b"\xff\xfe", b"[" * 50000]
)
def test_a_header_that_is_not_one_json_object_is_refused(body: bytes) -> None:
    envelope = b"MONETENC\x01" + struct.pack(">I", len(body)) + body

    with pytest.raises(EnvelopeError) as refused:
        read_header(io.BytesIO(envelope))

    assert refused.value.reason.startswith("the header is malformed")


def test_an_ephemeral_key_of_low_order_is_refused() -> None:
    edited = with_header_fields(
        seal(b"usage"), ephemeral_public_key=base64.b64encode(bytes(32)).decode()
    )

    assert refusal(edited) == (
        "the header is malformed: its ephemeral public key is not usable"
    )


@pytest.mark.parametrize("key_id", ["", "a/b", "a b", "x" * 65, "clé", "key\n"])
def test_sealing_for_a_malformed_key_id_is_refused(key_id: str) -> None:
    with pytest.raises(ValueError, match="is not a key id"):
        seal(b"usage", key_id=key_id)


@pytest.mark.parametrize("chunk_size", [0, MAX_CHUNK_SIZE + 1])
def test_sealing_with_a_chunk_size_out_of_range_is_refused(chunk_size: int) -> None:
    with pytest.raises(ValueError, match="chunk size"):
        seal(b"usage", chunk_size=chunk_size)


def test_a_partner_following_the_documented_format_can_open_an_envelope() -> None:
    # An independent reader written from the module's specification only.
    plaintext = os.urandom(2 * CHUNK + 9)
    envelope = seal(plaintext, key_id="partner-a")

    assert partner_reader(envelope, KEY) == plaintext


def partner_reader(envelope: bytes, key: X25519PrivateKey) -> bytes:
    assert envelope[:8] == b"MONETENC" and envelope[8] == 1
    length = int.from_bytes(envelope[9:13], "big")
    header = envelope[: 13 + length]
    fields = json.loads(header[13:])
    ephemeral = base64.b64decode(fields["ephemeral_public_key"])
    prefix = base64.b64decode(fields["nonce_prefix"])
    recipient = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    shared = key.exchange(X25519PublicKey.from_public_bytes(ephemeral))
    info = (
        b"monetise envelope v1\x00"
        + fields["key_id"].encode()
        + b"\x00"
        + ephemeral
        + recipient
    )
    content_key = HKDF(hashes.SHA256(), 32, salt=prefix, info=info).derive(shared)
    aead = AESGCM(content_key)
    rest, index, plaintext = envelope[13 + length :], 0, b""
    while rest:
        size = int.from_bytes(rest[:4], "big")
        chunk, rest = rest[4 : 4 + size], rest[4 + size :]
        last = b"\x01" if not rest else b"\x00"
        nonce = prefix + index.to_bytes(4, "big") + last
        plaintext += aead.decrypt(nonce, chunk, header)
        index += 1
    return plaintext


# Sealed by version 1 for the key below with chunk_size 16: the format must not
# drift, or files already sent by partners stop opening.
FROZEN_KEY = X25519PrivateKey.from_private_bytes(bytes(range(32)))
FROZEN_PLAINTEXT = b"Rated usage, sealed in three chunks."
FROZEN_ENVELOPE = bytes.fromhex(
    "4d4f4e4554454e4301000000ba7b22616c676f726974686d223a225832353531"
    "392d484b44462d5348413235362f4145532d3235362d47434d222c226368756e"
    "6b5f73697a65223a31362c22657068656d6572616c5f7075626c69635f6b6579"
    "223a2247796f4b6d514d65506575556e51634a2b7834716c537772546f353151"
    "373341475758346169796f3867593d222c226b65795f6964223a226669787475"
    "72652d32303235222c226e6f6e63655f707265666978223a226b6a776e796a33"
    "7a2b513d3d227d0000002014bdd8d2ef64df223718a989339656123e2e5262f4"
    "519340cddf26f78f39040800000020f80ac1d89a7e1963158f6ddc1979889e2d"
    "c38ee5495a73aff4ac8f17328e614100000014ee9d3269bafc4703cbba59418f"
    "b92710b9514279"
)


def test_an_envelope_sealed_by_version_1_still_opens() -> None:
    reader = io.BytesIO(FROZEN_ENVELOPE)
    header = read_header(reader)

    assert header.key_id == "fixture-2025"
    assert b"".join(decrypt_stream(reader, FROZEN_KEY, header)) == FROZEN_PLAINTEXT
    assert partner_reader(FROZEN_ENVELOPE, FROZEN_KEY) == FROZEN_PLAINTEXT
