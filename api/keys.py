"""API keys and their roles, read from the file named by MONETISE_API_KEYS.

One key a line: ``KEY ROLE[,ROLE…] [NAME]``; ``#`` starts a comment. The name is
the actor recorded on every event the key causes (default: the first role).
A key may be written as ``sha256:HEX`` so the file need not hold the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

ROLES = ("admin", "agent", "auditor", "ingest")


class KeyFileError(ValueError):
    pass


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key's name and its roles."""

    name: str
    roles: frozenset[str]

    def may(self, role: str) -> bool:
        # An administrator may do what every other role may do.
        return role in self.roles or "admin" in self.roles


@dataclass(frozen=True)
class _Key:
    digest: bytes
    caller: Caller


class KeyRing:
    """Looks up callers by key in constant time per key."""

    def __init__(self, entries: list[tuple[str, Caller]]):
        self._keys = [_Key(_digest_of(secret), caller) for secret, caller in entries]

    @classmethod
    def from_file(cls, path: Path) -> KeyRing:
        if not path.exists():
            raise KeyFileError(f"API key file {path} does not exist")
        return cls.parse(path.read_text(encoding="utf-8"), str(path))

    @classmethod
    def parse(cls, text: str, origin: str = "API keys") -> KeyRing:
        entries = []
        for number, line in enumerate(text.splitlines(), start=1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            if len(words) < 2:
                raise KeyFileError(
                    f"{origin}:{number}: expected KEY ROLE[,ROLE] [NAME]"
                )
            roles = frozenset(words[1].split(","))
            unknown = roles - set(ROLES)
            if unknown:
                raise KeyFileError(
                    f"{origin}:{number}: unknown role {', '.join(sorted(unknown))}; "
                    f"roles are {', '.join(ROLES)}"
                )
            name = words[2] if len(words) > 2 else sorted(roles)[0]
            entries.append((words[0], Caller(name=name, roles=roles)))
        return cls(entries)

    def caller(self, presented: str) -> Caller | None:
        digest = hashlib.sha256(presented.encode()).digest()
        found = None
        for key in self._keys:
            if hmac.compare_digest(key.digest, digest):
                found = key.caller
        return found


def _digest_of(secret: str) -> bytes:
    if secret.startswith("sha256:"):
        return bytes.fromhex(secret.removeprefix("sha256:"))
    return hashlib.sha256(secret.encode()).digest()


def write_new_key_file(path: Path) -> dict[str, str]:
    """Create a key file with one fresh key per role; returns role -> key."""
    keys = {role: f"mk_{role}_{secrets.token_urlsafe(24)}" for role in ROLES}
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# monetise API keys: KEY ROLE[,ROLE] [NAME]"]
    lines += [f"{key} {role} {role}" for role, key in keys.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return keys
