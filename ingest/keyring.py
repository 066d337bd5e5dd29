"""The key ring of encrypted inbound files, under ``$MONETISE_HOME/keys/``.

Each key pair is two files named by its key id: ``<key_id>.key``, the X25519
private key (PEM, PKCS #8, readable by the owner only), and ``<key_id>.pub``,
the public key (PEM, SubjectPublicKeyInfo) that partners encrypt with. Several
pairs live side by side, so keys rotate without a gap: generate a new pair,
hand out its public key, and keep the old private key until no file sealed
for it can still arrive.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from ingest.envelope import (
    DEFAULT_CHUNK_SIZE,
    EnvelopeError,
    decrypt_stream,
    encrypt_stream,
    is_valid_key_id,
    read_header,
)

KEYS_DIRECTORY = "keys"
PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub"


class KeyRingError(ValueError):
    """A key that cannot be made or used, with the reason in words."""


class UnknownKey(KeyRingError, LookupError):
    """No key of that id is in the key ring."""


class KeyRing:
    """The X25519 key pairs in one directory, by key id."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def in_home(cls, home: Path) -> KeyRing:
        """The key ring of a monetise home: ``$MONETISE_HOME/keys/``."""
        return cls(home / KEYS_DIRECTORY)

    def generate(self, key_id: str) -> tuple[Path, Path]:
        """Make a new key pair; return the paths of its private and public key.

        Refuses a key id that is malformed or already in the ring: a key is
        never overwritten, since files sealed for it could no longer be read.
        """
        _check_key_id(key_id)
        private_path, public_path = self._paths(key_id)
        if private_path.exists() or public_path.exists():
            raise KeyRingError(f"key {key_id} is already in the key ring")
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        private_key = X25519PrivateKey.generate()
        private_pem = private_key.private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
        public_pem = private_key.public_key().public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
        )
        _write_new(private_path, private_pem, key_id, private=True)
        try:
            _write_new(public_path, public_pem, key_id, private=False)
        except BaseException:
            private_path.unlink(missing_ok=True)
            raise
        return private_path, public_path

    def key_ids(self) -> list[str]:
        """The ids of the keys in the ring, sorted."""
        if not self.directory.is_dir():
            return []
        ids = {
            path.stem
            for path in self.directory.iterdir()
            if path.suffix in (PRIVATE_SUFFIX, PUBLIC_SUFFIX)
            and is_valid_key_id(path.stem)
        }
        return sorted(ids)

    def private_key(self, key_id: str) -> X25519PrivateKey:
        """The private key of ``key_id``, to decrypt files sealed for it."""
        _check_key_id(key_id)
        path, _ = self._paths(key_id)
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            raise UnknownKey(f"key {key_id} is not in the key ring") from None
        try:
            key = load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as error:
            raise KeyRingError(f"{path} is not a PEM private key: {error}") from None
        if not isinstance(key, X25519PrivateKey):
            raise KeyRingError(f"{path} is not an X25519 private key")
        return key

    def public_key(self, key_id: str) -> X25519PublicKey:
        """The public key of ``key_id``, to seal files for it."""
        _check_key_id(key_id)
        private_path, public_path = self._paths(key_id)
        if public_path.exists():
            return load_public_key(public_path)
        if private_path.exists():
            return self.private_key(key_id).public_key()
        raise UnknownKey(f"key {key_id} is not in the key ring")

    def _paths(self, key_id: str) -> tuple[Path, Path]:
        return (
            self.directory / f"{key_id}{PRIVATE_SUFFIX}",
            self.directory / f"{key_id}{PUBLIC_SUFFIX}",
        )


def load_public_key(path: Path) -> X25519PublicKey:
    """The X25519 public key in a ``.pub`` file, for a partner who has only it."""
    try:
        key = load_pem_public_key(path.read_bytes())
    except ValueError as error:
        raise KeyRingError(f"{path} is not a PEM public key: {error}") from None
    if not isinstance(key, X25519PublicKey):
        raise KeyRingError(f"{path} is not an X25519 public key")
    return key


def encrypt_file(
    source: Path,
    target: Path,
    public_key: X25519PublicKey | Path,
    key_id: str,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> None:
    """Seal ``source`` as the envelope ``target`` for the key ``key_id``.

    ``public_key`` is the key itself (``KeyRing.public_key``) or the path of its
    ``.pub`` file. The envelope is written beside ``target`` as a dot-file and
    renamed when complete, so that a watched inbound directory never sees half
    a file.
    """
    if isinstance(public_key, Path):
        public_key = load_public_key(public_key)
    partial = target.with_name(f".{target.name}.tmp")
    try:
        with source.open("rb") as reader, partial.open("wb") as writer:
            encrypt_stream(reader, writer, public_key, key_id, chunk_size)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def decrypt_file(source: Path, keyring: KeyRing) -> Iterator[bytes]:
    """Yield the plaintext of the envelope ``source``, chunk by chunk.

    The key is picked from ``keyring`` by the id in the header. Raises
    ``EnvelopeError`` for a file that is not an envelope, is sealed for a key
    the ring lacks, or is altered or truncated; whatever was yielded before an
    error must then be discarded.
    """
    with source.open("rb") as reader:
        header = read_header(reader)
        try:
            private_key = keyring.private_key(header.key_id)
        except UnknownKey:
            raise EnvelopeError(
                f"the file was encrypted for key {header.key_id}, which is not in "
                "the key ring"
            ) from None
        yield from decrypt_stream(reader, private_key, header)


def _check_key_id(key_id: str) -> None:
    # The id names files: the pattern also keeps it inside the directory.
    if not is_valid_key_id(key_id):
        raise KeyRingError(
            f"{key_id!r} is not a key id: use 1 to 64 of A-Z a-z 0-9 . _ -"
        )


def _write_new(path: Path, content: bytes, key_id: str, *, private: bool) -> None:
    mode = 0o600 if private else 0o644
    # O_EXCL: two generators racing for one id cannot both win.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise KeyRingError(f"key {key_id} is already in the key ring") from None
    with os.fdopen(descriptor, "wb") as file:
        if private:
            # A umask only narrows the mode given to open(); a private key is
            # owner-only and owner-readable whatever the umask, before any
            # byte of it is written.
            os.fchmod(file.fileno(), mode)
        file.write(content)
