"""A worker killed in the middle of a dispatch and restarted runs no handler twice
and loses no item (SQLite and PostgreSQL).

The worker is a real process (``tests/integration/crash_worker.py``: the real
``Worker`` with the dispatcher's network time-out and recovery grace in seconds,
and each hand-over paced so that a batch takes long enough to be killed half
way). The test kills it with SIGKILL when the database or the outbox shows a
batch half handed over, starts another, and checks the event store, the
network simulator's requests and the outbox once everything has settled.
"""

from __future__ import annotations

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
from uuid import UUID

import pytest

from api.cli import demo_catalogue
from application.platform import Platform
from application.settings import Settings
from domain.account import Account
from domain.subscription import Subscription
from domain.workflow import ActionedItemCompleted, ActionedItemSent

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
SETTLE_TIMEOUT_S = NETWORK_TIMEOUT_S + RECOVERY_GRACE_S + 30.0

# What each action does once, by handler: (stored event, attribute counted).
STATE_EVENTS = {
    "bar": Subscription.BarApplied,
    "top_up": Subscription.ToppedUp,
    "subscription_service": Subscription.ServiceAdded,
    "account_type_movement": Account.AccountTypeMoved,
}


# --- given ---------------------------------------------------------------------


@dataclass
class Book:
    """What was raised where, and so what one run of each action must give."""

    subscriptions: list[UUID] = field(default_factory=list)
    accounts: list[UUID] = field(default_factory=list)
    raised: dict[UUID, list[str]] = field(default_factory=dict)  # owner -> events
    items: int = 0
    workflow_events: int = 0
    network_items: int = 0
    messages: int = 0

    @property
    def owners(self) -> list[UUID]:
        return [*self.subscriptions, *self.accounts]

    def record(self, owner: UUID, event: str) -> None:
        self.raised.setdefault(owner, []).append(event)
        # (actions, communications, linked events) of each demo event code
        actions, messages, linked = {
            "BFEA DBAR": (1, 1, 0),
            "TOPU AIRT": (1, 1, 0),
            "SERV ADDO": (1, 1, 0),
            "ACCT BUSN": (1, 1, 0),
            "CONN PORT": (1, 0, 1),
        }[event]
        if event == "CONN PORT":
            self.network_items += 1
            messages += 2  # CONN WELC: SMS and e-mail
        self.items += actions + messages
        self.messages += messages
        self.workflow_events += 1 + linked


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
        self.settings = settings
        self.log = log
        env = {
            **os.environ,
            "MONETISE_HOME": str(settings.home),
            "MONETISE_RETRY_BASE_SECONDS": str(RETRY_BASE_S),
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("MONETISE_DATABASE_URL", None)
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
            )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[[Settings], WorkerProcess]]:
    """Starts worker processes; kills whatever still runs at the end."""
    started: list[WorkerProcess] = []

    def start(settings: Settings) -> WorkerProcess:
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
    """Reads what the worker did: event store, network simulator, outbox."""

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

    def items(self) -> list[tuple[Any, dict[str, Any]]]:
        """Every actioned item with its owner, as the event store has them now."""
        found = []
        for owner_id in self.book.owners:
            owner = self.platform.care.owner(owner_id)
            found += [(owner, item) for item in owner.actioned_items.values()]
        return found

    def settled(self) -> bool:
        items = self.items()
        if len(items) != self.book.items:
            return False
        if any(item["status"] != "completed" for _, item in items):
            return False
        events = [
            wf
            for owner_id in self.book.owners
            for wf in self.platform.care.owner(owner_id).workflow_events.values()
        ]
        return len(events) == self.book.workflow_events and all(
            wf["status"] == "resolved" for wf in events
        )

    def where(self, label: str) -> str:
        """Where a kill landed: the items the dead worker left behind."""
        requests = self.platform.network.submission_counts()
        delivered = {path.stem for path in self.outbox_files()}
        statuses = Counter(item["status"] for _, item in self.items())
        sent = [item for _, item in self.items() if item["status"] == "sent"]
        network = [i for i in sent if i["handler"] == "network"]
        messages = [i for i in sent if i["handler"] == "communication"]
        summary = (
            f"{label}: items {dict(sorted(statuses.items()))}; network items sent "
            f"{len(network)} (request submitted: "
            f"{sum(i['request_id'] in requests for i in network)}); "
            f"communications sent {len(messages)} (already in the outbox: "
            f"{sum(i['item_id'] in delivered for i in messages)}); "
            f"{len(requests)} requests, {len(delivered)} outbox files in all"
        )
        self.kills.append(summary)
        print(summary)  # shown with -s, and in the report of a failure
        return summary


