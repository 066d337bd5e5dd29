"""Waking an idle background loop as soon as events are recorded.

On PostgreSQL the event store of ``eventsourcing`` sends a notification
(``NOTIFY``) on its channel with every save, delivered when the save commits.
A loop with nothing to do listens on that channel instead of only sleeping:
an event raised by an agent is taken at once, not up to a polling interval
later, and the interval can stay long for what only time makes due
(scheduled items, retries). SQLite has no notifications: the loop sleeps.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from application.persistence import Database

log = logging.getLogger("monetise.wakeups")
# Longest single wait for a notification, so that a stop is seen this soon.
_SLICE = 0.1  # seconds


class Wakeup:
    """Waits until the interval has passed, a stop is asked, or (PostgreSQL)
    the event store of ``recorder`` records a save, whichever comes first.

    One listening connection per ``Wakeup``, opened by ``listen`` (or the
    first wait) and kept; a broken connection is dropped, and the loop
    sleeps instead until it can listen again (tried every 10 s at most).
    As a context manager it listens on entry and closes on exit.
    """

    def __init__(self, database: Database, recorder: Any, stopping: threading.Event):
        self.stopping = stopping
        self._database = database
        self._channel: str | None = (
            getattr(recorder, "channel_name", None)
            if database.backend == "postgres"
            else None
        )
        self._connection: Any = None
        self._retry_at = 0.0

    def __enter__(self) -> Wakeup:
        self.listen()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def listening(self) -> bool:
        return self._connection is not None

    def listen(self) -> None:
        """Start listening now (saves committed from here on wake the next
        wait): call it before the first round of work, so that none is missed
        between that round and the wait."""
        if self._channel is None or self._connection is not None:
            return
        if time.monotonic() < self._retry_at:
            return
        import psycopg
        from psycopg import sql

        database = self._database
        try:
            connection = psycopg.connect(
                **database.connection_parameters("monetise-wakeup"),
                autocommit=True,
            )
            connection.execute(
                sql.SQL("LISTEN {}").format(sql.Identifier(self._channel))
            )
        except psycopg.Error:
            log.warning("cannot listen for new events; polling instead", exc_info=True)
            self._retry_at = time.monotonic() + 10.0
            return
        self._connection = connection

    def wait(self, timeout: float) -> bool:
        """Returns whether a save woke it (False: the time passed, or a stop)."""
        self.listen()
        if self._connection is None:
            self.stopping.wait(timeout)
            return False
        import psycopg

        deadline = time.monotonic() + timeout
        try:
            while not self.stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                slice_ = min(left, _SLICE)
                if list(self._connection.notifies(timeout=slice_, stop_after=1)):
                    # Saves committed meanwhile are all covered by the round
                    # that follows: their notifications need no round each.
                    list(self._connection.notifies(timeout=0))
                    return True
        except psycopg.Error:
            log.warning("lost the connection listening for new events", exc_info=True)
            self.close()
            self.stopping.wait(max(0.0, deadline - time.monotonic()))
        return False

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # closing a broken connection: nothing to keep
                log.debug("closing the listening connection failed", exc_info=True)
