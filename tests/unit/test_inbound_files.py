"""The life of an inbound file: taken when complete, archived, quarantined, retried.

Pure file-system tests in a temporary home; handlers are plain functions, so
no database is involved.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

import ingest.watch
from ingest.inbound import (
    DIRECTORIES,
    FileRefused,
    Handled,
    InboundDaemon,
    ensure_directories,
    safe_file_name,
    sha256_of,
    write_inbound,
)
from ingest.watch import DirectoryWatcher

STAMPED = r"\.\d{8}T\d{12}"  # NAME.<UTC timestamp YYYYmmddTHHMMSSffffff>


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    """A handler that remembers what it was given and can be told to fail."""

    def __init__(self, fail: Callable[[Path], None] | None = None) -> None:
        self.seen: list[Path] = []
        self.contents: list[bytes] = []
        self.fail = fail
        self.called = threading.Event()

    def __call__(self, path: Path) -> None:
        self.seen.append(path)
        self.contents.append(path.read_bytes())
        self.called.set()
        if self.fail is not None:
            self.fail(path)


def refuse(path: Path) -> None:
    raise FileRefused("bad-header", "the first line is not a header", {"line": 1})


def drop(home: Path, name: str, content: bytes = b"usage\n") -> Path:
    path = home / "inbound" / "rated" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def daemon(
    home: Path,
    handler: Callable[[Path], None],
    *,
    poll_interval: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
) -> InboundDaemon:
    return InboundDaemon(
        "rated", home, "rated", handler, poll_interval=poll_interval, clock=clock
    )


def files(directory: Path) -> list[str]:
    return (
        sorted(path.name for path in directory.iterdir()) if directory.exists() else []
    )


# --- which files are taken -------------------------------------------------


def test_only_complete_regular_files_are_taken(tmp_path: Path) -> None:
    inbound = tmp_path / "inbound" / "rated"
    drop(tmp_path, "usage.csv")
    drop(tmp_path, ".usage2.csv")
    drop(tmp_path, "usage3.csv.tmp")
    drop(tmp_path, "usage4.csv.part")
    (inbound / "a-directory").mkdir()
    outside = tmp_path / "outside.csv"
    outside.write_bytes(b"not yours\n")
    (inbound / "link.csv").symlink_to(outside)
    handler = Recorder()

    handled = daemon(tmp_path, handler).scan_once()

    assert [h.name for h in handled] == ["usage.csv"]
    assert [p.name for p in handler.seen] == ["usage.csv"]
    assert files(inbound) == [
        ".usage2.csv",
        "a-directory",
        "link.csv",
        "usage3.csv.tmp",
        "usage4.csv.part",
    ]
    assert outside.read_bytes() == b"not yours\n"


def test_the_handler_reads_the_file_from_processing(tmp_path: Path) -> None:
    drop(tmp_path, "usage.csv", b"a,b\n")
    handler = Recorder()

    daemon(tmp_path, handler).scan_once()

    assert handler.seen == [tmp_path / "processing" / "rated" / "usage.csv"]
    assert handler.contents == [b"a,b\n"]


def test_inbound_files_are_taken_oldest_first(tmp_path: Path) -> None:
    for name, age in [("b.csv", 10), ("a.csv", 5), ("c.csv", 30)]:
        path = drop(tmp_path, name)
        moment = datetime(2025, 1, 1).timestamp() - age  # noqa: DTZ001
        os.utime(path, (moment, moment))
    handler = Recorder()

    daemon(tmp_path, handler).scan_once()

    assert [p.name for p in handler.seen] == ["c.csv", "b.csv", "a.csv"]


def test_leftovers_in_processing_are_handled_before_the_inbound_directory(
    tmp_path: Path,
) -> None:
    drop(tmp_path, "new.csv")
    leftover = tmp_path / "processing" / "rated" / "interrupted.csv"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half loaded before a crash\n")
    handler = Recorder()

    handled = daemon(tmp_path, handler).scan_once()

    assert [h.name for h in handled] == ["interrupted.csv", "new.csv"]
    assert files(tmp_path / "archive" / "rated") == ["interrupted.csv", "new.csv"]
    assert files(tmp_path / "processing" / "rated") == []


# --- archive ---------------------------------------------------------------


def test_a_handled_file_is_archived(tmp_path: Path) -> None:
    drop(tmp_path, "usage.csv", b"a,b\n")

    [handled] = daemon(tmp_path, Recorder()).scan_once()

    archived = tmp_path / "archive" / "rated" / "usage.csv"
    assert handled == Handled("usage.csv", "archived", archived)
    assert archived.read_bytes() == b"a,b\n"
    assert files(tmp_path / "inbound" / "rated") == []
    assert files(tmp_path / "processing" / "rated") == []


def test_the_archive_never_overwrites_an_earlier_file_of_the_same_name(
    tmp_path: Path,
) -> None:
    archive = tmp_path / "archive" / "rated"
    archive.mkdir(parents=True)
    (archive / "usage.csv").write_bytes(b"first\n")
    drop(tmp_path, "usage.csv", b"second\n")

    [handled] = daemon(tmp_path, Recorder()).scan_once()

    assert (archive / "usage.csv").read_bytes() == b"first\n"
    assert re.fullmatch("usage\\.csv" + STAMPED, handled.path.name)
    assert handled.path.read_bytes() == b"second\n"


# --- quarantine ------------------------------------------------------------


def test_a_refused_file_is_quarantined_with_its_reason_beside_it(
    tmp_path: Path,
) -> None:
    drop(tmp_path, "usage.csv", b"garbage\n")
    before = datetime.now().astimezone()

    [handled] = daemon(tmp_path, refuse).scan_once()

    quarantined = tmp_path / "quarantine" / "rated" / "usage.csv"
    assert handled == Handled(
        "usage.csv",
        "quarantined",
        quarantined,
        "bad-header",
        "the first line is not a header",
    )
    assert quarantined.read_bytes() == b"garbage\n"
    error = quarantined.with_name("usage.csv.error.json")
    text = error.read_text(encoding="utf-8")
    report = json.loads(text)
    assert text.startswith('{\n  "file"')  # pretty, indent 2
    refused_at = datetime.fromisoformat(report.pop("refused_at"))
    assert refused_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= refused_at
    assert report == {
        "file": "usage.csv",
        "daemon": "rated",
        "code": "bad-header",
        "reason": "the first line is not a header",
        "details": {"line": 1},
        "sha256": hashlib.sha256(b"garbage\n").hexdigest(),
    }
    assert files(tmp_path / "quarantine" / "rated") == [
        "usage.csv",
        "usage.csv.error.json",
    ]
    assert files(tmp_path / "processing" / "rated") == []


def test_a_refusal_may_bring_its_own_digest_and_any_details(tmp_path: Path) -> None:
    def refuse_with_digest(path: Path) -> None:
        details: dict[str, object] = {"sha256": "ab" * 32, "total": Decimal("1.50")}
        raise FileRefused("duplicate", "already loaded", details)

    drop(tmp_path, "usage.csv")

    [handled] = daemon(tmp_path, refuse_with_digest).scan_once()

    report = json.loads(handled.path.with_name("usage.csv.error.json").read_text())
    assert report["sha256"] == "ab" * 32
    assert report["details"] == {"sha256": "ab" * 32, "total": "1.50"}


def test_a_refusal_without_details_reports_empty_details(tmp_path: Path) -> None:
    def refuse_plainly(path: Path) -> None:
        raise FileRefused("empty", "the file has no records")

    drop(tmp_path, "usage.csv")

    [handled] = daemon(tmp_path, refuse_plainly).scan_once()

    report = json.loads(handled.path.with_name("usage.csv.error.json").read_text())
    assert report["details"] == {}


def test_the_quarantine_never_overwrites_an_earlier_refusal(tmp_path: Path) -> None:
    refuser = daemon(tmp_path, refuse)
    drop(tmp_path, "usage.csv", b"first\n")
    [first] = refuser.scan_once()
    drop(tmp_path, "usage.csv", b"second\n")

    [second] = refuser.scan_once()

    quarantine = tmp_path / "quarantine" / "rated"
    assert first.path == quarantine / "usage.csv"
    assert first.path.read_bytes() == b"first\n"
    assert re.fullmatch("usage\\.csv" + STAMPED, second.path.name)
    assert second.path.read_bytes() == b"second\n"
    assert len(files(quarantine)) == 4
    report = json.loads((quarantine / f"{second.path.name}.error.json").read_text())
    assert report["file"] == "usage.csv"
    assert report["sha256"] == hashlib.sha256(b"second\n").hexdigest()


# --- unexpected failures ---------------------------------------------------


def test_an_unexpected_failure_leaves_the_file_in_processing_and_retries_after_backoff(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    failures = iter([RuntimeError("database away"), RuntimeError("still away")])

    def flaky(path: Path) -> None:
        error = next(failures, None)
        if error is not None:
            raise error

    clock = Clock()
    handler = Recorder(flaky)
    loader = daemon(tmp_path, handler, clock=clock)
    drop(tmp_path, "usage.csv")
    processing = tmp_path / "processing" / "rated" / "usage.csv"

    with caplog.at_level(logging.ERROR, logger="monetise.inbound"):
        [first] = loader.scan_once()
    assert first == Handled(
        "usage.csv", "retry", processing, reason="RuntimeError: database away"
    )
    assert processing.exists()
    [record] = caplog.records
    assert record.name == "monetise.inbound"
    assert record.exc_info is not None
    assert "database away" in caplog.text  # with the traceback

    clock.now += 0.9
    assert loader.scan_once() == []  # 1 s has not passed yet
    clock.now += 0.1
    assert [h.outcome for h in loader.scan_once()] == ["retry"]
    clock.now += 1.9
    assert loader.scan_once() == []  # the delay doubled to 2 s
    clock.now += 0.1
    assert [h.outcome for h in loader.scan_once()] == ["archived"]
    assert len(handler.seen) == 3
    assert files(tmp_path / "archive" / "rated") == ["usage.csv"]


def test_the_backoff_doubles_up_to_five_minutes(tmp_path: Path) -> None:
    def broken(path: Path) -> None:
        raise OSError("disk on fire")

    clock = Clock()
    loader = daemon(tmp_path, broken, clock=clock)
    drop(tmp_path, "usage.csv")
    assert [h.outcome for h in loader.scan_once()] == ["retry"]

    delays = []
    for _ in range(12):
        waited = 0.0
        while not loader.scan_once():
            clock.now += 0.5
            waited += 0.5
        delays.append(waited)

    assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
    assert files(tmp_path / "processing" / "rated") == ["usage.csv"]


def test_a_new_file_never_replaces_a_pending_one_of_the_same_name(
    tmp_path: Path,
) -> None:
    def broken(path: Path) -> None:
        raise RuntimeError("not now")

    loader = daemon(tmp_path, broken, clock=Clock())
    drop(tmp_path, "usage.csv", b"first\n")
    loader.scan_once()
    drop(tmp_path, "usage.csv", b"second\n")

    assert loader.scan_once() == []

    processing = tmp_path / "processing" / "rated" / "usage.csv"
    assert processing.read_bytes() == b"first\n"
    assert (tmp_path / "inbound" / "rated" / "usage.csv").read_bytes() == b"second\n"


def test_a_failing_file_does_not_hold_up_the_others(tmp_path: Path) -> None:
    def picky(path: Path) -> None:
        if path.name == "bad.csv":
            raise ValueError("cannot parse")

    drop(tmp_path, "bad.csv")
    drop(tmp_path, "good.csv")

    handled = daemon(tmp_path, picky).scan_once()

    assert sorted((h.name, h.outcome) for h in handled) == [
        ("bad.csv", "retry"),
        ("good.csv", "archived"),
    ]


# --- the running daemon ----------------------------------------------------


@pytest.fixture
def running() -> Iterator[Callable[[InboundDaemon], None]]:
    """Starts daemons in threads and always stops them."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(loader: InboundDaemon) -> None:
        thread = threading.Thread(target=loader.run, args=(stop,), daemon=True)
        thread.start()
        threads.append(thread)

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()


