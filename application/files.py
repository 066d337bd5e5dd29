"""Files that readers see whole or not at all (outbox messages, inbound files)."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
import subprocess
import sys
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson


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


# --- many files at once, in a helper process ------------------------------------
#
# Creating a file and syncing it is kernel work and waiting for the disk (0.3 to
# 1.5 ms a file on the machine measured). A thread would share the interpreter
# lock with a busy caller and wait for it after every system call (measured: 20
# times slower); a helper process does the work on another core while the
# caller goes on.

WRITTEN, EXISTS = "written", "exists"
BATCH_WRITER_MIN_FILES = 32  # fewer are written at once, in the caller
_WRITER_THREADS = 4
_OPEN_AT_ONCE = 256  # files written and synced together (open descriptors)


def write_new_files(
    files: Sequence[tuple[str, str]], pool: Executor | None = None
) -> list[str]:
    """Write each ``(path, text)`` atomically unless ``path`` already exists.

    Directories are made as needed. Each file is synced before it is renamed
    into place; each directory is synced once, after its last rename, so every
    file is durable on return. ``pool``: threads to sync several files at once
    (syncing is mostly waiting for the disk). Returns per file ``"written"``,
    ``"exists"`` or why it failed.

    The files of a batch are written first and synced after, all of them
    before the first rename: a sync then finds the others' new entries
    already in the journal, and one commit serves many files (measured: half
    the CPU of writing, syncing and renaming each file in turn).
    """
    results = [""] * len(files)
    directories: dict[str, None] = {}
    for start in range(0, len(files), _OPEN_AT_ONCE):
        written: list[tuple[int, int, str]] = []  # index, descriptor, temporary
        try:
            for index in range(start, min(start + _OPEN_AT_ONCE, len(files))):
                name, text = files[index]
                try:
                    directory = os.path.dirname(name)
                    if directory not in directories:
                        os.makedirs(directory or ".", exist_ok=True)
                        directories[directory] = None
                    if os.path.exists(name):
                        results[index] = EXISTS
                        continue
                    descriptor, temporary = _write_temporary(name, text)
                except OSError as error:
                    results[index] = str(error) or type(error).__name__
                    continue
                written.append((index, descriptor, temporary))
            if len(written) > 1:
                _sync_file_system(written[0][1])
            synced = list(
                (pool.map if pool else map)(_synced, [d for _, d, _ in written])
            )
            for (index, descriptor, temporary), failed in zip(
                written, synced, strict=True
            ):
                os.close(descriptor)
                try:
                    if failed is not None:
                        raise failed
                    _rename(temporary, files[index][0])
                except OSError as error:
                    with contextlib.suppress(OSError):
                        os.unlink(temporary)
                    results[index] = str(error) or type(error).__name__
                    continue
                results[index] = WRITTEN
            written = []
        finally:
            for _, descriptor, temporary in written:  # an unexpected error
                with contextlib.suppress(OSError):
                    os.close(descriptor)
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
    for directory in directories:
        sync_directory(Path(directory or "."))
    return results


def _sync_file_system(descriptor: int) -> None:
    """Write out the file system of ``descriptor`` at once (Linux ``syncfs``),
    so that syncing each file after finds little left to do.

    Syncing many new files one by one costs a journal commit each; one
    ``syncfs`` commits them all together. Each file is still synced on its
    own after it: that reports its own write errors, and only that makes it
    durable where ``syncfs`` is missing (nothing happens then).
    """
    if _SYNCFS is not None:
        _SYNCFS(descriptor)


def _load_syncfs() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


_SYNCFS = _load_syncfs()


def _write_temporary(name: str, text: str) -> tuple[int, str]:
    """``text`` in a new dot-file beside ``name`` (which watchers skip), not
    yet synced; returns its open descriptor and its name."""
    directory, base = os.path.split(name)
    temporary = os.path.join(directory, f".{base}.{uuid.uuid4().hex}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    descriptor = os.open(temporary, flags, 0o666)
    try:
        data = memoryview(text.encode("utf-8"))
        while data:
            data = data[os.write(descriptor, data) :]
    except BaseException:
        os.close(descriptor)
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return descriptor, temporary


def _synced(descriptor: int) -> OSError | None:
    try:
        os.fsync(descriptor)
    except OSError as error:
        return error
    return None


def _rename(temporary: str, name: str) -> None:
    """Put a synced file in place (one function, so that a test can pace it)."""
    os.replace(temporary, name)


class BatchWriter:
    """Writes batches of new files (``write_new_files``) in a helper process.

    ``submit`` returns at once with a future of the results; batches are
    written in the order submitted. The helper starts with the first batch
    and stops when the writer is closed or this process ends, once it has
    written every batch it was given (a message recorded as sent is still
    delivered; recovery finds it in the outbox).
    """

    def __init__(self, command: Sequence[str] | None = None) -> None:
        # The helper's command line: this module, unless a test paces it.
        self.command = list(command or [sys.executable, "-m", "application.files"])
        self._lock = threading.Lock()  # the pending futures, the process
        self._writing = threading.Lock()  # one batch on the pipe at a time
        self._process: subprocess.Popen[bytes] | None = None
        self._pending: deque[Future[list[str]]] = deque()

    def submit(self, files: Sequence[tuple[str, str]]) -> Future[list[str]]:
        future: Future[list[str]] = Future()
        try:
            line = orjson.dumps(list(files)) + b"\n"
        except orjson.JSONEncodeError:  # text only json writes (lone surrogates)
            line = json.dumps(list(files)).encode() + b"\n"
        with self._writing:
            try:
                with self._lock:
                    process = self._started()
                    self._pending.append(future)
                assert process.stdin is not None
                # Outside the lock: the results of a batch before need it.
                process.stdin.write(line)
                process.stdin.flush()
            except (OSError, ValueError) as error:
                with self._lock:
                    if future in self._pending:
                        self._pending.remove(future)
                if not future.done():
                    future.set_exception(OSError(f"the file writer stopped: {error}"))
        return future

    def close(self) -> None:
        """Stop the helper once it has written what it was given."""
        with self._writing, self._lock:
            process, self._process = self._process, None
        if process is not None:
            assert process.stdin is not None
            with contextlib.suppress(OSError):
                process.stdin.close()
            process.wait()

    def _started(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            # The helper imports this module only: it starts in milliseconds.
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
            process = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
            threading.Thread(
                target=self._read_results,
                args=(process,),
                name="monetise-file-writer",
                daemon=True,
            ).start()
            self._process = process
        return self._process

    def _read_results(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        while True:
            try:
                results = orjson.loads(process.stdout.readline() or b"null")
            except (OSError, ValueError):
                break
            if results is None:
                break  # the helper ended
            with self._lock:
                future = self._pending.popleft()
            future.set_result(results)
        with self._lock:
            if self._process is process:
                self._process = None
            # Whatever the helper did not report may or may not be written:
            # the caller checks before writing again (files are never doubled).
            while self._pending:
                self._pending.popleft().set_exception(
                    OSError("the file writer stopped before it reported")
                )
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(10)  # not left a zombie


def _serve() -> None:
    """The helper process: a batch a line on stdin, its results a line on stdout.

    Batches are read as soon as they come, so that the caller never waits
    for the pipe while a batch before is being written.
    """
    batches: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

    def read() -> None:
        for line in sys.stdin.buffer:
            batches.put(line)
        batches.put(None)

    threading.Thread(target=read, daemon=True).start()
    # Measured: four threads write three times as many files a second as one
    # (each mostly waits for its sync); the CPU per file stays the same.
    pool = ThreadPoolExecutor(_WRITER_THREADS)
    reporting = True
    while (line := batches.get()) is not None:
        files = [(str(p), str(t)) for p, t in orjson.loads(line)]
        results = write_new_files(files, pool)
        if not reporting:
            continue  # the caller has gone: what it asked for is still written
        try:
            sys.stdout.buffer.write(orjson.dumps(results) + b"\n")
            sys.stdout.buffer.flush()
        except OSError:
            reporting = False


if __name__ == "__main__":
    _serve()
