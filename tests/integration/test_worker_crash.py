"""A worker killed in the middle of a dispatch and restarted runs no handler twice
and loses no item (SQLite and PostgreSQL).

The worker is a real process: ``tests/integration/crash_worker.py`` runs the
real ``Worker`` (recovery, then rounds of ``Platform.work()``), with the
dispatcher's network time-out and recovery grace in seconds instead of ten
minutes and one minute, and each hand-over paced so that a batch takes long
enough to be killed half way — network requests, messages the worker writes
itself, and the files of a batch of messages that its helper process writes.
The test kills the worker and its helper together with SIGKILL (as a crash of
the machine or container would) when the network simulator or the outbox
shows a batch half handed over, starts another one (at once, as a supervisor
does, or after the network time-out), and checks the event store, the network
simulator's requests and the outbox once everything has settled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock
from uuid import UUID

import pytest

import domain.workflow
from api.cli import demo_catalogue
from application.platform import Platform
from application.settings import Settings
from domain.account import Account
from domain.subscription import Subscription
from domain.workflow import ActionedItemCompleted

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LINES = 60
PORT_IN_DELAY = "PT2S"  # responses are still pending when a worker is killed
# Longer than a restart takes, so that a restarted worker finds the items of
# the killed one "sent" only recently, as after a supervisor's restart.
NETWORK_TIMEOUT_S = 8.0
RECOVERY_GRACE_S = 8.0
PACE_S = 0.05  # per hand-over, as a slow network or SMS gateway takes
RETRY_BASE_S = 1.0
START_TIMEOUT_S = 60.0  # a worker process reaching the kill point
SETTLE_TIMEOUT_S = 40.0  # the time-outs above, retries, and the linked events

# The change that one run of each internal handler records, with the item id.
STATE_EVENTS = {
    "bar": Subscription.BarApplied,
    "top_up": Subscription.ToppedUp,
    "subscription_service": Subscription.ServiceAdded,
    "account_type_movement": Account.AccountTypeMoved,
}


# --- given ---------------------------------------------------------------------


# What raising each demo event code leads to: (actioned items, workflow events,
# network items). CONN PORT links CONN WELC, which sends an SMS and an e-mail.
CONSEQUENCES = {
    "BFEA DBAR": (2, 1, 0),  # the data bar, then an SMS
    "TOPU AIRT": (2, 1, 0),  # the top-up, then an SMS
    "SERV ADDO": (2, 1, 0),  # the data add-on, then a push message
    "ACCT BUSN": (2, 1, 0),  # the account type movement, then an e-mail
    "CONN PORT": (3, 2, 1),  # the port-in on the network, then CONN WELC
}


@dataclass
class Book:
    """What was raised where, and so what one run of each action must give."""

    subscriptions: list[UUID] = field(default_factory=list)
    accounts: list[UUID] = field(default_factory=list)
    raised: dict[UUID, list[str]] = field(default_factory=dict)  # owner -> events
    items: int = 0
    workflow_events: int = 0
    network_items: int = 0

    @property
    def owners(self) -> list[UUID]:
        return [*self.subscriptions, *self.accounts]

    def record(self, owner: UUID, event: str) -> None:
        self.raised.setdefault(owner, []).append(event)
        items, workflow_events, network_items = CONSEQUENCES[event]
        self.items += items
        self.workflow_events += workflow_events
        self.network_items += network_items


def seed(settings: Settings, lines: int) -> Book:
    """The demo catalogue, ``lines`` lines, and workflow events raised on them."""
    home = settings.home
    home.mkdir(parents=True, exist_ok=True)
    (home / "network-simulator.yaml").write_text(
        f"rules:\n  - {{command: PORT_IN, delay: {PORT_IN_DELAY}}}\n", encoding="utf-8"
    )
    platform = Platform(settings)
    try:
        platform.catalogue.import_document(demo_catalogue(), "admin")
        care = platform.care
        book = Book()
        for index in range(lines):
            prepaid = index % 2 == 0
            customer = care.register_customer(
                name=f"Customer {index}",
                email=f"customer{index}@example.com",
                address=f"{index} Analytical Row, London",
                actor="agent-1",
            )
            account = care.open_account(customer_id=customer, actor="agent-1")
            subscription = care.create_subscription(
                account_id=account,
                msisdn=str(447700900100 + index),
                payment_type="prepaid" if prepaid else "postpaid",
                status="active",
                actor="agent-1",
            )
            book.subscriptions.append(subscription)
            events = ["BFEA DBAR"]
            if prepaid:
                events += ["TOPU AIRT", "TOPU AIRT"]
            if index % 3 == 0:
                events.append("CONN PORT")
            if index % 4 == 1:
                events.append("SERV ADDO")
            for event in events:
                raise_on(platform, subscription, "subscription", event)
                book.record(subscription, event)
            if index % 5 == 2:
                book.accounts.append(account)
                raise_on(platform, account, "account", "ACCT BUSN")
                book.record(account, "ACCT BUSN")
        return book
    finally:
        platform.close()


def raise_on(platform: Platform, owner: UUID, level: str, event: str) -> None:
    event_type, event_code = event.split()
    platform.care.raise_workflow_event(
        owner_id=owner,
        level=level,
        event_type=event_type,
        event_code=event_code,
        actor="agent-1",
    )


# --- the worker process --------------------------------------------------------


class WorkerProcess:
    """One run of ``crash_worker.py``; its output goes to a log file."""

    def __init__(self, settings: Settings, log: Path):
        self.log = log
        # Only the settings of this test: no SMTP server or broker from outside.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MONETISE_")}
        env.update(
            MONETISE_HOME=str(settings.home),
            MONETISE_RETRY_BASE_SECONDS=str(RETRY_BASE_S),
            PYTHONUNBUFFERED="1",
        )
        if settings.database_url:
            env["MONETISE_DATABASE_URL"] = settings.database_url
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.integration.crash_worker",
                    f"--network-timeout={NETWORK_TIMEOUT_S}",
                    f"--recovery-grace={RECOVERY_GRACE_S}",
                    f"--pace={PACE_S}",
                ],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                # A group of its own: a kill takes its helper process with it.
                start_new_session=True,
            )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """Kill the worker and the helper process writing its outbox files."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture
