"""Opening a SQLite view database beside busy processes."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from projections.store import _set_up_sqlite


class LockedAtFirst:
    """A real connection whose first ``times`` journal-mode statements are
    refused as SQLite refuses them while another process holds the file."""

    def __init__(self, path: Path, times: int):
        self.conn = sqlite3.connect(path, isolation_level=None)
        self.refusals = times

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql.startswith("PRAGMA journal_mode") and self.refusals:
            self.refusals -= 1
            raise sqlite3.OperationalError("database is locked")
        return self.conn.execute(sql, *args)


def test_a_connection_refused_by_a_lock_while_set_up_tries_again(
    tmp_path: Path,
) -> None:
    conn = LockedAtFirst(tmp_path / "views.sqlite3", times=3)

    _set_up_sqlite(conn)  # type: ignore[arg-type]

    assert conn.refusals == 0
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL


def test_any_other_error_while_set_up_is_raised_at_once(tmp_path: Path) -> None:
    class Broken(LockedAtFirst):
        def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
            raise sqlite3.OperationalError("disk I/O error")

    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        _set_up_sqlite(Broken(tmp_path / "views.sqlite3", times=0))  # type: ignore[arg-type]
