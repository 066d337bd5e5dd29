"""Workflow events from the ``monetise`` command line, with a worker running.

Every step is its own ``python -m api.cli`` process, as an operator runs them;
``monetise worker`` does the background work, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from application.platform import Platform
from application.settings import Settings
from tests.e2e.test_command_line import DEMO, environment, monetise

WAIT_SECONDS = 90


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """The output of a command that must succeed."""
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def shown(settings: Settings, *args: str) -> Any:
    return json.loads(ok(monetise(settings, *args)))


@contextmanager
def worker(settings: Settings, *arguments: str) -> Iterator[subprocess.Popen[str]]:
    """``monetise worker`` running until the block ends, then stopped by Ctrl-C."""
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", *(arguments or ("worker",))],
        env=environment(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)


def wait_until(
    settings: Settings,
    process: subprocess.Popen[str],
    workflow_event_id: str,
    what: str,
    condition: Callable[[dict[str, Any]], bool],
) -> dict[str, Any]:
    """``events show`` until ``condition`` holds for the event, within a bound."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the worker exited: {process.stdout.read()}")  # type: ignore[union-attr]
        event: dict[str, Any] = shown(settings, "events", "show", workflow_event_id)
        if condition(event):
            return event
        time.sleep(0.2)
    raise AssertionError(f"workflow event {workflow_event_id}: not {what} in time")


def resolved(event: dict[str, Any]) -> bool:
    return bool(event["status"] == "resolved")


def item_statuses(event: dict[str, Any]) -> dict[str, str]:
    return {item["action_code"]: item["status"] for item in event["items"]}


def new_line(settings: Settings, *, payment_type: str = "postpaid") -> dict[str, str]:
    """A customer, account and active subscription made with the CLI."""
    customer_id = ok(
        monetise(
            settings,
            "customers",
            "create",
            "Ada Lovelace",
            "--email",
            "ada@example.com",
            "--actor",
            "agent-7",
        )
    )
    account_id = ok(
        monetise(settings, "accounts", "create", customer_id, "--actor", "agent-7")
    )
    subscription_id = ok(
        monetise(
            settings,
            "subscriptions",
            "create",
            account_id,
            "447700900001",
            "--status",
            "active",
            "--payment-type",
            payment_type,
            "--actor",
            "agent-7",
        )
    )
    return {
        "customer_id": customer_id,
        "account_id": account_id,
        "subscription_id": subscription_id,
        "msisdn": "447700900001",
    }


@pytest.fixture
def demo_settings(settings: Settings) -> Settings:
    """Settings of a database holding the demo catalogue, imported with the CLI."""
    ok(monetise(settings, "catalogue", "import", str(DEMO), "--actor", "ops"))
    return settings


@pytest.mark.timeout(240)
def test_an_operator_bars_data_and_the_worker_applies_the_bar(
    demo_settings: Settings,
) -> None:
    # Given a customer, an account and an active subscription made with the CLI
    line = new_line(demo_settings)
    subscription_id = line["subscription_id"]

    # When an agent raises BFEA DBAR and a worker runs
    event_id = ok(
        monetise(
            demo_settings,
            "events",
            "raise",
            subscription_id,
            "BFEA",
            "DBAR",
            "--note",
            "customer asked",
            "--actor",
            "agent-7",
        )
    )
    with worker(demo_settings) as process:
        event = wait_until(demo_settings, process, event_id, "resolved", resolved)

    # Then the event shows its DBARA item completed and the subscription its bar
    assert process.returncode == 0
    assert (event["raised_by"], event["note"]) == ("agent-7", "customer asked")
    assert [
        (item["action_code"], item["status"])
        for item in event["items"]
        if item["kind"] == "action"
    ] == [("DBARA", "completed")]
    subscription = shown(demo_settings, "subscriptions", "show", subscription_id)
    assert subscription["bars"] == ["DATA"]
    found = shown(demo_settings, "subscriptions", "find", line["msisdn"])
    assert found["id"] == subscription_id
    history = ok(monetise(demo_settings, "subscriptions", "history", subscription_id))
    assert "BFEA DBAR raised by agent-7: Add data bar" in history
    assert "DATA bar applied" in history
    assert "BFEA DBAR resolved automatically" in history


@pytest.mark.timeout(240)
def test_an_operator_adds_a_top_up_and_cancels_the_scheduled_one(
    demo_settings: Settings,
) -> None:
    # Given a prepaid line with a top-up scheduled in three days
    line = new_line(demo_settings, payment_type="prepaid")
    subscription_id = line["subscription_id"]
    top_up = ok(
        monetise(demo_settings, "events", "raise", subscription_id, "TOPU SCHD")
    )

    with worker(demo_settings) as process:
        scheduled = wait_until(
            demo_settings, process, top_up, "itemised", lambda e: bool(e["items"])
        )
        awaiting = ok(monetise(demo_settings, "items", "list", "--status", "awaiting"))
        # When an agent adds a top-up now
        added = ok(monetise(demo_settings, "events", "add-action", top_up, "TOP10"))
        topped_up = wait_until(
            demo_settings,
            process,
            top_up,
            "topped up",
            lambda event: item_statuses(event).get("TOP10") == "completed",
        )
        # and cancels the scheduled one
        [item] = scheduled["items"]
        cancelled = ok(
            monetise(
                demo_settings,
                "items",
                "cancel",
                item["item_id"],
                "--reason",
                "topped up now instead",
            )
        )
        # Then the event resolves
        event = wait_until(demo_settings, process, top_up, "resolved", resolved)

    assert process.returncode == 0
    assert item_statuses(scheduled) == {"TOP10L": "awaiting"}
    assert item["item_id"] in awaiting
    assert (added, cancelled) == ("action added", "cancelled")
    assert topped_up["status"] == "open"
    assert item_statuses(event) == {"TOP10": "completed", "TOP10L": "cancelled"}
    subscription = shown(demo_settings, "subscriptions", "show", subscription_id)
    assert subscription["prepaid_balance"] == "10.00"