def wait_for(
    condition: Callable[[], bool],
    what: str,
    timeout: float,
    worker: WorkerProcess,
    interval: float = 0.005,
) -> None:
    """Poll until ``condition`` holds; fail if the worker dies or time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if not worker.alive:
            pytest.fail(f"worker stopped before {what}:\n{worker.tail()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout:.0f} s:\n{worker.tail()}")
        time.sleep(interval)


# --- then ----------------------------------------------------------------------


def problems_after(observer: Observer) -> list[str]:
    """Every way in which the handlers did not run exactly once each."""
    problems: list[str] = []
    platform = observer.platform
    requests = platform.network.submission_counts()
    requests_of: dict[str, list[str]] = {}
    for request_id in requests:
        requests_of.setdefault(request_id.rsplit(":", 1)[0], []).append(request_id)
    files_of: dict[str, list[Path]] = {}
    for path in observer.outbox_files():
        files_of.setdefault(path.stem, []).append(path)
    known: set[str] = set()

    for owner_id in observer.book.owners:
        owner = platform.care.owner(owner_id)
        stored = list(platform.care.events.get(owner_id))
        done = Counter(
            (type(e), getattr(e, "item_id", None))
            for e in stored
            if isinstance(e, (*STATE_EVENTS.values(), ActionedItemCompleted))
        )
        sends = Counter(e.item_id for e in stored if isinstance(e, ActionedItemSent))
        for wf in owner.workflow_events.values():
            if wf["status"] != "resolved":
                problems.append(
                    f"{wf['event_type']} {wf['event_code']} {wf['id']} on {owner_id}"
                    f" is {wf['status']}"
                )
        for item_id, item in owner.actioned_items.items():
            known.add(item_id)
            what = f"{item['handler']} item {item_id} ({item['description']})"
            if item["status"] != "completed":
                problems.append(
                    f"{what} is {item['status']} after {item['attempts']} "
                    f"attempt(s): {item['last_error'] or 'no error recorded'}"
                )
            if done[ActionedItemCompleted, item_id] != 1:
                problems.append(
                    f"{what} completed {done[ActionedItemCompleted, item_id]} times"
                )
            handler = item["handler"]
            if handler in STATE_EVENTS:
                runs = done[STATE_EVENTS[handler], item_id]
                if runs != 1:
                    problems.append(f"{what} changed its {owner.LEVEL} {runs} times")
            elif handler == "network":
                ids = requests_of.get(item_id, [])
                if len(ids) != 1 or sends[item_id] != 1:
                    problems.append(
                        f"{what}: {len(ids)} requests executed by the network "
                        f"{sorted(ids)}, {sends[item_id]} attempts recorded"
                    )
                problems += [
                    f"{what}: request {r} submitted {requests[r]} times"
                    for r in ids
                    if requests[r] != 1
                ]
            elif handler == "communication":
                files = files_of.get(item_id, [])
                if [f.parent.name for f in files] != [item["channel"]]:
                    problems.append(f"{what}: outbox files {files}")
        problems += expected_state_problems(owner, observer.book.raised[owner_id])

    problems += [f"request {r} for no known item" for r in requests_of if r not in known]
    problems += [f"outbox file for no known item: {f}" for f in files_of if f not in known]
    return problems


def expected_state_problems(owner: Any, raised: list[str]) -> list[str]:
    """The state one run of each raised event's actions gives."""
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
            f"subscription {owner.msisdn}: bars, balance, services are {actual}, "
            f"expected {expected}"
        ]
    return []


def assert_each_handler_ran_once(observer: Observer) -> None:
    problems = problems_after(observer)
    assert not problems, (
        f"{len(problems)} problem(s) after the restarts; where the kills landed:\n"
        + "\n".join(observer.kills)
        + "\nfirst problems:\n"
        + "\n".join(problems[:25])
    )


# --- the scenarios -------------------------------------------------------------


def test_a_worker_killed_mid_dispatch_and_restarted_runs_each_handler_once(
    settings: Settings, workers: Callable[[Settings], WorkerProcess]
) -> None:
    # Given the demo catalogue, 60 lines and events for every kind of handler
    book = seed(settings, LINES)
    observer = Observer(settings, book)
    try:
        # When the worker is killed while it submits the network requests
        first = workers(settings)
        wait_for(
            lambda: book.network_items // 3 <= observer.submitted() < book.network_items,
            "network hand-over half done",
            START_TIMEOUT_S,
            first,
        )
        first.kill()
        observer.where("kill 1, submitting network requests")
        # and its successor is killed while it writes the messages
        second = workers(settings)
        written = len(observer.outbox_files())
        wait_for(
            lambda: len(observer.outbox_files()) >= written + 20,
            "messages being written",
            START_TIMEOUT_S,
            second,
        )
        second.kill()
        observer.where("kill 2, writing messages to the outbox")
        # and a third one runs until everything is settled
        third = workers(settings)
        wait_for(
            observer.settled,
            "settled items and workflow events",
            SETTLE_TIMEOUT_S,
            third,
            interval=0.3,
        )
        third.kill()

        # Then every item completed once, and every handler ran exactly once
        assert_each_handler_ran_once(observer)
    except BaseException:
        print("\n".join(observer.kills))
        raise
    finally:
        observer.close()
