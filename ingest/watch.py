"""Noticing complete files in an inbound directory, and when to look again.

A file is complete once its writer has renamed it into place (writers write
``NAME.tmp``, ``NAME.part`` or a dot-file first); symlinks and directories are
never taken, as a link could point anywhere. Polling alone would make every
file wait up to a poll interval, so inotify (via ``watchdog``) wakes the daemon
at once. The watcher is only a hint: the daemon still polls, so a lost event,
an exhausted inotify limit or a missing ``watchdog`` costs latency, never a file.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watchdog.events import FileSystemEvent
    from watchdog.observers.api import BaseObserver

logger = logging.getLogger("monetise.inbound")

INCOMPLETE_SUFFIXES = (".tmp", ".part")

# A stop request is noticed within this many seconds even while no file
# arrives, without making the caller juggle two events.
_SLICE = 0.2


def _complete_name(name: str) -> bool:
    return not name.startswith(".") and not name.endswith(INCOMPLETE_SUFFIXES)


def is_complete(path: Path) -> bool:
    """Whether ``path`` is a finished file a daemon may take (never a symlink)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    return stat.S_ISREG(mode) and _complete_name(path.name)


def complete_files(directory: Path) -> list[Path]:
    """The complete files in ``directory``, oldest modification first."""
    found: list[tuple[int, str, Path]] = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if not _complete_name(entry.name):
                continue
            try:
                if entry.is_file(follow_symlinks=False):
                    mtime = entry.stat(follow_symlinks=False).st_mtime_ns
                    found.append((mtime, entry.name, Path(entry.path)))
            except FileNotFoundError:
                continue  # taken or renamed while we looked
    found.sort()
    return [path for _, _, path in found]


def observe(directory: Path, changed: threading.Event) -> BaseObserver:
    """Start a watchdog observer that sets ``changed`` on any event in ``directory``.

    Imported lazily so that an environment without ``watchdog`` (or whose
    inotify cannot start) degrades to polling instead of failing to import.
    """
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    class _Wake(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            changed.set()

    observer = Observer()
    observer.schedule(_Wake(), str(directory), recursive=False)
    observer.daemon = True  # never keep the process alive on its own
    observer.start()
    return observer


class DirectoryWatcher:
    """Tells its owner when ``directory`` may have changed, or that it should poll."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.changed = threading.Event()
        self._observer: BaseObserver | None = None

    def start(self) -> bool:
        """Start watching; False means the caller has to rely on polling alone."""
        try:
            self._observer = observe(self.directory, self.changed)
        except Exception:  # ImportError, OSError (inotify limits), anything else
            logger.warning(
                "cannot watch %s; polling it instead", self.directory, exc_info=True
            )
            return False
        return True

    def wait(self, timeout: float, stop: threading.Event) -> bool:
        """Wait for a change, ``stop`` or ``timeout`` seconds; True on a change.

        The change flag is cleared on return, so that an event arriving while
        the caller scans sets it again and the next wait returns at once.
        """
        deadline = time.monotonic() + timeout
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self.changed.wait(min(remaining, _SLICE)):
                self.changed.clear()
                return True
        return False

    def stop(self) -> None:
        """Stop the observer thread, if one was started."""
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)


def scan_until_stopped(
    directory: Path,
    scan: Callable[[], object],
    poll_interval: float,
    stop: threading.Event,
) -> None:
    """Call ``scan`` now, then on each change in ``directory`` or poll, until ``stop``.

    A scan that raises is logged and the loop goes on: one bad scan (a full
    disk, a permission slip) must not end the daemon.
    """
    watcher = DirectoryWatcher(directory)
    watcher.start()
    try:
        while not stop.is_set():
            try:
                scan()
            except Exception:
                logger.exception("scan of %s failed", directory)
            watcher.wait(poll_interval, stop)
    finally:
        watcher.stop()