@pytest.mark.timeout(240)
def test_a_worker_without_the_read_models_beside_a_follower_keeps_them_current(
    demo_settings: Settings,
) -> None:
    # Given a line, and a data bar then its removal raised on it
    line = new_line(demo_settings)
    subscription_id = line["subscription_id"]
    raised = [
        ok(monetise(demo_settings, "events", "raise", subscription_id, *code))
        for code in (("BFEA", "DBAR"), ("BFEA", "DUNB"))
    ]

    # When `monetise worker --no-views` and `monetise projections follow` run
    platform = Platform(demo_settings)
    try:
        with (
            worker(demo_settings, "worker", "--no-views") as process,
            worker(demo_settings, "projections", "follow") as follower,
        ):
            # Then the views show both events done, caught up by the follower
            # alone (this process only reads them; the worker leaves them).
            deadline = time.monotonic() + WAIT_SECONDS
            shown_events: list[Any] = []
            while time.monotonic() < deadline:
                for running in (process, follower):
                    assert running.poll() is None, running.stdout.read()  # type: ignore[union-attr]
                shown_events = [
                    platform.views.workflow_events.get(event_id) for event_id in raised
                ]
                # Resolved, and the SMS each sends on resolving delivered: it
                # is made once its event resolves, so it may still be "sent".
                if all(
                    e
                    and e["status"] == "resolved"
                    and [i["status"] for i in e["items"]] == ["completed"] * 2
                    for e in shown_events
                ):
                    break
                time.sleep(0.2)
            subscription = platform.views.subscriptions.get(subscription_id)
    finally:
        platform.close()

    assert [e["status"] if e else None for e in shown_events] == ["resolved"] * 2
    assert [
        item["status"] for event in shown_events if event for item in event["items"]
    ] == ["completed"] * 4  # each event's bar action and its SMS
    assert subscription is not None and subscription["bars"] == []
    assert (process.returncode, follower.returncode) == (0, 0)


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    ("command", "stopped"),
    [
        (("worker",), "Worker stopped."),
        (("worker", "--no-views"), "Worker stopped."),
        (("projections", "follow"), "Stopped following the read models."),
    ],
)
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_lets_a_running_command_finish_its_round_and_exit_0(
    settings: Settings, command: tuple[str, ...], stopped: str, how: signal.Signals
) -> None:
    # Given a worker or a follower running, busy or idle
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", *command],
        env=environment(settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    started = process.stdout.readline()

    # When it is asked to stop, as Ctrl-C or a service manager does
    process.send_signal(how)
    rest, _ = process.communicate(timeout=60)

    # Then it ends its round and says so, instead of being interrupted
    assert "Ctrl-C stops it" in started
    assert rest.strip().splitlines()[-1] == stopped
    assert "Traceback" not in rest and "KeyboardInterrupt" not in rest
    assert process.returncode == 0


def test_a_refused_raise_exits_2_with_the_reason_and_records_nothing(
    demo_settings: Settings,
) -> None:
    line = new_line(demo_settings)
    subscription_id = line["subscription_id"]
    before = ok(monetise(demo_settings, "subscriptions", "history", subscription_id))

    wrong_level = monetise(
        demo_settings, "events", "raise", subscription_id, "ACCT", "BUSN"
    )
    not_manual = monetise(
        demo_settings,
        "events",
        "raise",
        subscription_id,
        "BFEA",
        "DBAR",
        "--manual",
        "TOP10L",
    )
    malformed = monetise(demo_settings, "events", "raise", subscription_id, "BFEADBAR")

    assert wrong_level.returncode == 2
    assert (
        "Refused: ACCT BUSN cannot be raised on a subscription; only on: account"
        in wrong_level.stderr
    )
    assert not_manual.returncode == 2
    assert "action code TOP10L cannot be added manually" in not_manual.stderr
    assert malformed.returncode == 2
    assert "'BFEADBAR' is not TYPE CODE" in malformed.stderr
    after = ok(monetise(demo_settings, "subscriptions", "history", subscription_id))
    assert after == before


def test_an_invalid_or_taken_msisdn_is_refused_with_exit_code_2(
    demo_settings: Settings,
) -> None:
    line = new_line(demo_settings)

    invalid = monetise(
        demo_settings, "subscriptions", "create", line["account_id"], "+447700900002"
    )
    taken = monetise(
        demo_settings, "subscriptions", "create", line["account_id"], line["msisdn"]
    )

    assert invalid.returncode == 2
    assert "Refused: msisdn: '+447700900002' is not an MSISDN" in invalid.stderr
    assert taken.returncode == 2
    assert (
        f"MSISDN {line['msisdn']} belongs to subscription {line['subscription_id']}"
        in taken.stderr
    )
    found = shown(demo_settings, "subscriptions", "find", line["msisdn"])
    assert found["id"] == line["subscription_id"]


def test_commands_started_at_the_same_moment_all_succeed(
    demo_settings: Settings,
) -> None:
    # Given a database in use (as when a worker runs and agents use the CLI)
    line = new_line(demo_settings)

    # When six commands start at the same moment
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "api.cli", "subscriptions", "find", line["msisdn"]],
            env=environment(demo_settings),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]

    # Then each one answers
    failures = [
        (process.returncode, errors.strip().splitlines()[-1:])
        for process, (_, errors) in zip(processes, outputs, strict=True)
        if process.returncode != 0
    ]
    assert failures == []
    assert {json.loads(out)["id"] for out, _ in outputs} == {line["subscription_id"]}
