"""The life of an inbound usage file, shared by every usage-file daemon.

A daemon takes a file from ``inbound/<directory>/`` only once it is complete and
moves it into ``processing/<daemon>/`` *before* loading it, so that a crash
leaves it there to be resumed rather than lost. Afterwards it goes to
``archive/<daemon>/``, or if refused to ``quarantine/<daemon>/`` beside a
``NAME.error.json`` that says why. Nothing is deleted or overwritten; a file
whose load failed unexpectedly stays in ``processing/`` and is retried with
backoff, which is safe because every load is idempotent.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from application.files import sync_directory, write_atomically
from ingest.watch import (
    INCOMPLETE_SUFFIXES,
    complete_files,
    is_complete,
    scan_until_stopped,
)

DIRECTORIES = ("rated", "unrated", "openet", "ocs")

_LONGEST_NAME = 200  # bytes of UTF-8; leaves room for suffixes under NAME_MAX
_BLOCK = 1 << 20
_FIRST_DELAY = 1.0
_LONGEST_DELAY = 300.0

logger = logging.getLogger("monetise.inbound")


class FileRefused(Exception):
    """Raised by a handler for a file that will never load as it is."""

    def __init__(
        self, code: str, reason: str, details: dict[str, object] | None = None
    ) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.details = details


Handler = Callable[[Path], None]  # gets the path in processing/


@dataclass(frozen=True)
class Handled:
    """What became of one file."""

    name: str  # original name
    outcome: str  # "archived" | "quarantined" | "retry"
    path: Path  # where the file is now
    code: str | None = None
    reason: str | None = None


def ensure_directories(home: Path) -> None:
    """Create the inbound directories and the roots the daemons move files to."""
    for directory in DIRECTORIES:
        (home / "inbound" / directory).mkdir(parents=True, exist_ok=True)
    for root in ("processing", "archive", "quarantine"):
        (home / root).mkdir(parents=True, exist_ok=True)


def safe_file_name(name: str) -> str:
    """Return ``name`` if it is safe as a file name from a user; else ValueError.

    It must name one file a daemon will take: no path separators or traversal,
    nothing a daemon skips, nothing that garbles terminals or logs.
    """
    if not name:
        raise ValueError("the file name is empty")
    if "/" in name or "\\" in name:
        raise ValueError(f"the file name {name!r} contains a path separator")
    if any(unicodedata.category(char) == "Cc" for char in name):
        raise ValueError(f"the file name {name!r} contains a control character")
    if name.startswith("."):  # also "." and ".."
        raise ValueError(f"the file name {name!r} starts with '.'")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError as error:
        raise ValueError(f"the file name {name!r} is not valid Unicode") from error
    if size > _LONGEST_NAME:
        raise ValueError(f"the file name is {size} bytes long; at most 200 allowed")
    if name.endswith(INCOMPLETE_SUFFIXES):
        raise ValueError(f"the file name {name!r} ends in .tmp or .part (unfinished)")
    return name


def write_inbound(
    home: Path, directory: str, name: str, chunks: Iterable[bytes]
) -> Path:
    """Write a file into ``inbound/<directory>/`` so that it appears whole.

    Raises ValueError for a bad name or directory and FileExistsError if a
    file of that name is already waiting. Returns the final path.
    """
    if directory not in DIRECTORIES:
        raise ValueError(f"unknown inbound directory {directory!r}")
    safe_file_name(name)
    folder = home / "inbound" / directory
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, "an inbound file already exists", target)
    temporary = folder / f".{name}.{uuid.uuid4().hex}.tmp"  # daemons skip it
    try:
        with temporary.open("xb") as stream:
            for chunk in chunks:
                stream.write(chunk)
            stream.flush()
            os.fsync(stream.fileno())
        # os.link refuses an existing target, so check and "rename" are one
        # atomic step (os.rename would replace a file that appeared since the
        # check); rename is the fallback where the file system has no links.
        try:
            os.link(temporary, target)
        except FileExistsError:
            raise
        except OSError:
            if os.path.lexists(target):
                raise FileExistsError(errno.EEXIST, "already exists", target) from None
            os.rename(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    sync_directory(folder)
    return target


def sha256_of(path: Path) -> str:
    """The SHA-256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")


def _free_name(directory: Path, name: str, sidecar: str = "") -> Path:
    """``directory/name``, or ``name.<UTC timestamp>`` if that is taken."""
    # Only this daemon writes into its own archive/quarantine directory, so
    # checking first cannot race with another writer.
    candidate = name
    while os.path.lexists(directory / candidate) or (
        sidecar and os.path.lexists(directory / f"{candidate}{sidecar}")
    ):
        candidate = f"{name}.{_utc_stamp()}"
    return directory / candidate