def test_run_picks_up_a_file_dropped_after_it_started(
    tmp_path: Path, running: Callable[[InboundDaemon], None]
) -> None:
    handler = Recorder()
    loader = daemon(tmp_path, handler, poll_interval=0.05)
    ensure_directories(tmp_path)
    running(loader)

    drop(tmp_path, "late.csv")

    assert handler.called.wait(timeout=30)
    assert [p.name for p in handler.seen] == ["late.csv"]


def test_run_stops_when_asked(tmp_path: Path) -> None:
    stop = threading.Event()
    thread = threading.Thread(
        target=daemon(tmp_path, Recorder(), poll_interval=3600).run, args=(stop,)
    )
    thread.start()
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()


def _without_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "watchdog.observers", None)


def _inotify_exhausted(monkeypatch: pytest.MonkeyPatch) -> None:
    def observe(directory: Path, changed: threading.Event) -> None:
        raise OSError(errno.EMFILE, "inotify instance limit reached")

    monkeypatch.setattr(ingest.watch, "observe", observe)


@pytest.mark.parametrize("unavailable", [_without_watchdog, _inotify_exhausted])
def test_run_falls_back_to_polling_when_the_watcher_is_unavailable(
    tmp_path: Path,
    running: Callable[[InboundDaemon], None],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    unavailable: Callable[[pytest.MonkeyPatch], None],
) -> None:
    unavailable(monkeypatch)
    assert not DirectoryWatcher(tmp_path).start()
    handler = Recorder()
    loader = daemon(tmp_path, handler, poll_interval=0.05)

    with caplog.at_level(logging.WARNING, logger="monetise.inbound"):
        running(loader)
        drop(tmp_path, "late.csv")
        assert handler.called.wait(timeout=30)

    assert "polling" in caplog.text