def workers(
    settings: Settings, tmp_path: Path
) -> Iterator[Callable[[], WorkerProcess]]:
    """Starts worker processes; kills what still runs before the database goes."""
    started: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        worker = WorkerProcess(settings, tmp_path / f"worker-{len(started) + 1}.log")
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.kill()


# --- observing -----------------------------------------------------------------


class Observer:
    """Reads what the workers did: event store, network simulator, outbox."""

    def __init__(self, settings: Settings, book: Book):
        self.platform = Platform(settings)
        self.book = book
        self.outbox = settings.home / "outbox"
        self.kills: list[str] = []

    def close(self) -> None:
        self.platform.close()

    def submitted(self) -> int:
        return len(self.platform.network.submission_counts())

    def outbox_files(self) -> list[Path]:
        return sorted(self.outbox.glob("*/*.json"))

    def owners(self) -> list[Any]:
        """Each account and subscription as its whole stream tells it.

        The aggregates retire finished workflow events from their state; here
        every event and item is kept, so that each one can be checked.
        """
        care = self.platform.care
        owners = []
        with mock.patch.object(domain.workflow, "retire_if_finished", _keep):
            for owner_id in self.book.owners:
                owner = None
                for event in care.events.get(owner_id):
                    owner = event.mutate(owner)
                owners.append(owner)
        return owners

    def messages_being_written(self) -> int:
        """Messages recorded as sent whose file is not in the outbox (yet)."""
        delivered = {path.stem for path in self.outbox_files()}
        return sum(
            item["handler"] == "communication"
            and item["status"] == "sent"
            and item["item_id"] not in delivered
            for owner in self.owners()
            for item in owner.actioned_items.values()
        )

    def settled(self) -> bool:
        """Every item the book expects exists and is completed; every event resolved."""
        owners = self.owners()
        items = [item for owner in owners for item in owner.actioned_items.values()]
        events = [wf for owner in owners for wf in owner.workflow_events.values()]
        return (
            len(items) == self.book.items
            and len(events) == self.book.workflow_events
            and all(item["status"] == "completed" for item in items)
            and all(wf["status"] == "resolved" for wf in events)
        )

    def state(self) -> str:
        """The items by status, and what was handed over of those left ``sent``."""
        requests = self.platform.network.submission_counts()
        delivered = {path.stem for path in self.outbox_files()}
        items = [i for owner in self.owners() for i in owner.actioned_items.values()]
        statuses = Counter(item["status"] for item in items)
        sent = [item for item in items if item["status"] == "sent"]
        network = [i for i in sent if i["handler"] == "network"]
        messages = [i for i in sent if i["handler"] == "communication"]
        return (
            f"items {dict(sorted(statuses.items()))} of {self.book.items}; "
            f"sent network items {len(network)} (request submitted: "
            f"{sum(i['request_id'] in requests for i in network)}), "
            f"sent communications {len(messages)} (already in the outbox: "
            f"{sum(i['item_id'] in delivered for i in messages)}); "
            f"{len(requests)} requests and {len(delivered)} outbox files in all"
        )

    def killed(self, worker: WorkerProcess, where: str) -> None:
        """Kill ``worker`` and note where the kill landed."""
        worker.kill()
        self.kills.append(f"kill {len(self.kills) + 1}, {where}: {self.state()}")
        print(self.kills[-1])  # shown with -s: where the kills landed

    def report(self) -> str:
        return "where the kills landed:\n" + "\n".join(self.kills)


