"""Files that readers see whole or not at all (outbox messages, inbound files)."""

from __future__ import annotations

import contextlib
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


def write_new_files(
    files: Sequence[tuple[str, str]], pool: Executor | None = None
) -> list[str]:
    """Write each ``(path, text)`` atomically unless ``path`` already exists.

    Directories are made as needed. Each file is synced before it is renamed
    into place; each directory is synced once, after its last rename, so every
    file is durable on return. ``pool``: threads to write several files at
    once (syncing is mostly waiting for the disk). Returns per file
    ``"written"``, ``"exists"`` or why it failed.
    """
    directories: dict[Path, None] = {}

    def write(name: str, text: str) -> str:
        path = Path(name)
        try:
            if path.parent not in directories:
                path.parent.mkdir(parents=True, exist_ok=True)
                directories[path.parent] = None
            if path.exists():
                return EXISTS
            write_atomically(path, [text], sync_parent=False)
        except OSError as error:
            return str(error) or type(error).__name__
        return WRITTEN

    names, texts = [name for name, _ in files], [text for _, text in files]
    results = list((pool.map if pool else map)(write, names, texts))
    for directory in list(directories):
        sync_directory(directory)
    return results


class BatchWriter:
    """Writes batches of new files (``write_new_files``) in a helper process.

    ``submit`` returns at once with a future of the results; batches are
    written in the order submitted. The helper starts with the first batch
    and stops when the writer is closed or this process ends, once it has
    written every batch it was given (a message recorded as sent is still
    delivered; recovery finds it in the outbox).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the pending futures, the process
        self._writing = threading.Lock()  # one batch on the pipe at a time
        self._process: subprocess.Popen[bytes] | None = None
        self._pending: deque[Future[list[str]]] = deque()

    def submit(self, files: Sequence[tuple[str, str]]) -> Future[list[str]]:
        future: Future[list[str]] = Future()
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
                [sys.executable, "-m", "application.files"],
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
                results = json.loads(process.stdout.readline() or b"null")
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
        files = [(str(p), str(t)) for p, t in json.loads(line)]
        results = write_new_files(files, pool)
        if not reporting:
            continue  # the caller has gone: what it asked for is still written
        try:
            sys.stdout.buffer.write(json.dumps(results).encode() + b"\n")
            sys.stdout.buffer.flush()
        except OSError:
            reporting = False


if __name__ == "__main__":
    _serve()