def _move(source: Path, target: Path) -> None:
    """Move a file, durably; across file systems copy first, delete last."""
    try:
        os.rename(source, target)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            with source.open("rb") as reader, temporary.open("xb") as writer:
                shutil.copyfileobj(reader, writer, _BLOCK)
                writer.flush()
                os.fsync(writer.fileno())
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        sync_directory(target.parent)
        source.unlink()  # only now that the copy is durable
    sync_directory(target.parent)
    sync_directory(source.parent)


class InboundDaemon:
    """Takes complete files from one inbound directory and hands each to ``handler``."""

    def __init__(
        self,
        name: str,
        home: Path,
        directory: str,
        handler: Handler,
        *,
        poll_interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if directory not in DIRECTORIES:
            raise ValueError(f"unknown inbound directory {directory!r}")
        self.name = safe_file_name(name)  # it names directories
        self.home = home
        self.inbound = home / "inbound" / directory
        self.processing = home / "processing" / name
        self.archive = home / "archive" / name
        self.quarantine = home / "quarantine" / name
        self._handler = handler
        self._poll_interval = poll_interval
        self._clock = clock
        # Per file name: failures so far and the clock time of the next attempt.
        self._backoff: dict[str, tuple[int, float]] = {}

    def _prepare(self) -> None:
        ensure_directories(self.home)
        for directory in (self.processing, self.archive, self.quarantine):
            directory.mkdir(parents=True, exist_ok=True)

    def scan_once(self) -> list[Handled]:
        """Handle what is left in processing/, then what waits in inbound/."""
        self._prepare()
        now = self._clock()
        handled: list[Handled] = []
        for path in complete_files(self.processing):
            failed = self._backoff.get(path.name)
            if failed is None or now >= failed[1]:
                handled.append(self._process(path))
        for path in complete_files(self.inbound):
            taken = self.processing / path.name
            if os.path.lexists(taken):
                continue  # an earlier file of that name is pending; never replace it
            try:
                _move(path, taken)
            except FileNotFoundError:
                continue  # another process took it first
            except OSError:
                logger.exception("%s: cannot take %s", self.name, path)
                continue
            handled.append(self._process(taken))
        return handled

    def handle_file(self, path: Path) -> Handled:
        """Take a file from anywhere on this machine and handle it right away."""
        self._prepare()
        safe_file_name(path.name)
        if not is_complete(path):
            raise ValueError(f"{path} is not a regular file")
        taken = self.processing / path.name
        if path.resolve() != taken.resolve():
            if os.path.lexists(taken):
                raise FileExistsError(
                    errno.EEXIST, "a file of that name is being processed", taken
                )
            _move(path, taken)
        return self._process(taken)

    def run(self, stop: threading.Event) -> None:
        """Scan now, then on every change in inbound/ or poll, until ``stop``."""
        self._prepare()
        scan_until_stopped(self.inbound, self.scan_once, self._poll_interval, stop)

    def _process(self, path: Path) -> Handled:
        name = path.name
        try:
            try:
                self._handler(path)
            except FileRefused as refusal:
                handled = self._refuse(path, refusal)
            else:
                handled = self._archive(path)
        except Exception as error:
            return self._retry(path, error)
        self._backoff.pop(name, None)
        return handled

    def _archive(self, path: Path) -> Handled:
        target = _free_name(self.archive, path.name)
        _move(path, target)
        logger.info("%s: %s archived as %s", self.name, path.name, target)
        return Handled(path.name, "archived", target)

    def _refuse(self, path: Path, refusal: FileRefused) -> Handled:
        details = refusal.details or {}
        given = details.get("sha256")
        target = _free_name(self.quarantine, path.name, ".error.json")
        report = {
            "file": path.name,
            "daemon": self.name,
            "code": refusal.code,
            "reason": refusal.reason,
            "details": details,
            "refused_at": datetime.now(UTC).isoformat(),
            "sha256": given if isinstance(given, str) else sha256_of(path),
        }
        text = json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n"
        # The reason goes first, so that a quarantined file is never without it.
        write_atomically(target.with_name(f"{target.name}.error.json"), [text])
        _move(path, target)
        logger.warning("%s: %s refused (%s), now %s", self.name, path, refusal, target)
        return Handled(path.name, "quarantined", target, refusal.code, refusal.reason)

    def _retry(self, path: Path, error: Exception) -> Handled:
        failures = self._backoff.get(path.name, (0, 0.0))[0] + 1
        delay = min(_FIRST_DELAY * 2 ** (failures - 1), _LONGEST_DELAY)
        self._backoff[path.name] = (failures, self._clock() + delay)
        logger.exception("%s: %s failed; retry in %g s", self.name, path, delay)
        reason = f"{type(error).__name__}: {error}"
        return Handled(path.name, "retry", path, reason=reason)
