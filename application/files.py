"""Files that readers see whole or not at all (outbox messages, inbound files)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable
from pathlib import Path


def write_atomically(
    path: Path,
    chunks: Iterable[str],
    temporary: Path | None = None,
    *,
    sync_parent: bool = True,
) -> None:
    """Write ``chunks`` to ``path`` durably, then make it appear at once.

    The text goes to a temporary file in the same directory (by default a
    unique dot-file, which watchers skip), is synced to disk, and is renamed
    into place; the directory is synced so that the rename survives a crash.
    A caller writing many files may pass ``sync_parent=False`` and call
    ``sync_directory(path.parent)`` once after the last of them: the renames
    are durable only after that.
    """
    temporary = temporary or path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as stream:
            for chunk in chunks:
                stream.write(chunk)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    if sync_parent:
        sync_directory(path.parent)


def sync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (where the file system allows)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems cannot sync a directory; the file itself is
    finally:
        os.close(descriptor)