def test_run_survives_a_scan_that_fails(
    tmp_path: Path,
    running: Callable[[InboundDaemon], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handler = Recorder()
    loader = daemon(tmp_path, handler, poll_interval=0.05)
    real_scan = loader.scan_once
    calls = iter([PermissionError("inbound unreadable")])

    def scan_once() -> list[Handled]:
        error = next(calls, None)
        if error is not None:
            raise error
        return real_scan()

    monkeypatch.setattr(loader, "scan_once", scan_once)
    running(loader)
    drop(tmp_path, "usage.csv")

    assert handler.called.wait(timeout=30)


def test_the_watcher_notices_a_new_file(tmp_path: Path) -> None:
    watcher = DirectoryWatcher(tmp_path)
    # Linux, where monetise runs, has inotify: the watcher must start.
    assert watcher.start(), "the inotify watcher did not start"
    try:
        (tmp_path / "usage.csv").write_bytes(b"x\n")
        assert watcher.changed.wait(timeout=30)
    finally:
        watcher.stop()


# --- file names from users -------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../../etc/passwd",
        "a/b",
        "a\\b",
        ".",
        "..",
        ".hidden",
        "x\x00y",
        "line\nbreak",
        "bell\x07",
        "c1\x85control",
        "name.tmp",
        "name.part",
        "é" * 101,  # 202 bytes of UTF-8
        "bad\udcffsurrogate",
    ],
)
def test_an_unsafe_file_name_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="file name"):
        safe_file_name(name)


