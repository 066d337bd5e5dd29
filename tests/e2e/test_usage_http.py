"""Usage files over HTTP: uploaded by a partner, loaded by the daemon, read by
agents as batches, record errors and a subscription's usage.

Each test drives ``/api/v1`` through the TestClient and runs the daemon's
``scan_once()`` where a running daemon would take the file, on SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.cli import demo_catalogue
from application.platform import Platform
from domain.usage_batch import batch_id_for
from ingest.daemons import daemon
from tests.application.test_usage_loading import record, usage_file
from tests.conftest import auth
from tests.e2e.test_workflow_http import API, PROBLEM, Line, assert_refused, new_line

SCHEMAS = Path(__file__).resolve().parents[2] / "ingest" / "schemas"
INGEST = auth("ingest")
AGENT = auth("agent")


@pytest.fixture
def usage_api(api: TestClient) -> TestClient:
    """The API over the demo catalogue (its usage classes: VOICE_NAT, …)."""
    response = api.put(f"{API}/catalogue", json=demo_catalogue(), headers=auth("admin"))
    assert response.status_code == 200, response.text
    return api


def upload(
    api: TestClient,
    name: str,
    content: str | bytes,
    directory: str = "rated",
    headers: dict[str, str] = INGEST,
) -> httpx.Response:
    body = content.encode() if isinstance(content, str) else content
    response: httpx.Response = api.put(
        f"{API}/inbound/{directory}/{name}", content=body, headers=headers
    )
    return response


def load(platform: Platform) -> list[Any]:
    """What the running load-rated-usage daemon does when a file arrives."""
    return daemon("load-rated-usage", platform).scan_once()


def read(api: TestClient, path: str, **params: str) -> Any:
    response = api.get(f"{API}{path}", params=params, headers=AGENT)
    assert response.status_code == 200, response.text
    return response.json()


def reprocess(api: TestClient, batch_id: str) -> httpx.Response:
    response: httpx.Response = api.post(
        f"{API}/usage-batches/{batch_id}/reprocess", headers=AGENT
    )
    return response


def test_an_uploaded_file_is_loaded_and_shown_as_batch_errors_and_usage(
    usage_api: TestClient, platform: Platform
) -> None:
    # Given a postpaid and a prepaid line
    postpaid, prepaid = new_line(usage_api), new_line(usage_api, payment_type="prepaid")
    content = usage_file(
        "OCS1-0100",
        [
            *(
                record(
                    f"P-{day}",
                    msisdn=postpaid.msisdn,
                    start_time=f"2026-11-{day}T12:00:00Z",
                )
                for day in (19, 20, 21)
            ),
            record(
                "Q-1",
                msisdn=prepaid.msisdn,
                charge={"amount": "1.5000", "currency": "GBP"},
            ),
            record("X-1", msisdn="447799000009"),  # nobody holds it
            record("X-2", msisdn=postpaid.msisdn, start_time="yesterday"),
        ],
    )

    # When a partner uploads a file with the ingest key and the daemon takes it
    uploaded = upload(usage_api, "OCS1-0100.json", content)
    assert uploaded.status_code == 202, uploaded.text
    (handled,) = load(platform)

    # Then the upload said where the file went, and the daemon archived it
    assert uploaded.json() == {
        "directory": "rated",
        "name": "OCS1-0100.json",
        "path": "inbound/rated/OCS1-0100.json",
        "size": len(content.encode()),
    }
    assert handled.outcome == "archived"
    batch_id = str(batch_id_for(hashlib.sha256(content.encode()).hexdigest()))
    (listed,) = read(usage_api, "/usage-batches", status="completed", kind="rated")
    assert listed["id"] == batch_id
    assert read(usage_api, "/usage-batches", status="failed") == []
    batch = read(usage_api, f"/usage-batches/{batch_id}")
    assert (batch["file_name"], batch["status"], batch["failure"]) == (
        "OCS1-0100.json",
        "completed",
        None,
    )
    assert batch["counts"] == {
        "records": 6,
        "loaded_postpaid": 3,
        "loaded_prepaid": 1,
        "rejected_schema": 1,
        "rejected_configuration": 1,
        "rejected_duplicate": 0,
    }
    assert batch["errors_by_class"] == {"schema": 1, "configuration": 1, "duplicate": 0}
    errors = read(usage_api, f"/usage-batches/{batch_id}/errors")
    assert [
        (e["record_id"], e["error_class"], e["code"], e["path"]) for e in errors
    ] == [
        ("X-1", "configuration", "unknown_msisdn", "/records/4/msisdn"),
        ("X-2", "schema", "bad_format", "/records/5/start_time"),
    ]
    schema_only = read(
        usage_api, f"/usage-batches/{batch_id}/errors", **{"class": "schema"}
    )
    assert [e["record_id"] for e in schema_only] == ["X-2"]

    # And each subscription shows its usage, a period selected by from and to
    path = f"/subscriptions/{postpaid.subscription_id}/rated-usage"
    everything = read(usage_api, path)
    assert [row["id"] for row in everything["usage"]] == ["P-19", "P-20", "P-21"]
    assert everything["totals"]["records"] == 3
    assert (everything["from"], everything["to"]) == (None, None)
    period = read(
        usage_api,
        path,
        **{"from": "2026-11-20T00:00:00Z", "to": "2026-11-21T01:00:00+01:00"},
    )
    assert period["subscription_id"] == postpaid.subscription_id
    assert (period["from"], period["to"]) == (
        "2026-11-20T00:00:00.000000+00:00",
        "2026-11-21T00:00:00.000000+00:00",
    )
    assert [row["id"] for row in period["usage"]] == ["P-20"]
    assert period["totals"] == {
        "records": 1,
        "charge": "0.2500",
        "discount": "0",
        "net": "0.2500",
        "currency": "GBP",
    }
    paged = read(usage_api, path, limit="1", offset="1")
    assert [row["id"] for row in paged["usage"]] == ["P-20"]
    assert paged["totals"]["records"] == 3  # totals are of the whole period
    prepaid_usage = read(
        usage_api, f"/subscriptions/{prepaid.subscription_id}/prepaid-usage"
    )
    assert [(row["id"], row["charge"]) for row in prepaid_usage["usage"]] == [
        ("Q-1", "1.5000")
    ]
    assert (
        read(usage_api, f"/subscriptions/{prepaid.subscription_id}/rated-usage")[
            "usage"
        ]
        == []
    )


def test_reprocessing_over_http_loads_exactly_the_records_that_were_rejected(
    usage_api: TestClient, platform: Platform
) -> None:
    # Given a batch whose records of an unknown number were rejected
    line = new_line(usage_api)
    waiting = "447799000010"
    content = usage_file(
        "LATE-1",
        [
            record("L-1", msisdn=line.msisdn),
            record("L-2", msisdn=waiting),
            record("L-3", msisdn=waiting, usage_class="SMS_NAT", units=1),
            record("L-4", msisdn=line.msisdn, start_time="yesterday"),
        ],
    )
    assert upload(usage_api, "late.json", content).status_code == 202
    load(platform)
    (batch,) = read(usage_api, "/usage-batches")
    assert batch["errors_by_class"] == {"schema": 1, "configuration": 2, "duplicate": 0}

    # When the number's subscription is created and an agent reprocesses
    late = usage_api.post(
        f"{API}/subscriptions",
        json={"account_id": line.account_id, "msisdn": waiting, "status": "active"},
        headers=AGENT,
    )
    assert late.status_code == 201, late.text
    response = reprocess(usage_api, batch["id"])

    # Then exactly the two records of that number are loaded, once
    assert response.status_code == 200, response.text
    after = response.json()
    assert after["id"] == batch["id"]
    assert after["runs"] == 1
    assert after["counts"]["loaded_postpaid"] == 3
    assert after["errors_by_class"] == {"schema": 1, "configuration": 0, "duplicate": 0}
    errors = read(usage_api, f"/usage-batches/{batch['id']}/errors")
    assert [(e["record_id"], e["code"]) for e in errors] == [("L-4", "bad_format")]
    usage = read(usage_api, f"/subscriptions/{late.json()['id']}/rated-usage")
    assert sorted(row["id"] for row in usage["usage"]) == ["L-2", "L-3"]
    # and what is left is the sender's to fix: nothing to reprocess
    assert_refused(reprocess(usage_api, batch["id"]), 409, "no records rejected")
    assert read(usage_api, f"/usage-batches/{batch['id']}")["runs"] == 1


def test_the_published_schemas_are_served_to_anyone_as_schema_json(
    api: TestClient,
) -> None:
    listed = api.get(f"{API}/schemas")
    served = api.get(f"{API}/schemas/usage-rated")
    by_file_name = api.get(f"{API}/schemas/usage-unrated.schema.json")
    unknown = api.get(f"{API}/schemas/usage-billed")

    assert listed.status_code == 200, listed.text
    assert {
        "name": "usage-rated",
        "url": "/api/v1/schemas/usage-rated",
    } in listed.json()
    assert {s["name"] for s in listed.json()} == {"usage-rated", "usage-unrated"}
    assert served.status_code == 200, served.text
    assert served.headers["content-type"] == "application/schema+json"
    assert served.json() == json.loads(
        (SCHEMAS / "usage-rated.schema.json").read_text()
    )
    assert by_file_name.json() == json.loads(
        (SCHEMAS / "usage-unrated.schema.json").read_text()
    )
    assert_refused(unknown, 404, "no schema 'usage-billed'")


def test_an_upload_streams_a_large_body_to_one_complete_file(
    usage_api: TestClient, platform: Platform
) -> None:
    block = b"x" * (1 << 20)

    response = usage_api.put(
        f"{API}/inbound/unrated/big.json",
        content=(block for _ in range(12)),  # sent chunked, length unknown
        headers=auth("admin"),
    )

    assert response.status_code == 202, response.text
    assert response.json()["size"] == 12 << 20
    inbound = platform.settings.home / "inbound" / "unrated"
    assert [p.name for p in inbound.iterdir()] == ["big.json"]  # no leftovers
    assert (inbound / "big.json").stat().st_size == 12 << 20


def test_unsafe_upload_names_are_refused_naming_the_name(
    usage_api: TestClient, platform: Platform
) -> None:
    home = platform.settings.home
    for name in [
        "..%2F..%2Fetc%2Fpasswd",
        "..%2Fescape.json",
        ".hidden",
        "x.tmp",
        "a.part",
    ]:
        response = upload(usage_api, name, "{}")

        assert response.status_code == 422, (name, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["errors"][0]["path"] == "path.name"
    assert list(home.glob("inbound/**/*.*")) == []  # nothing written, anywhere
    assert not (home / "etc").exists()


def test_an_upload_needs_the_ingest_role_a_known_directory_and_a_free_name(
    usage_api: TestClient,
) -> None:
    as_agent = upload(usage_api, "a.json", "{}", headers=AGENT)
    without_key = upload(usage_api, "a.json", "{}", headers={})
    unknown_directory = upload(usage_api, "a.json", "{}", directory="billed")
    first = upload(usage_api, "a.json", "{}")
    again = upload(usage_api, "a.json", "{}")
    as_admin = upload(usage_api, "b.json", "{}", headers=auth("admin"))

    assert_refused(as_agent, 403, "needs the role ingest")
    assert without_key.status_code == 401
    assert unknown_directory.status_code == 422
    assert unknown_directory.json()["errors"][0]["path"] == "path.directory"
    assert first.status_code == 202
    assert_refused(again, 409, "'a.json' is already waiting in inbound/rated/")
    assert as_admin.status_code == 202


def test_bad_requests_are_problems_that_say_what_is_wrong(
    usage_api: TestClient,
) -> None:
    line: Line = new_line(usage_api)
    unknown = "0e6b8d4c-52b3-4c3c-9a55-2a7d35a8f1a1"
    usage = f"{API}/subscriptions/{line.subscription_id}/rated-usage"

    def get(path: str, **params: str) -> httpx.Response:
        response: httpx.Response = usage_api.get(path, params=params, headers=AGENT)
        return response

    assert_refused(
        get(f"{API}/usage-batches/{unknown}"), 404, f"no usage batch {unknown}"
    )
    assert_refused(get(f"{API}/usage-batches/{unknown}/errors"), 404, "no usage batch")
    assert_refused(reprocess(usage_api, unknown), 404, f"no usage batch {unknown}")
    assert_refused(
        get(f"{API}/subscriptions/{unknown}/prepaid-usage"), 404, "no subscription"
    )
    for params, field, reason in [
        ({"from": "yesterday"}, "query.from", "not an RFC 3339 date-time"),
        ({"from": "2026-11-21T00:00:00"}, "query.from", "has no UTC offset"),
        ({"to": "2026-13-01T00:00:00Z"}, "query.to", "not a valid date-time"),
        (
            {"from": "2026-11-21T00:00:00Z", "to": "2026-11-20T00:00:00Z"},
            "query.from",
            "must be before to",
        ),
    ]:
        response = get(usage, **params)
        assert_refused(response, 422, reason)
        assert response.json()["errors"][0]["path"] == field
    wrong_class = get(f"{API}/usage-batches/{unknown}/errors", **{"class": "typo"})
    assert wrong_class.status_code == 422
    assert wrong_class.json()["errors"][0]["path"] == "query.class"
    assert get(f"{API}/usage-batches", status="lost").status_code == 422
    assert usage_api.get(f"{API}/usage-batches").status_code == 401
    assert (
        usage_api.post(
            f"{API}/usage-batches/{unknown}/reprocess", headers=auth("auditor")
        ).status_code
        == 403
    )
