"""Workflow events over HTTP, as agents, auditors and strangers use them.

Each test drives ``/api/v1`` through the TestClient and lets the background work
run with ``platform.work_until_idle()``, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi.testclient import TestClient

from api.cli import demo_catalogue
from application.network import SimulatorRule
from application.platform import Platform
from application.settings import Settings
from application.worker import Worker
from tests.conftest import auth

API = "/api/v1"
PROBLEM = "application/problem+json"
AGENT = auth("agent")
AGENT_NAME = "agent-user"


@dataclass(frozen=True)
class Line:
    """A customer, their account and one subscription, as the API returned them."""

    customer_id: str
    account_id: str
    subscription_id: str
    msisdn: str


@pytest.fixture
def care_api(api: TestClient) -> TestClient:
    """The API over a catalogue with the demo processes and a line cease."""
    document = demo_catalogue()
    # An immediate disconnection, so that a test need not wait 14 days for one.
    document["action_codes"].append(
        {
            "code": "CEASE",
            "type": "DISC",
            "description": "Disconnect at the customer's request",
            "parameters": {"reason": "customer request"},
            "levels": ["subscription"],
        }
    )
    document["event_codes"].append(
        {
            "type": "CONN",
            "code": "CEAS",
            "description": "Cease the line",
            "auto_resolve": True,
            "default_actions": [{"action": "CEASE", "sequence": 10, "when": "raise"}],
        }
    )
    response = api.put(f"{API}/catalogue", json=document, headers=auth("admin"))
    assert response.status_code == 200, response.text
    return api


_numbers: Iterator[int] = itertools.count(447700900100)


def created(response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def new_line(
    api: TestClient, *, payment_type: str = "postpaid", status: str = "active"
) -> Line:
    customer_id = created(
        api.post(
            f"{API}/customers",
            json={"name": "Ada Lovelace", "email": "ada@example.com"},
            headers=AGENT,
        )
    )
    account_id = created(
        api.post(f"{API}/accounts", json={"customer_id": customer_id}, headers=AGENT)
    )
    msisdn = str(next(_numbers))
    subscription_id = created(
        api.post(
            f"{API}/subscriptions",
            json={
                "account_id": account_id,
                "msisdn": msisdn,
                "payment_type": payment_type,
                "status": status,
            },
            headers=AGENT,
        )
    )
    return Line(customer_id, account_id, subscription_id, msisdn)


def raise_on(
    api: TestClient,
    line: Line,
    event: str,
    *manual: str,
    note: str = "",
) -> httpx.Response:
    event_type, event_code = event.split()
    response: httpx.Response = api.post(
        f"{API}/subscriptions/{line.subscription_id}/workflow-events",
        json={
            "event_type": event_type,
            "event_code": event_code,
            "note": note,
            "manual_actions": list(manual),
        },
        headers=AGENT,
    )
    return response


def raised(api: TestClient, line: Line, event: str, *manual: str) -> str:
    return created(raise_on(api, line, event, *manual))


def read(api: TestClient, path: str) -> Any:
    response = api.get(f"{API}{path}", headers=AGENT)
    assert response.status_code == 200, response.text
    return response.json()


def post(api: TestClient, path: str, body: Any = None) -> Any:
    response = api.post(f"{API}{path}", json=body, headers=AGENT)
    assert response.status_code == 200, response.text
    return response.json()


def items_by_code(event: dict[str, Any]) -> dict[str, str]:
    """Status of each item of an event, by action code (or channel)."""
    return {
        item["action_code"] or item["channel"]: item["status"]
        for item in event["items"]
    }


def stored_events(platform: Platform) -> int:
    return platform.care.recorder.max_notification_id() or 0


@dataclass(frozen=True)
class Recorded:
    """What is stored about a subscription: to show that a refusal left it alone."""

    events: int
    version: int
    history: list[dict[str, Any]]


def recorded(api: TestClient, platform: Platform, line: Line) -> Recorded:
    return Recorded(
        stored_events(platform),
        platform.care.subscription(UUID(line.subscription_id)).version,
        read(api, f"/subscriptions/{line.subscription_id}/history"),
    )


def assert_refused(response: httpx.Response, status: int, reason: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert reason in response.json()["detail"]


# --- the everyday path --------------------------------------------------------


def test_an_agent_bars_data_and_sees_the_event_resolved_and_the_bar_applied(
    care_api: TestClient, platform: Platform
) -> None:
    # Given a customer with an account and an active subscription
    customer = care_api.post(
        f"{API}/customers",
        json={"name": "Ada Lovelace", "email": "ada@example.com"},
        headers=AGENT,
    )
    account_id = created(
        care_api.post(
            f"{API}/accounts",
            json={"customer_id": customer.json()["id"]},
            headers=AGENT,
        )
    )
    subscription_id = created(
        care_api.post(
            f"{API}/subscriptions",
            json={"account_id": account_id, "msisdn": "447700900001"},
            headers=AGENT,
        )
    )

    # When an agent raises BFEA DBAR and the background work runs
    event_id = created(
        care_api.post(
            f"{API}/subscriptions/{subscription_id}/workflow-events",
            json={"event_type": "BFEA", "event_code": "DBAR", "note": "customer asked"},
            headers=AGENT,
        )
    )
    platform.work_until_idle()

    # Then the event is resolved with its DBARA item completed
    assert customer.status_code == 201
    assert customer.headers["location"] == f"{API}/customers/{customer.json()['id']}"
    event = read(care_api, f"/workflow-events/{event_id}")
    assert (event["status"], event["raised_by"], event["note"]) == (
        "resolved",
        AGENT_NAME,
        "customer asked",
    )
    assert [
        (item["action_code"], item["status"])
        for item in event["items"]
        if item["kind"] == "action"
    ] == [("DBARA", "completed")]
    # and the subscription is barred for data, found by its MSISDN too
    subscription = read(care_api, f"/subscriptions/{subscription_id}")
    assert subscription["bars"] == ["DATA"]
    found = read(care_api, "/subscriptions?msisdn=447700900001")
    assert [s["id"] for s in found] == [subscription_id]


def test_the_history_tells_the_raise_items_and_resolution_in_order(
    care_api: TestClient, platform: Platform
) -> None:
    line = new_line(care_api)

    raised(care_api, line, "BFEA DBAR")
    platform.work_until_idle()
    history = read(care_api, f"/subscriptions/{line.subscription_id}/history")

    assert [entry["kind"] for entry in history] == [
        "event raised",
        "item created",
        "bar applied",
        "item completed",
        "event resolved",
        "item created",
        "item sent",
        "item completed",
    ]
    summaries = [entry["summary"] for entry in history]
    assert summaries[0] == f"BFEA DBAR raised by {AGENT_NAME}: Add data bar"
    assert summaries[1].startswith("BFEA DBAR: action DBARA (Bar data) created, due ")
    assert summaries[2:5] == [
        "DATA bar applied",
        "BFEA DBAR: action DBARA (Bar data) completed: DATA bar applied",
        "BFEA DBAR resolved automatically",
    ]
    assert summaries[6] == "BFEA DBAR: communication sms DBARSMS sent (attempt 1)"


def test_searching_for_an_msisdn_nobody_holds_finds_nothing(
    care_api: TestClient,
) -> None:
    new_line(care_api)

    assert read(care_api, "/subscriptions?msisdn=447999999999") == []


def test_a_new_connection_activates_the_line_and_raises_its_linked_welcome(
    care_api: TestClient, platform: Platform
) -> None:
    line = new_line(care_api, status="pending")

    connection = raised(care_api, line, "CONN NEW")
    platform.work_until_idle()

    event = read(care_api, f"/workflow-events/{connection}")
    assert event["status"] == "resolved"
    assert read(care_api, f"/subscriptions/{line.subscription_id}")["status"] == (
        "active"
    )
    [welcome] = event["linked_events"]
    assert (welcome["event_type"], welcome["event_code"], welcome["source"]) == (
        "CONN",
        "WELC",
        "linked",
    )
    welcome_event = read(care_api, f"/workflow-events/{welcome['id']}")
    assert welcome_event["initiating_event_id"] == connection
    assert welcome_event["status"] == "resolved"
    assert items_by_code(welcome_event) == {"sms": "completed", "email": "completed"}


def test_resolving_an_open_event_by_hand_raises_its_linked_events(
    care_api: TestClient, platform: Platform
) -> None:
    # Given an outgoing bar for non-payment, waiting seven days for its action
    line = new_line(care_api)
    bar = raised(care_api, line, "CRED BOUT")
    platform.work_until_idle()
    waiting = read(care_api, f"/workflow-events/{bar}")

    # When an agent resolves it
    outcome = post(care_api, f"/workflow-events/{bar}/resolve")
    platform.work_until_idle()

    # Then its linked disconnection is raised
    assert (waiting["status"], waiting["linked_events"]) == ("open", [])
    assert outcome == {"outcome": "resolved"}
    event = read(care_api, f"/workflow-events/{bar}")
    assert (event["status"], event["resolved_by"], event["resolved_automatically"]) == (
        "resolved",
        AGENT_NAME,
        False,
    )
    assert [
        (linked["event_type"], linked["event_code"], linked["status"])
        for linked in event["linked_events"]
    ] == [("CRED", "DISC", "open")]


def test_an_agent_adds_a_manual_top_up_to_an_open_scheduled_top_up(
    care_api: TestClient, platform: Platform
) -> None:
    # Given a prepaid line with a top-up scheduled in three days
    line = new_line(care_api, payment_type="prepaid")
    top_up = raised(care_api, line, "TOPU SCHD")
    platform.work_until_idle()

    # When an agent adds a top-up now
    outcome = post(
        care_api, f"/workflow-events/{top_up}/actions", {"action_code": "TOP10"}
    )
    platform.work_until_idle()

    # Then it is applied at once while the scheduled one still waits
    assert outcome == {"outcome": "action added"}
    event = read(care_api, f"/workflow-events/{top_up}")
    assert event["status"] == "open"
    assert items_by_code(event) == {"TOP10L": "awaiting", "TOP10": "completed"}
    subscription = read(care_api, f"/subscriptions/{line.subscription_id}")
    assert subscription["prepaid_balance"] == "10.00"
    summaries = [
        e["summary"]
        for e in read(care_api, f"/subscriptions/{line.subscription_id}/history")
    ]
    assert f"TOPU SCHD: action TOP10 (Top up 10.00) added by {AGENT_NAME}" in summaries


def test_cancelling_an_event_cancels_its_awaiting_items(
    care_api: TestClient, platform: Platform
) -> None:
    line = new_line(care_api, payment_type="prepaid")
    top_up = raised(care_api, line, "TOPU SCHD")
    platform.work_until_idle()
    [item] = read(care_api, f"/workflow-events/{top_up}")["items"]

    outcome = post(
        care_api,
        f"/workflow-events/{top_up}/cancel",
        {"reason": "customer changed their mind"},
    )
    platform.work_until_idle()

    assert outcome == {"outcome": "cancelled", "cancelled_items": [item["item_id"]]}
    event = read(care_api, f"/workflow-events/{top_up}")
    assert (event["status"], event["cancelled_by"], event["cancel_reason"]) == (
        "cancelled",
        AGENT_NAME,
        "customer changed their mind",
    )
    assert items_by_code(event) == {"TOP10L": "cancelled"}
    assert read(care_api, "/actioned-items?status=awaiting") == []


def test_the_actioned_item_queue_lists_items_by_status(
    care_api: TestClient, platform: Platform
) -> None:
    prepaid = new_line(care_api, payment_type="prepaid")
    postpaid = new_line(care_api)
    raised(care_api, prepaid, "TOPU SCHD")
    raised(care_api, postpaid, "BFEA DBAR")
    platform.work_until_idle()

    awaiting = read(care_api, "/actioned-items?status=awaiting")
    completed = read(care_api, "/actioned-items?status=completed")

    assert [(i["action_code"], i["subscription_id"]) for i in awaiting] == [
        ("TOP10L", prepaid.subscription_id)
    ]
    assert sorted(
        (i["action_code"] or i["channel"], i["subscription_id"]) for i in completed
    ) == [("DBARA", postpaid.subscription_id), ("sms", postpaid.subscription_id)]


def test_a_dead_network_action_retried_by_an_agent_completes_the_event(
    retry_at_once: Settings, care_api: TestClient, platform: Platform
) -> None:
    # Given a port-in that the network refuses on every attempt
    line = new_line(care_api)
    platform.network.set_rules(
        [
            SimulatorRule(
                command="PORT_IN", outcomes=("error",), reason="number not portable"
            )
        ]
    )
    port_in = raised(care_api, line, "CONN PORT")
    platform.work_until_idle()
    [dead] = read(care_api, "/actioned-items?status=dead")
    open_event = read(care_api, f"/workflow-events/{port_in}")

    # When the network accepts it again and an agent retries the dead item
    platform.network.set_rules([])
    outcome = post(care_api, f"/actioned-items/{dead['item_id']}/retry")
    platform.work_until_idle()

    # Then the port-in completes and the event resolves
    assert (dead["action_code"], dead["attempts"], dead["last_error"]) == (
        "PORTIN",
        5,
        "number not portable",
    )
    assert open_event["status"] == "open"
    assert outcome == {"outcome": "retrying"}
    event = read(care_api, f"/workflow-events/{port_in}")
    assert event["status"] == "resolved"
    assert items_by_code(event) == {"PORTIN": "completed"}
    assert read(care_api, "/actioned-items?status=dead") == []
    history = read(care_api, f"/subscriptions/{line.subscription_id}/history")
    assert f"CONN PORT: action PORTIN (Port the number in) retried by {AGENT_NAME}" in [
        entry["summary"] for entry in history
    ]


def test_an_agent_cancels_an_awaiting_item_and_its_event_resolves(
    care_api: TestClient, platform: Platform
) -> None:
    line = new_line(care_api, payment_type="prepaid")
    top_up = raised(care_api, line, "TOPU SCHD")
    platform.work_until_idle()
    [item] = read(care_api, f"/workflow-events/{top_up}")["items"]

    outcome = post(
        care_api, f"/actioned-items/{item['item_id']}/cancel", {"reason": "not wanted"}
    )
    platform.work_until_idle()

    assert outcome == {"outcome": "cancelled"}
    cancelled = read(care_api, f"/actioned-items/{item['item_id']}")
    assert cancelled["status"] == "cancelled"
    assert read(care_api, f"/workflow-events/{top_up}")["status"] == "resolved"
    subscription = read(care_api, f"/subscriptions/{line.subscription_id}")
    assert Decimal(subscription["prepaid_balance"]) == 0


def test_an_account_event_moves_the_account_to_business(
    care_api: TestClient, platform: Platform
) -> None:
    line = new_line(care_api)

    move = created(
        care_api.post(
            f"{API}/accounts/{line.account_id}/workflow-events",
            json={"event_type": "ACCT", "event_code": "BUSN"},
            headers=AGENT,
        )
    )
    platform.work_until_idle()

    assert read(care_api, f"/workflow-events/{move}")["status"] == "resolved"
    assert read(care_api, f"/accounts/{line.account_id}")["account_type"] == "BUSN"
    assert [
        e["summary"] for e in read(care_api, f"/accounts/{line.account_id}/history")
    ][:1] == [f"ACCT BUSN raised by {AGENT_NAME}: Move account to business"]


# --- refused requests record nothing ------------------------------------------


@pytest.mark.parametrize(
    ("event", "manual", "payment_type", "reason"),
    [
        ("BFEA NOPE", [], "postpaid", "event code BFEA NOPE is not in the catalogue"),
        (
            "ACCT BUSN",
            [],
            "postpaid",
            "ACCT BUSN cannot be raised on a subscription; only on: account",
        ),
        ("BFEA DBAR", ["NOPE"], "postpaid", "action code NOPE is not in the catalogue"),
        (
            "BFEA DBAR",
            ["TOP10L"],
            "postpaid",
            "action code TOP10L cannot be added manually",
        ),
        (
            "TOPU AIRT",
            [],
            "postpaid",
            "is postpaid: top-ups are for prepaid subscriptions",
        ),
    ],
    ids=[
        "unknown-code",
        "level-not-allowed",
        "unknown-manual-action",
        "non-manual-action",
        "top-up-on-postpaid",
    ],
)
def test_a_refused_raise_says_why_and_records_nothing(
    care_api: TestClient,
    platform: Platform,
    event: str,
    manual: list[str],
    payment_type: str,
    reason: str,
) -> None:
    line = new_line(care_api, payment_type=payment_type)
    before = recorded(care_api, platform, line)

    response = raise_on(care_api, line, event, *manual)

    assert_refused(response, 409, reason)
    assert recorded(care_api, platform, line) == before


def test_raising_an_inactive_event_code_or_action_is_refused_and_records_nothing(
    care_api: TestClient, platform: Platform
) -> None:
    line = new_line(care_api)
    for path in ("event-codes/BFEA/DBAR", "action-codes/DUNBA"):
        deactivated = care_api.post(
            f"{API}/catalogue/{path}/deactivate",
            json={"reason": "withdrawn"},
            headers=auth("admin"),
        )
        assert deactivated.status_code == 200, deactivated.text
    before = recorded(care_api, platform, line)

    inactive_code = raise_on(care_api, line, "BFEA DBAR")
    inactive_action = raise_on(care_api, line, "SERV ADDO", "DUNBA")

    assert_refused(inactive_code, 409, "event code BFEA DBAR is inactive")
    assert_refused(inactive_action, 409, "action code DUNBA is inactive")
    assert recorded(care_api, platform, line) == before


def test_a_subscription_event_raised_on_an_account_is_refused(
    care_api: TestClient, platform: Platform
) -> None:
    line = new_line(care_api)
    events_before = stored_events(platform)

    response = care_api.post(
        f"{API}/accounts/{line.account_id}/workflow-events",
        json={"event_type": "BFEA", "event_code": "DBAR"},
        headers=AGENT,
    )

    assert_refused(
        response, 409, "BFEA DBAR cannot be raised on an account; only on: subscription"
    )
    assert stored_events(platform) == events_before


def test_adding_a_non_manual_action_by_hand_is_refused_and_records_nothing(
    care_api: TestClient, platform: Platform
) -> None:
    line = new_line(care_api, payment_type="prepaid")
    top_up = raised(care_api, line, "TOPU SCHD")
    platform.work_until_idle()
    before = recorded(care_api, platform, line)

    response = care_api.post(
        f"{API}/workflow-events/{top_up}/actions",
        json={"action_code": "TOP10L"},
        headers=AGENT,
    )

    assert_refused(response, 409, "action code TOP10L cannot be added manually")
    assert recorded(care_api, platform, line) == before
    assert items_by_code(read(care_api, f"/workflow-events/{top_up}")) == {
        "TOP10L": "awaiting"
    }


def test_resolving_or_cancelling_a_resolved_event_is_refused_and_records_nothing(
    care_api: TestClient, platform: Platform
) -> None:
    line = new_line(care_api)
    bar = raised(care_api, line, "BFEA DBAR")
    platform.work_until_idle()
    before = recorded(care_api, platform, line)

    resolve = care_api.post(f"{API}/workflow-events/{bar}/resolve", headers=AGENT)
    cancel = care_api.post(f"{API}/workflow-events/{bar}/cancel", headers=AGENT)

    assert_refused(resolve, 409, "workflow event BFEA DBAR is already resolved")
    assert_refused(cancel, 409, "workflow event BFEA DBAR is already resolved")
    assert recorded(care_api, platform, line) == before


def test_retrying_or_cancelling_a_completed_item_is_refused_and_records_nothing(
    care_api: TestClient, platform: Platform
) -> None:
    line = new_line(care_api)
    bar = raised(care_api, line, "BFEA DBAR")
    platform.work_until_idle()
    item_id = read(care_api, f"/workflow-events/{bar}")["items"][0]["item_id"]
    before = recorded(care_api, platform, line)

    retry = care_api.post(f"{API}/actioned-items/{item_id}/retry", headers=AGENT)
    cancel = care_api.post(f"{API}/actioned-items/{item_id}/cancel", headers=AGENT)

    assert_refused(
        retry, 409, "only a dead or errored item can be retried; this one is completed"
    )
    assert_refused(cancel, 409, "only an item not yet sent can be cancelled")
    assert recorded(care_api, platform, line) == before


def test_barring_a_disconnected_subscription_is_refused_and_records_nothing(
    care_api: TestClient, platform: Platform
) -> None:
    line = new_line(care_api)
    raised(care_api, line, "CONN CEAS")
    platform.work_until_idle()
    subscription = read(care_api, f"/subscriptions/{line.subscription_id}")
    before = recorded(care_api, platform, line)

    response = raise_on(care_api, line, "BFEA DBAR")

    assert subscription["status"] == "disconnected"
    assert_refused(response, 409, f"DBARA: subscription {line.msisdn} is disconnected")
    assert recorded(care_api, platform, line) == before


def test_a_duplicate_msisdn_is_refused_and_records_nothing(
    care_api: TestClient, platform: Platform
) -> None:
    line = new_line(care_api)
    events_before = stored_events(platform)

    response = care_api.post(
        f"{API}/subscriptions",
        json={"account_id": line.account_id, "msisdn": line.msisdn},
        headers=AGENT,
    )

    assert_refused(
        response,
        409,
        f"MSISDN {line.msisdn} belongs to subscription {line.subscription_id}",
    )
    assert stored_events(platform) == events_before
    found = read(care_api, f"/subscriptions?msisdn={line.msisdn}")
    assert [s["id"] for s in found] == [line.subscription_id]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/subscriptions", {"msisdn": "+44 7700 900123"}, "body.msisdn"),
        (
            "/subscriptions",
            {"msisdn": "447700900123", "payment_type": "credit"},
            "body.payment_type",
        ),
        ("/accounts", {"currency": "GBP"}, "body.customer_id"),
        ("/customers", {"name": ""}, "body.name"),
        ("/customers", {"name": "Ada", "email": "ada-at-home"}, "body.email"),
    ],
    ids=["bad-msisdn", "unknown-payment-type", "no-customer", "no-name", "bad-email"],
)
def test_an_invalid_field_is_a_422_problem_naming_it_and_records_nothing(
    care_api: TestClient,
    platform: Platform,
    path: str,
    body: dict[str, str],
    field: str,
) -> None:
    line = new_line(care_api)
    events_before = stored_events(platform)
    if path == "/subscriptions":
        body = {"account_id": line.account_id, **body}

    response = care_api.post(f"{API}{path}", json=body, headers=AGENT)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert field in [error["path"] for error in problem["errors"]]
    assert field.removeprefix("body.") in problem["detail"]
    assert stored_events(platform) == events_before


def test_unknown_ids_are_404_problems(care_api: TestClient) -> None:
    nobody = "00000000-0000-4000-8000-000000000000"

    responses = [
        care_api.get(f"{API}/subscriptions/{nobody}", headers=AGENT),
        care_api.get(f"{API}/workflow-events/{nobody}", headers=AGENT),
        care_api.post(f"{API}/workflow-events/{nobody}/resolve", headers=AGENT),
        care_api.post(f"{API}/actioned-items/{nobody}/retry", headers=AGENT),
        care_api.post(
            f"{API}/subscriptions/{nobody}/workflow-events",
            json={"event_type": "BFEA", "event_code": "DBAR"},
            headers=AGENT,
        ),
    ]

    assert [(r.status_code, r.headers["content-type"]) for r in responses] == [
        (404, PROBLEM)
    ] * len(responses)
    assert all(nobody in r.json()["detail"] for r in responses)


# --- who may do what ----------------------------------------------------------


def test_a_request_without_a_known_key_is_401(care_api: TestClient) -> None:
    line = new_line(care_api)

    without = care_api.get(f"{API}/subscriptions/{line.subscription_id}")
    wrong = care_api.post(
        f"{API}/customers",
        json={"name": "Mallory"},
        headers={"Authorization": "Bearer not-a-key"},
    )

    assert (without.status_code, wrong.status_code) == (401, 401)
    assert without.headers["www-authenticate"] == "Bearer"
    assert without.headers["content-type"] == PROBLEM
    assert wrong.json()["detail"] == "the API key is not known"


def test_an_auditor_reads_everything_but_may_change_nothing(
    care_api: TestClient, platform: Platform
) -> None:
    line = new_line(care_api, payment_type="prepaid")
    top_up = raised(care_api, line, "TOPU SCHD")
    platform.work_until_idle()
    [item] = read(care_api, f"/workflow-events/{top_up}")["items"]
    events_before = stored_events(platform)
    auditor = auth("auditor")
    reads = [
        f"/customers/{line.customer_id}",
        f"/accounts/{line.account_id}",
        f"/subscriptions/{line.subscription_id}",
        f"/subscriptions?msisdn={line.msisdn}",
        f"/subscriptions/{line.subscription_id}/history",
        f"/workflow-events/{top_up}",
        "/actioned-items?status=awaiting",
        f"/actioned-items/{item['item_id']}",
    ]
    writes: list[tuple[str, dict[str, Any] | None]] = [
        ("/customers", {"name": "Eve"}),
        ("/accounts", {"customer_id": line.customer_id}),
        ("/subscriptions", {"account_id": line.account_id, "msisdn": "447700900999"}),
        (
            f"/subscriptions/{line.subscription_id}/workflow-events",
            {"event_type": "TOPU", "event_code": "AIRT"},
        ),
        (
            f"/accounts/{line.account_id}/workflow-events",
            {"event_type": "ACCT", "event_code": "BUSN"},
        ),
        (f"/workflow-events/{top_up}/actions", {"action_code": "TOP10"}),
        (f"/workflow-events/{top_up}/resolve", None),
        (f"/workflow-events/{top_up}/cancel", None),
        (f"/actioned-items/{item['item_id']}/retry", None),
        (f"/actioned-items/{item['item_id']}/cancel", None),
    ]

    read_statuses = {
        path: care_api.get(f"{API}{path}", headers=auditor).status_code
        for path in reads
    }
    write_statuses = {
        path: care_api.post(f"{API}{path}", json=body, headers=auditor).status_code
        for path, body in writes
    }

    assert read_statuses == dict.fromkeys(reads, 200)
    assert write_statuses == dict.fromkeys(write_statuses, 403)
    assert stored_events(platform) == events_before


def test_a_key_for_ingest_only_may_not_read_customer_care(
    care_api: TestClient,
) -> None:
    line = new_line(care_api)

    response = care_api.get(
        f"{API}/subscriptions/{line.subscription_id}", headers=auth("ingest")
    )

    assert response.status_code == 403
    assert "this needs the role agent or auditor" in response.json()["detail"]


# --- agents acting at once ----------------------------------------------------


@contextmanager
def worker_running(platform: Platform) -> Iterator[None]:
    """The background worker of ``monetise up``, in its thread, for the block."""
    worker = Worker(platform, idle_interval=0.01)
    worker.start()
    try:
        yield
    finally:
        worker.stop()


@pytest.mark.parametrize("worker", ["afterwards", "meanwhile"])
def test_forty_top_ups_raised_at_once_are_all_recorded_and_applied(
    care_api: TestClient, platform: Platform, worker: str
) -> None:
    # Given one prepaid subscription
    line = new_line(care_api, payment_type="prepaid")

    # When 40 top-ups are raised on it from 8 threads, each reading it back,
    # with the background worker running meanwhile or afterwards
    def top_up(n: int) -> tuple[int, Any, int]:
        response = raise_on(care_api, line, "TOPU AIRT", note=f"top-up {n}")
        reading = care_api.get(
            f"{API}/subscriptions/{line.subscription_id}", headers=AGENT
        )
        return response.status_code, response.json(), reading.status_code

    background = worker_running(platform) if worker == "meanwhile" else nullcontext()
    with background, ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(top_up, range(40)))
    platform.work_until_idle()

    # Then every raise was accepted, recorded and applied exactly once
    assert [(raised_, read_) for raised_, _, read_ in results] == [(201, 200)] * 40
    raised_ids = {body["id"] for _, body, _ in results}
    history = read(
        care_api, f"/subscriptions/{line.subscription_id}/history?limit=5000"
    )
    assert {
        entry["workflow_event_id"]
        for entry in history
        if entry["kind"] == "event raised"
    } == raised_ids
    assert [entry["kind"] for entry in history].count("event resolved") == 40
    assert sorted(
        entry["detail"]["note"] for entry in history if entry["kind"] == "event raised"
    ) == sorted(f"top-up {n}" for n in range(40))
    subscription = read(care_api, f"/subscriptions/{line.subscription_id}")
    assert subscription["prepaid_balance"] == "400.00"


def test_two_events_raised_between_two_rounds_of_background_work_both_resolve(
    care_api: TestClient, platform: Platform
) -> None:
    # Given a subscription the background work has already acted on
    line = new_line(care_api)
    first_bar = raised(care_api, line, "BFEA DBAR")
    platform.work_until_idle()

    # When an agent removes the data bar and applies it again before the next round
    unbar = raised(care_api, line, "BFEA DUNB")
    bar_again = raised(care_api, line, "BFEA DBAR")
    platform.work_until_idle()

    # Then both events are resolved and the bar is on
    assert [
        read(care_api, f"/workflow-events/{event_id}")["status"]
        for event_id in (first_bar, unbar, bar_again)
    ] == ["resolved"] * 3
    assert read(care_api, f"/subscriptions/{line.subscription_id}")["bars"] == ["DATA"]


def test_an_event_waits_for_an_added_action_before_it_resolves(
    care_api: TestClient, platform: Platform
) -> None:
    # Given a scheduled top-up to which an agent has just added a top-up now
    line = new_line(care_api, payment_type="prepaid")
    top_up = raised(care_api, line, "TOPU SCHD")
    platform.work_until_idle()
    [scheduled] = read(care_api, f"/workflow-events/{top_up}")["items"]
    post(care_api, f"/workflow-events/{top_up}/actions", {"action_code": "TOP10"})

    # When the agent cancels the scheduled top-up before the background work ran
    post(care_api, f"/actioned-items/{scheduled['item_id']}/cancel")
    still_open = read(care_api, f"/workflow-events/{top_up}")
    platform.work_until_idle()

    # Then the event resolves only once the added top-up is done
    assert still_open["status"] == "open"
    kinds = [
        entry["kind"]
        for entry in read(care_api, f"/subscriptions/{line.subscription_id}/history")
    ]
    assert kinds.index("topped up") < kinds.index("event resolved")
    assert read(care_api, f"/workflow-events/{top_up}")["status"] == "resolved"