@pytest.mark.parametrize(
    "name",
    ["usage.csv", "Verbrauch März 2025.csv", "a" * 200, "a.tmp.csv", "x..y"],
)
def test_a_safe_file_name_is_returned(name: str) -> None:
    assert safe_file_name(name) == name


# --- writing inbound files -------------------------------------------------


def test_write_inbound_makes_the_file_appear_whole(tmp_path: Path) -> None:
    target = tmp_path / "inbound" / "unrated" / "usage.csv"

    def chunks() -> Iterator[bytes]:
        for part in (b"a,b\n", b"1,2\n"):
            assert not target.exists()  # nobody sees it half written
            yield part

    assert write_inbound(tmp_path, "unrated", "usage.csv", chunks()) == target
    assert target.read_bytes() == b"a,b\n1,2\n"
    assert files(target.parent) == ["usage.csv"]  # no temporary left behind


def test_write_inbound_leaves_nothing_when_the_upload_breaks(tmp_path: Path) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"a,b\n"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError):
        write_inbound(tmp_path, "rated", "usage.csv", chunks())

    assert files(tmp_path / "inbound" / "rated") == []


def test_write_inbound_refuses_an_existing_name(tmp_path: Path) -> None:
    write_inbound(tmp_path, "ocs", "usage.csv", [b"first\n"])

    with pytest.raises(FileExistsError):
        write_inbound(tmp_path, "ocs", "usage.csv", [b"second\n"])

    assert (tmp_path / "inbound" / "ocs" / "usage.csv").read_bytes() == b"first\n"
    assert files(tmp_path / "inbound" / "ocs") == ["usage.csv"]


