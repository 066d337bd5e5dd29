"""The key ring under $MONETISE_HOME/keys/ and encrypted files on disk."""

from __future__ import annotations

import hashlib
import os
import resource
import stat
import time
import tracemalloc
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from ingest.envelope import EnvelopeError, is_envelope
from ingest.keyring import (
    KeyRing,
    KeyRingError,
    UnknownKey,
    decrypt_file,
    encrypt_file,
    load_public_key,
)

MiB = 1024 * 1024


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return KeyRing.in_home(tmp_path / "home")


def write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def opened(path: Path, ring: KeyRing) -> bytes:
    return b"".join(decrypt_file(path, ring))


def refusal(path: Path, ring: KeyRing) -> str:
    with pytest.raises(EnvelopeError) as refused:
        opened(path, ring)
    return refused.value.reason


def test_the_key_ring_of_a_home_is_its_keys_directory(tmp_path: Path) -> None:
    assert KeyRing.in_home(tmp_path).directory == tmp_path / "keys"


def test_a_generated_key_pair_is_a_private_and_a_public_pem_file(
    ring: KeyRing,
) -> None:
    private_path, public_path = ring.generate("partner-2025")

    assert private_path == ring.directory / "partner-2025.key"
    assert public_path == ring.directory / "partner-2025.pub"
    assert private_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public_path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    private = load_pem_private_key(private_path.read_bytes(), password=None)
    public = load_pem_public_key(public_path.read_bytes())
    assert isinstance(private, X25519PrivateKey)
    assert isinstance(public, X25519PublicKey)
    assert private.public_key() == public


def test_a_private_key_is_readable_by_its_owner_only(ring: KeyRing) -> None:
    previous = os.umask(0o022)
    try:
        private_path, _ = ring.generate("partner")
    finally:
        os.umask(previous)

    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600


def test_an_existing_key_id_is_refused_and_its_key_kept(ring: KeyRing) -> None:
    private_path, _ = ring.generate("partner")
    before = private_path.read_bytes()

    with pytest.raises(KeyRingError, match="key partner is already in the key ring"):
        ring.generate("partner")

    assert private_path.read_bytes() == before


def test_a_key_id_with_only_its_public_key_present_is_refused(ring: KeyRing) -> None:
    ring.directory.mkdir(parents=True)
    (ring.directory / "partner.pub").write_bytes(b"")

    with pytest.raises(KeyRingError, match="already in the key ring"):
        ring.generate("partner")


@pytest.mark.parametrize(
    "key_id", ["", "../escape", "a/b", "a b", "x" * 65, "clé", "key\n", "a:b"]
)
def test_a_malformed_key_id_is_refused(ring: KeyRing, key_id: str) -> None:
    with pytest.raises(KeyRingError, match="is not a key id"):
        ring.generate(key_id)
    with pytest.raises(KeyRingError, match="is not a key id"):
        ring.private_key(key_id)

    assert ring.key_ids() == []


def test_several_keys_live_side_by_side(ring: KeyRing) -> None:
    assert ring.key_ids() == []

    for key_id in ("2025-07", "2024-01", "partner_b.v2"):
        ring.generate(key_id)

    assert ring.key_ids() == ["2024-01", "2025-07", "partner_b.v2"]


def test_a_key_not_in_the_ring_is_unknown(ring: KeyRing) -> None:
    ring.generate("present")

    with pytest.raises(UnknownKey, match="key absent is not in the key ring"):
        ring.private_key("absent")
    with pytest.raises(UnknownKey, match="key absent is not in the key ring"):
        ring.public_key("absent")


def test_a_partner_with_only_the_public_key_can_seal_but_not_open(
    ring: KeyRing, tmp_path: Path
) -> None:
    _, public_path = ring.generate("partner")
    partner = KeyRing(tmp_path / "partner-keys")
    partner.directory.mkdir()
    (partner.directory / "partner.pub").write_bytes(public_path.read_bytes())
    source = write(tmp_path / "usage.json", b'{"records": []}')
    target = tmp_path / "usage.json.enc"

    encrypt_file(source, target, partner.public_key("partner"), "partner")

    assert partner.key_ids() == ["partner"]
    assert opened(target, ring) == b'{"records": []}'
    assert refusal(target, partner) == (
        "the file was encrypted for key partner, which is not in the key ring"
    )


