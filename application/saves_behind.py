"""Saving an aggregate's events one step behind, in a thread of their own."""

from __future__ import annotations

import concurrent.futures
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from eventsourcing.application import Application


class SavesBehind:
    """Saves an aggregate's pending events in a thread while the caller goes
    on with the next step (the usage loader's chunks, a rerate's pages): a
    save mostly waits on the database, and SQLite and psycopg let go of the
    GIL meanwhile.

    Saves keep their order: one at a time, each after the one before. A
    failed save is raised by the next ``save``, or on leaving the block;
    leaving the block waits for the save under way (quietly, when the block
    is failing already).
    """

    def __init__(self, app: Application[Any], name: str):
        self.app = app
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._pending: Future[Any] | None = None

    def save(self, aggregate: Any) -> None:
        events = aggregate.collect_events()
        self.wait()
        if events:
            self._pending = self._thread.submit(self.app.save, *events)

    def wait(self) -> None:
        """Until the last save has been written (its error, if it failed)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> SavesBehind:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        try:
            if kind is None:
                self.wait()
            elif self._pending is not None:
                # Already failing: let the save under way end, quietly.
                concurrent.futures.wait([self._pending])
        finally:
            self._thread.shutdown()
