"""An idle background loop is woken by new events (PostgreSQL) instead of
waiting out its polling interval; on SQLite it sleeps the interval."""

from __future__ import annotations

import threading
import time
from uuid import UUID

import pytest

from application.wakeups import Wakeup
from application.worker import ViewsFollower, Worker
from tests.application.workflow_fixtures import Operator

LONG = 60.0  # seconds: far beyond how long any of these tests waits


def wakeup_for(operator: Operator, stopping: threading.Event | None = None) -> Wakeup:
    platform = operator.platform
    return Wakeup(
        platform.database, platform.care.recorder, stopping or threading.Event()
    )


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_save_of_new_events_ends_the_wait_of_a_listening_loop(
    operator: Operator,
) -> None:
    with wakeup_for(operator) as wakeup:
        operator.new_line()  # saves (and commits) a customer, account, subscription

        assert wakeup.wait(LONG) is True
        # The saves were all covered by that one wake: the next wait runs out.
        assert wakeup.wait(0.05) is False


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_loop_whose_listening_connection_broke_sleeps_then_listens_again(
    operator: Operator,
) -> None:
    with wakeup_for(operator) as wakeup:
        with operator.platform.views.db.read() as tx:
            tx.fetchall(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'monetise-wakeup'"
                " AND datname = current_database()"
            )

        assert wakeup.wait(0.3) is False  # no error: it slept instead
        assert not wakeup.listening

        wakeup.listen()
        operator.new_line()
        assert wakeup.wait(LONG) is True


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_on_sqlite_a_loop_sleeps_its_interval_whatever_is_saved(
    operator: Operator,
) -> None:
    with wakeup_for(operator) as wakeup:
        operator.new_line()

        assert not wakeup.listening
        assert wakeup.wait(0.05) is False


def test_a_waiting_loop_ends_its_wait_when_it_is_stopped(operator: Operator) -> None:
    stopping = threading.Event()
    with wakeup_for(operator, stopping) as wakeup:
        threading.Timer(0.2, stopping.set).start()

        assert wakeup.wait(LONG) is False  # returns: no 60-second sleep
        assert stopping.is_set()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_an_idle_worker_takes_a_raised_event_without_waiting_out_its_interval(
    operator: Operator,
) -> None:
    first, second = operator.new_line(), operator.new_line()
    worker = Worker(operator.platform, idle_interval=LONG)
    worker.start()
    try:
        operator.raise_on(first, "BFEA DBAR")
        assert wait_for_bar(operator, first.subscription_id)
        time.sleep(0.5)  # the worker has gone idle: its next poll is a minute away

        operator.raise_on(second, "BFEA DBAR")

        # Polling alone would apply it a minute from now.
        assert wait_for_bar(operator, second.subscription_id, within=30.0)
    finally:
        worker.stop()


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_an_idle_read_models_process_shows_a_new_customer_without_its_long_poll(
    operator: Operator,
) -> None:
    follower = ViewsFollower(operator.platform, idle_interval=LONG)
    following = threading.Thread(target=follower.run)
    following.start()
    try:
        first = operator.new_line()
        assert wait_for_customer(operator, first.customer_id)
        time.sleep(0.5)  # idle now: its next poll is a minute away

        second = operator.new_line()

        # Polling alone would show it a minute from now.
        assert wait_for_customer(operator, second.customer_id, within=30.0)
    finally:
        follower.stop()
        following.join(10)


def wait_for_customer(
    operator: Operator, customer_id: UUID, within: float = 30.0
) -> bool:
    """Whether the customers view shows the customer within ``within`` seconds
    (kept by another thread: read only)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if operator.platform.views.customers.get(customer_id) is not None:
            return True
        time.sleep(0.02)
    return False


def wait_for_bar(
    operator: Operator, subscription_id: UUID, within: float = 30.0
) -> bool:
    """Whether the subscription shows the DATA bar within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if operator.care.subscription(subscription_id).bars == ["DATA"]:
            return True
        time.sleep(0.02)
    return False
