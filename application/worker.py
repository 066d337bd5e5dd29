"""The background worker: workflow processor, read models and action dispatcher."""

from __future__ import annotations

import gc
import logging
import threading
import time

from application.platform import Platform
from application.wakeups import Wakeup

log = logging.getLogger("monetise.worker")
RECOVERY_INTERVAL = 1.0  # seconds


class Worker:
    """Runs the platform's background work in a thread until stopped.

    ``views=False``: the read models are left to another process
    (``ViewsFollower``), so that the workflow processor and the dispatcher
    never wait for them; on two cores the two processes keep both busy.
    """

    def __init__(
        self,
        platform: Platform,
        idle_interval: float = 0.2,
        *,
        views: bool = True,
        stopping: threading.Event | None = None,
    ):
        self.platform = platform
        self.idle_interval = idle_interval
        self.views = views
        # Given: set by someone else (a command's Ctrl-C) to end the work.
        self.stopping = stopping or threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.run, name="monetise-worker", daemon=True
        )
        self._thread.start()
        # Apart: it waits for the loading lock if a load or a rerate holds it.
        threading.Thread(
            target=self.close_interrupted_rerates,
            name="monetise-rerate-recovery",
            daemon=True,
        ).start()

    def close_interrupted_rerates(self) -> None:
        """Close the rerate runs whose process died (their prepaid deltas
        charged once), so that balances need not wait for the next rerate."""
        try:
            closed = self.platform.rerater.close_interrupted()
        except Exception:
            log.exception("closing interrupted rerate runs failed")
        else:
            if closed:
                log.warning("closed %d interrupted rerate run(s)", len(closed))

    def run(self) -> None:
        """Work until stopped, settling interrupted items about once a second.

        Idle, it waits ``idle_interval`` for what time makes due; on
        PostgreSQL a save of new events (an agent's raise) ends the wait at
        once.
        """
        _fewer_young_collections()
        self.platform.dispatcher.views_apart = not self.views
        with Wakeup(
            self.platform.database, self.platform.care.recorder, self.stopping
        ) as wakeup:
            self._work(wakeup)

    def _work(self, wakeup: Wakeup) -> None:
        next_recovery = 0.0
        while not self.stopping.is_set():
            try:
                if time.monotonic() >= next_recovery:
                    # Items a killed worker left "sent", and network requests
                    # whose answer never came, are settled here.
                    self.platform.dispatcher.recover()
                    next_recovery = time.monotonic() + RECOVERY_INTERVAL
                done = self.platform.work()
                if self.views:
                    self.platform.views.catch_up()
                    self.platform.usage_views.catch_up()
            except Exception:
                # One bad round must not stop every later one; it is logged
                # with its traceback and tried again after a pause.
                log.exception("background work failed; trying again")
                done = 0
            if not done:
                wakeup.wait(self.idle_interval)
        try:
            # Messages still being written are recorded before the worker goes.
            self.platform.dispatcher.finish_writing()
        except Exception:
            log.exception("recording the last messages written failed")

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)


class ViewsFollower:
    """Keeps every read model (care and usage) up to date until stopped: the
    other half of a ``Worker`` run with ``views=False``."""

    def __init__(
        self,
        platform: Platform,
        idle_interval: float = 0.05,
        *,
        stopping: threading.Event | None = None,
    ):
        self.platform = platform
        # Short: the worker's new items show in the views this much later.
        self.idle_interval = idle_interval
        self.stopping = stopping or threading.Event()

    def run(self) -> None:
        """Catch up until stopped; idle, it waits ``idle_interval`` (on
        PostgreSQL, until the next save of customer care's events at most)."""
        _fewer_young_collections()
        with Wakeup(
            self.platform.database, self.platform.care.recorder, self.stopping
        ) as wakeup:
            while not self.stopping.is_set():
                try:
                    done = self.platform.views.catch_up()
                    done += self.platform.usage_views.catch_up()
                except Exception:
                    log.exception("catching up the read models failed; trying again")
                    self.stopping.wait(1.0)
                    continue
                if not done:
                    wakeup.wait(self.idle_interval)

    def stop(self) -> None:
        self.stopping.set()


YOUNG_COLLECTION_THRESHOLD = 20_000  # allocations between two young collections


def _fewer_young_collections() -> None:
    """Collect the youngest generation of objects less often.

    A round allocates tens of thousands of objects (events, rows, copies)
    that live until the round ends; at the interpreter's default of 700 the
    collector ran every few events and walked them again each time (measured:
    a tenth of the worker's CPU; half of that at 20,000). Reference counting
    frees them all the same.
    """
    young, *older = gc.get_threshold()
    if young < YOUNG_COLLECTION_THRESHOLD:
        gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *older)