def test_write_inbound_refuses_a_name_that_appears_while_it_writes(
    tmp_path: Path,
) -> None:
    target = tmp_path / "inbound" / "rated" / "usage.csv"

    def chunks() -> Iterator[bytes]:
        target.write_bytes(b"someone else's\n")
        yield b"mine\n"

    with pytest.raises(FileExistsError):
        write_inbound(tmp_path, "rated", "usage.csv", chunks())

    assert target.read_bytes() == b"someone else's\n"
    assert files(target.parent) == ["usage.csv"]


@pytest.mark.parametrize(
    ("directory", "name"),
    [("rated", "../escape.csv"), ("rated", ".hidden"), ("secret", "usage.csv")],
)
def test_write_inbound_refuses_bad_names_and_directories(
    tmp_path: Path, directory: str, name: str
) -> None:
    with pytest.raises(ValueError):
        write_inbound(tmp_path, directory, name, [b"x"])
    assert not (tmp_path / "escape.csv").exists()


# --- the foreground command ------------------------------------------------


def test_handle_file_takes_a_file_from_anywhere(tmp_path: Path) -> None:
    elsewhere = tmp_path / "downloads" / "usage.csv"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"a,b\n")
    handler = Recorder()

    handled = daemon(tmp_path / "home", handler).handle_file(elsewhere)

    assert handled.outcome == "archived"
    assert handled.path.read_bytes() == b"a,b\n"
    assert handler.seen == [tmp_path / "home" / "processing" / "rated" / "usage.csv"]
    assert not elsewhere.exists()


def test_handle_file_copies_across_file_systems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "usb" / "usage.csv"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"a,b\n" * 100_000)

    def rename(source: object, target: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "rename", rename)
    handler = Recorder()

    handled = daemon(tmp_path / "home", handler).handle_file(elsewhere)

    assert handled.outcome == "archived"
    assert handler.contents == [b"a,b\n" * 100_000]
    assert handled.path.read_bytes() == b"a,b\n" * 100_000
    assert not elsewhere.exists()
    assert files(tmp_path / "home" / "processing" / "rated") == []


def test_handle_file_keeps_the_original_until_the_copy_is_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "usb" / "usage.csv"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"precious\n")
    loader = daemon(tmp_path / "home", Recorder())

    def rename(source: object, target: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    def fsync(descriptor: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(os, "fsync", fsync)

    with pytest.raises(OSError, match="I/O error"):
        loader.handle_file(elsewhere)

    assert elsewhere.read_bytes() == b"precious\n"
    assert files(tmp_path / "home" / "processing" / "rated") == []


def test_handle_file_refuses_a_name_already_being_processed(tmp_path: Path) -> None:
    pending = tmp_path / "processing" / "rated" / "usage.csv"
    pending.parent.mkdir(parents=True)
    pending.write_bytes(b"pending\n")
    elsewhere = tmp_path / "usage.csv"
    elsewhere.write_bytes(b"new\n")

    with pytest.raises(FileExistsError):
        daemon(tmp_path, Recorder()).handle_file(elsewhere)

    assert pending.read_bytes() == b"pending\n"
    assert elsewhere.read_bytes() == b"new\n"


def test_handle_file_refuses_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "real.csv"
    target.write_bytes(b"x\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)

    with pytest.raises(ValueError, match="not a regular file"):
        daemon(tmp_path / "home", Recorder()).handle_file(link)

    assert link.is_symlink()


def test_handle_file_quarantines_a_refused_file(tmp_path: Path) -> None:
    elsewhere = tmp_path / "usage.csv"
    elsewhere.write_bytes(b"garbage\n")

    handled = daemon(tmp_path / "home", refuse).handle_file(elsewhere)

    assert handled.outcome == "quarantined"
    assert handled.code == "bad-header"
    assert handled.path.with_name("usage.csv.error.json").exists()


# --- small helpers ---------------------------------------------------------


def test_sha256_of_reads_large_files_whole(tmp_path: Path) -> None:
    content = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "big.bin"
    path.write_bytes(content)

    assert sha256_of(path) == hashlib.sha256(content).hexdigest()


def test_ensure_directories_creates_the_layout(tmp_path: Path) -> None:
    ensure_directories(tmp_path)
    ensure_directories(tmp_path)  # and is happy to run again

    assert files(tmp_path / "inbound") == sorted(DIRECTORIES)
    for root in ("processing", "archive", "quarantine"):
        assert (tmp_path / root).is_dir()


def test_a_daemon_refuses_an_unknown_inbound_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown inbound directory"):
        InboundDaemon("x", tmp_path, "elsewhere", Recorder())
