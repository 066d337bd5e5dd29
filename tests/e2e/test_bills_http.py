"""The detailed bill over HTTP as agents and auditors read it, and from the
``monetise bills`` command line, on SQLite and on PostgreSQL.

Lines and accounts are made through ``/api/v1``, usage is uploaded into the
inbound directory and loaded by the daemon's ``scan_once()``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.cli import app, demo_catalogue
from application.platform import Platform
from application.settings import Settings
from domain.bill_periods import period_of
from ingest.daemons import daemon
from tests.application.test_offline_rating import TARIFFS, unrated
from tests.application.test_rerating import fixed_tariffs
from tests.application.test_usage_loading import record, usage_file
from tests.conftest import auth
from tests.e2e.test_workflow_http import (
    API,
    PROBLEM,
    Line,
    assert_refused,
    created,
    new_line,
)

AGENT = auth("agent")
NOBODY = "00000000-0000-0000-0000-000000000000"
runner = CliRunner()


@pytest.fixture
def bills_api(api: TestClient) -> TestClient:
    """The API over the demo catalogue (its usage classes: VOICE_NAT, …)."""
    response = api.put(f"{API}/catalogue", json=demo_catalogue(), headers=auth("admin"))
    assert response.status_code == 200, response.text
    return api


def loaded(
    api: TestClient, platform: Platform, file_id: str, records: list[Any]
) -> None:
    """A rated file uploaded by the charging system and taken by the daemon."""
    response = api.put(
        f"{API}/inbound/rated/{file_id}.json",
        content=usage_file(file_id, records).encode(),
        headers=auth("ingest"),
    )
    assert response.status_code == 202, response.text
    (handled,) = daemon("load-rated-usage", platform).scan_once()
    assert handled.outcome == "archived"


def get(api: TestClient, path: str, role: str = "agent", **params: str) -> Any:
    response = api.get(f"{API}{path}", params=params, headers=auth(role))
    assert response.status_code == 200, response.text
    return response.json()


def line_on_day_15(api: TestClient) -> Line:
    """A line whose account is billed from the 15th, numbered ACC-15."""
    first = new_line(api)
    account = created(
        api.post(
            f"{API}/accounts",
            json={
                "customer_id": first.customer_id,
                "bill_cycle_day": 15,
                "number": "ACC-15",
            },
            headers=AGENT,
        )
    )
    subscription = created(
        api.post(
            f"{API}/subscriptions",
            json={"account_id": account, "msisdn": "447700955501", "status": "active"},
            headers=AGENT,
        )
    )
    return Line(first.customer_id, account, subscription, "447700955501")


def test_agents_and_auditors_read_the_detailed_bill_of_a_period(
    bills_api: TestClient, platform: Platform
) -> None:
    line = new_line(bills_api)
    loaded(
        bills_api,
        platform,
        "HTTP-BILL-1",
        [
            record("H-1", msisdn=line.msisdn, start_time="2026-11-02T08:00:00Z"),
            record(
                "H-2",
                msisdn=line.msisdn,
                usage_class="SMS_NAT",
                duration_seconds=None,
                units=1,
                start_time="2026-11-30T23:59:59Z",
                charge={"amount": "0.0400", "currency": "GBP"},
                discount={"amount": "0.0100"},
            ),
            record("H-3", msisdn=line.msisdn, start_time="2026-12-01T00:00:00Z"),
        ],
    )
    path = f"/subscriptions/{line.subscription_id}/bills/2026-11-01"

    bill = get(bills_api, path)

    assert bill["period"]["name"] == "2026-11-01"
    assert [
        (x["record_id"], x["description"], x["quantity"], x["net"])
        for x in bill["lines"]
    ] == [
        ("H-1", "call", {"value": 125, "unit": "seconds"}, "0.2500"),
        ("H-2", "SMS", {"value": 1, "unit": "units"}, "0.0300"),
    ]
    assert [
        (t["usage_class"], t["records"], t["net"])
        for t in bill["totals_by_usage_class"]
    ] == [("SMS_NAT", 1, "0.0300"), ("VOICE_NAT", 1, "0.2500")]
    assert bill["total"] == {
        "records": 2,
        "charge": "0.2900",
        "discount": "0.0100",
        "adjustments": "0",
        "net": "0.2800",
    }
    assert bill["adjustments"] == []
    assert get(bills_api, path, "auditor") == bill
    assert get(bills_api, path, "admin") == bill
    refused = bills_api.get(f"{API}{path}", headers=auth("ingest"))
    assert_refused(refused, 403, "agent or auditor")
    assert_refused(bills_api.get(f"{API}{path}"), 401, "API key")
    december = get(bills_api, f"/subscriptions/{line.subscription_id}/bills/2026-12-01")
    assert [x["record_id"] for x in december["lines"]] == ["H-3"]


def test_an_account_shows_its_periods_and_the_summary_of_one(
    bills_api: TestClient, platform: Platform
) -> None:
    line = line_on_day_15(bills_api)
    second = created(
        bills_api.post(
            f"{API}/subscriptions",
            json={
                "account_id": line.account_id,
                "msisdn": "447700955502",
                "payment_type": "prepaid",
                "status": "active",
            },
            headers=AGENT,
        )
    )
    loaded(
        bills_api,
        platform,
        "HTTP-BILL-2",
        [
            record("A-1", msisdn=line.msisdn, start_time="2026-11-14T23:59:59Z"),
            record("A-2", msisdn=line.msisdn, start_time="2026-11-15T00:00:00Z"),
            record(
                "A-3",
                msisdn="447700955502",
                start_time="2026-12-14T12:00:00Z",
                charge={"amount": "1.1000", "currency": "GBP"},
            ),
        ],
    )
    path = f"/accounts/{line.account_id}/bills"

    listed = get(bills_api, path)
    summary = get(bills_api, path, period="2026-11-15")

    assert listed["bill_cycle_day"] == 15
    assert listed["current"] == period_of(15, datetime.now(UTC)).name
    assert [(p["name"], p["records"]) for p in listed["periods"]] == [
        ("2026-11-15", 2),
        ("2026-10-15", 1),
    ]
    assert summary["period"]["end"] == "2026-12-15T00:00:00.000000+00:00"
    assert [
        (s["subscription_id"], s["payment_type"], s["total"]["net"])
        for s in summary["subscriptions"]
    ] == [(line.subscription_id, "postpaid", "0.2500"), (second, "prepaid", "1.1000")]
    assert summary["total"]["net"] == "1.3500"
    assert [t["payment_type"] for t in summary["totals_by_payment_type"]] == [
        "postpaid",
        "prepaid",
    ]
    current = get(bills_api, path, period="current")
    assert current["period"]["name"] == listed["current"]


def test_a_rerate_after_the_period_closed_shows_as_an_adjustment(
    bills_api: TestClient, platform: Platform, settings: Settings
) -> None:
    """October's call, repriced now: October's bill keeps what was billed and
    the current bill (the period holding the correction, by the machine's
    clock) has the adjustment. By hand: 125 s at 0.10 a minute with a first
    whole minute and 0.05 to connect is 0.2583; at 0.20, 0.4667; delta 0.2084."""
    admin = auth("admin")
    assert bills_api.post(f"{API}/tariffs", json=TARIFFS, headers=admin).is_success
    line = new_line(bills_api)
    response = bills_api.put(
        f"{API}/inbound/unrated/U-ADJ.json",
        content=usage_file(
            "U-ADJ",
            [unrated("ADJ-1", line.msisdn, start_time="2026-10-20T12:00:00Z")],
            "unrated",
        ).encode(),
        headers=auth("ingest"),
    )
    assert response.status_code == 202, response.text
    platform.views.catch_up()
    (handled,) = daemon("load-unrated-usage", platform).scan_once()
    assert handled.outcome == "archived"
    assert bills_api.post(
        f"{API}/tariffs", json=fixed_tariffs(), headers=admin
    ).is_success
    rerun = bills_api.post(
        f"{API}/rerating-jobs", json={"usage_class": "VOICE_NAT"}, headers=AGENT
    )
    assert rerun.status_code == 201, rerun.text

    bill = get(bills_api, f"/subscriptions/{line.subscription_id}/bills/current")
    october = get(bills_api, f"/subscriptions/{line.subscription_id}/bills/2026-10-01")

    assert [
        (a["record_id"], a["period"]["name"], a["old_net"], a["new_net"], a["delta"])
        for a in bill["adjustments"]
    ] == [("ADJ-1", "2026-10-01", "0.2583", "0.4667", "0.2084")]
    assert bill["adjustments"][0]["run_id"] == rerun.json()["id"]
    assert (bill["total"]["adjustments"], bill["total"]["net"]) == ("0.2084", "0.2084")
    assert [(x["record_id"], x["net"]) for x in october["lines"]] == [
        ("ADJ-1", "0.2583")
    ]
    assert october["total"]["net"] == "0.2583"
    text = monetise(settings, "bills", "subscription", line.msisdn)
    assert text.exit_code == 0, text.output
    assert "Adjustments (rerating of closed periods):" in text.stdout
    assert "ADJ-1" in text.stdout and "0.2583     0.4667     0.2084" in text.stdout
    assert "adjustments 0.2084, net 0.2084 GBP" in text.stdout
    closed = monetise(
        settings, "bills", "subscription", line.msisdn, "--period", "2026-10-01"
    )
    assert f"0.2583 (adjusted in {bill['period']['name']})" in closed.stdout


@pytest.mark.parametrize(
    ("period", "reason"),
    [
        ("2026-11-02", "periods start on day 1"),
        ("november", "YYYY-MM-DD"),
        ("2026-02-30", "not a bill period"),
    ],
)
def test_bad_periods_and_unknown_owners_are_refused(
    bills_api: TestClient, period: str, reason: str
) -> None:
    line = new_line(bills_api)

    refused = bills_api.get(
        f"{API}/subscriptions/{line.subscription_id}/bills/{period}", headers=AGENT
    )
    assert_refused(refused, 422, reason)
    assert refused.json()["errors"][0]["path"] == "path.period"
    refused = bills_api.get(
        f"{API}/accounts/{line.account_id}/bills",
        params={"period": period},
        headers=AGENT,
    )
    assert_refused(refused, 422, reason)
    assert refused.json()["errors"][0]["path"] == "query.period"

    unknown = bills_api.get(
        f"{API}/subscriptions/{NOBODY}/bills/current", headers=AGENT
    )
    assert_refused(unknown, 404, f"no subscription {NOBODY}")
    assert_refused(
        bills_api.get(f"{API}/accounts/{NOBODY}/bills", headers=AGENT),
        404,
        f"no account {NOBODY}",
    )
    malformed: httpx.Response = bills_api.get(
        f"{API}/subscriptions/not-a-uuid/bills/current", headers=AGENT
    )
    assert malformed.status_code == 422
    assert malformed.headers["content-type"] == PROBLEM
    assert malformed.json()["errors"][0]["path"] == "path.subscription_id"


# --- the command line -----------------------------------------------------------


def monetise(settings: Settings, *args: str) -> Result:
    env = {"MONETISE_HOME": str(settings.home)}
    return runner.invoke(
        app, list(args), env={**env, "MONETISE_DATABASE_URL": settings.database_url}
    )


def test_the_command_line_prints_the_bill_and_the_account(
    bills_api: TestClient, platform: Platform, settings: Settings
) -> None:
    line = line_on_day_15(bills_api)
    loaded(
        bills_api,
        platform,
        "CLI-BILL",
        [
            record("C-1", msisdn=line.msisdn, start_time="2026-11-20T10:00:00Z"),
            record(
                "C-2",
                msisdn=line.msisdn,
                usage_class="DATA_NAT",
                duration_seconds=None,
                volume_bytes=2048,
                start_time="2026-11-21T10:00:00Z",
                charge={"amount": "0.0100", "currency": "GBP"},
            ),
        ],
    )

    text = monetise(
        settings, "bills", "subscription", line.msisdn, "--period", "2026-11-15"
    )
    as_json = monetise(
        settings,
        "bills",
        "subscription",
        line.subscription_id,
        "--period",
        "2026-11-15",
        "--json",
    )
    account = monetise(settings, "bills", "account", "ACC-15")
    summary = monetise(settings, "bills", "account", "ACC-15", "--period", "2026-11-15")

    assert text.exit_code == 0, text.output
    assert "C-1" in text.stdout and "125 s" in text.stdout
    assert "C-2" in text.stdout and "2048 B" in text.stdout
    assert "Total: 2 record(s); charge 0.2600, discount 0, net 0.2600 GBP" in (
        text.stdout
    )
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["total"]["net"] == "0.2600"
    assert account.exit_code == 0, account.output
    assert "period 2026-11-15" in account.stdout and "2 record(s)" in account.stdout
    assert summary.exit_code == 0, summary.output
    assert line.subscription_id in summary.stdout
    assert "net 0.2600 GBP" in summary.stdout
    bad = monetise(settings, "bills", "subscription", line.msisdn, "--period", "1-1")
    assert bad.exit_code == 2
    assert "--period" in bad.output
    unknown = monetise(settings, "bills", "account", NOBODY)
    assert unknown.exit_code == 2
    assert f"no account {NOBODY}" in unknown.output