def test_a_public_key_file_is_enough_to_seal_a_file(
    ring: KeyRing, tmp_path: Path
) -> None:
    _, public_path = ring.generate("partner")
    source = write(tmp_path / "usage.json", b"usage " * 1000)
    target = tmp_path / "usage.json.enc"

    encrypt_file(source, target, public_path, "partner")

    assert is_envelope(target.read_bytes()[:8])
    assert opened(target, ring) == b"usage " * 1000


def test_sealing_leaves_only_the_complete_file_behind(
    ring: KeyRing, tmp_path: Path
) -> None:
    ring.generate("partner")
    source = write(tmp_path / "usage.json", b"usage")
    inbound = tmp_path / "inbound"
    inbound.mkdir()

    encrypt_file(
        source, inbound / "usage.json.enc", ring.public_key("partner"), "partner"
    )

    assert sorted(path.name for path in inbound.iterdir()) == ["usage.json.enc"]


def test_a_failed_seal_leaves_no_partial_file(ring: KeyRing, tmp_path: Path) -> None:
    ring.generate("partner")
    source = write(tmp_path / "usage.json", b"usage")
    inbound = tmp_path / "inbound"
    inbound.mkdir()

    with pytest.raises(ValueError, match="is not a key id"):
        encrypt_file(source, inbound / "x.enc", ring.public_key("partner"), "no/id")

    assert list(inbound.iterdir()) == []


def test_a_file_that_is_not_a_public_key_is_refused(
    ring: KeyRing, tmp_path: Path
) -> None:
    private_path, _ = ring.generate("partner")
    ed25519 = write(
        tmp_path / "ed25519.pub",
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo),
    )

    with pytest.raises(KeyRingError, match="is not a PEM public key"):
        load_public_key(private_path)
    with pytest.raises(KeyRingError, match="is not an X25519 public key"):
        load_public_key(ed25519)


def test_files_sealed_for_two_keys_both_open_with_one_ring(
    ring: KeyRing, tmp_path: Path
) -> None:
    # Rotation: files sealed for the old key still arrive after the new one.
    ring.generate("2024-01")
    ring.generate("2025-07")
    old = tmp_path / "old.enc"
    new = tmp_path / "new.enc"
    source = write(tmp_path / "usage.json", b"usage")
    encrypt_file(source, old, ring.public_key("2024-01"), "2024-01")
    encrypt_file(source, new, ring.public_key("2025-07"), "2025-07")

    assert opened(old, ring) == b"usage"
    assert opened(new, ring) == b"usage"


def test_a_file_sealed_for_another_key_of_the_same_id_fails_authentication(
    ring: KeyRing, tmp_path: Path
) -> None:
    sender = KeyRing(tmp_path / "sender-keys")
    sender.generate("partner")
    ring.generate("partner")
    sealed = tmp_path / "usage.enc"
    encrypt_file(
        write(tmp_path / "usage.json", b"usage"),
        sealed,
        sender.public_key("partner"),
        "partner",
    )

    assert refusal(sealed, ring) == (
        "authentication failed: the file was altered or the wrong key was used"
    )


def test_a_plain_file_is_refused_as_not_encrypted(
    ring: KeyRing, tmp_path: Path
) -> None:
    plain = write(tmp_path / "usage.json", b'{"header": {}, "records": []}')

    assert refusal(plain, ring) == "not an encrypted monetise file"


@pytest.mark.timeout(120)
def test_a_100_mb_file_streams_through_in_little_memory(
    ring: KeyRing, tmp_path: Path
) -> None:
    ring.generate("partner")
    source = tmp_path / "usage.bin"
    sealed = tmp_path / "usage.bin.enc"
    written = hashlib.sha256()
    with source.open("wb") as file:
        for _ in range(100):
            block = os.urandom(MiB)
            written.update(block)
            file.write(block)
    public_key = ring.public_key("partner")

    started = time.perf_counter()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    try:
        encrypt_file(source, sealed, public_key, "partner")
        read = hashlib.sha256()
        size = 0
        for chunk in decrypt_file(sealed, ring):
            read.update(chunk)
            size += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
    elapsed = time.perf_counter() - started

    print(
        f"100 MiB sealed and opened in {elapsed:.2f} s; traced peak "
        f"{peak / MiB:.1f} MiB; peak RSS growth {rss_growth / MiB:.1f} MiB"
    )
    assert size == 100 * MiB
    assert read.digest() == written.digest()
    assert sealed.stat().st_size < 100 * MiB + 4096
    assert peak < 50 * MiB
    assert rss_growth < 50 * MiB