def _keep(aggregate: Any, workflow_event_id: str) -> None:
    """Retires nothing."""


def wait_for(
    condition: Callable[[], bool],
    what: str,
    timeout: float,
    worker: WorkerProcess,
    observer: Observer,
    interval: float = 0.005,
) -> None:
    """Poll until ``condition`` holds; fail if the worker dies or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if not worker.alive or time.monotonic() > deadline:
            why = "the worker stopped" if not worker.alive else f"{timeout:.0f} s"
            pytest.fail(
                f"no {what} ({why}); now {observer.state()}\n{observer.report()}\n"
                + "\n".join(problems_after(observer)[:25])
                + f"\nworker log:\n{worker.tail()}"
            )
        time.sleep(interval)


# --- then ----------------------------------------------------------------------


def problems_after(observer: Observer) -> list[str]:
    """Every way in which an item is not done, or its handler ran not once."""
    problems: list[str] = []
    care = observer.platform.care
    requests = observer.platform.network.submission_counts()
    requests_of: dict[str, list[str]] = {}
    for request_id in requests:
        requests_of.setdefault(request_id.rsplit(":", 1)[0], []).append(request_id)
    files_of: dict[str, list[Path]] = {}
    for path in observer.outbox_files():
        files_of.setdefault(path.stem, []).append(path)
    known: set[str] = set()
    for owner in observer.owners():
        stored = list(care.events.get(owner.id))
        runs = Counter(
            (type(e), getattr(e, "item_id", None))
            for e in stored
            if isinstance(e, (*STATE_EVENTS.values(), ActionedItemCompleted))
        )
        for wf in owner.workflow_events.values():
            if wf["status"] != "resolved":
                problems.append(
                    f"{wf['event_type']} {wf['event_code']} {wf['id']} on "
                    f"{owner.LEVEL} {owner.id} is {wf['status']}"
                )
        for item_id, item in owner.actioned_items.items():
            known.add(item_id)
            what = f"{item['handler']} item {item_id} ({item['description']})"
            if item["status"] != "completed":
                problems.append(
                    f"{what} is {item['status']} after {item['attempts']} "
                    f"attempt(s): {item['last_error'] or 'no error recorded'}"
                )
            elif runs[ActionedItemCompleted, item_id] != 1:
                problems.append(
                    f"{what} completed {runs[ActionedItemCompleted, item_id]} times"
                )
            handler = item["handler"]
            if handler in STATE_EVENTS:
                changes = runs[STATE_EVENTS[handler], item_id]
                if changes != 1:
                    problems.append(f"{what} changed its {owner.LEVEL} {changes} times")
            elif handler == "network":
                ids = sorted(requests_of.get(item_id, []))
                if len(ids) != 1:
                    problems.append(f"{what}: the network executed requests {ids}")
                problems += [
                    f"{what}: request {r} submitted {requests[r]} times"
                    for r in ids
                    if requests[r] != 1
                ]
            elif handler == "communication":
                files = files_of.get(item_id, [])
                if [path.parent.name for path in files] != [item["channel"]]:
                    problems.append(f"{what} on {item['channel']}: outbox {files}")
        problems += state_problems(owner, observer.book.raised[owner.id])
    problems += [
        f"request of no known item: {r}" for r in requests_of if r not in known
    ]
    problems += [
        f"outbox file of no known item: {f}" for f in files_of if f not in known
    ]
    return problems


def state_problems(owner: Any, raised: list[str]) -> list[str]:
    """How ``owner`` differs from what one run of each raised action gives."""
    if isinstance(owner, Account):
        if owner.account_type != "BUSN":
            return [f"account {owner.id} is {owner.account_type}, not BUSN"]
        return []
    expected = (
        ["DATA"],
        Decimal("10.00") * raised.count("TOPU AIRT"),
        ["DATA1GB"] if "SERV ADDO" in raised else [],
    )
    actual = (owner.bars, owner.prepaid_balance, owner.services)
    if actual != expected:
        return [
            f"subscription {owner.msisdn}: (bars, balance, services) are {actual}, "
            f"not {expected}"
        ]
    return []


def assert_each_handler_ran_once(observer: Observer) -> None:
    problems = problems_after(observer)
    assert not problems, (
        f"{len(problems)} problem(s); {observer.report()}\n" + "\n".join(problems[:25])
    )


# --- the scenarios -------------------------------------------------------------


def test_a_worker_killed_mid_dispatch_and_restarted_at_once_runs_each_handler_once(
    settings: Settings, workers: Callable[[], WorkerProcess]
) -> None:
    # Given the demo catalogue, 60 lines and events for every kind of handler
    book = seed(settings, LINES)
    observer = Observer(settings, book)
    try:
        # When the worker is killed while it submits the network requests,
        first = workers()
        wait_for(
            lambda: 3 <= observer.submitted() < book.network_items,
            "network requests being submitted",
            START_TIMEOUT_S,
            first,
            observer,
        )
        observer.killed(first, "submitting network requests")
        # the next is killed while it writes a batch of messages to the outbox,
        second = workers()
        written = len(observer.outbox_files())
        wait_for(
            lambda: (
                len(observer.outbox_files()) >= written + 20
                # a few files still to come: the kill lands inside the batch
                and observer.messages_being_written() >= 3
            ),
            "messages being written",
            START_TIMEOUT_S,
            second,
            observer,
        )
        observer.killed(second, "writing messages to the outbox")
        assert observer.messages_being_written() > 0, observer.report()
        # and the third runs until everything is settled
        third = workers()
        wait_for(
            observer.settled,
            "settled items and workflow events",
            SETTLE_TIMEOUT_S,
            third,
            observer,
            interval=0.3,
        )
        observer.killed(third, "after everything settled")

        # Then every item completed, and each handler ran exactly once
        assert_each_handler_ran_once(observer)
    finally:
        observer.close()


def test_a_worker_down_for_longer_than_the_network_time_out_runs_each_request_once(
    settings: Settings, workers: Callable[[], WorkerProcess]
) -> None:
    # Given the demo catalogue, 30 lines and events for every kind of handler
    book = seed(settings, LINES // 2)
    observer = Observer(settings, book)
    try:
        # When the worker is killed while it submits the network requests
        first = workers()
        wait_for(
            lambda: 3 <= observer.submitted() < book.network_items,
            "network requests being submitted",
            START_TIMEOUT_S,
            first,
            observer,
        )
        observer.killed(first, "submitting network requests")
        # and stays down until the network time-out has passed for every item
        time.sleep(NETWORK_TIMEOUT_S + 1)
        # and the next one runs until everything is settled
        second = workers()
        wait_for(
            observer.settled,
            "settled items and workflow events",
            SETTLE_TIMEOUT_S,
            second,
            observer,
            interval=0.3,
        )
        observer.killed(second, "after everything settled")

        # Then every item completed, and each handler ran exactly once
        assert_each_handler_ran_once(observer)
    finally:
        observer.close()
