"""Tariffs over HTTP: an administrator imports them, an agent prices a usage."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.cli_tariffs import demo_tariffs
from tests.conftest import auth

PROBLEM = "application/problem+json"
QUOTE = "/api/v1/tariffs/STD/quote"
EVENING_CALL: dict[str, Any] = {
    "usage_class": "VOICE_NAT",
    "start": "2026-03-02T18:58:30Z",
    "duration_seconds": 150,
    "called_number": "441632960000",
}


def load_demo(api: TestClient) -> dict[str, Any]:
    response = api.post("/api/v1/tariffs", json=demo_tariffs(), headers=auth("admin"))
    assert response.status_code == 200, response.text
    counts: dict[str, Any] = response.json()
    return counts


def test_an_administrator_imports_tariffs_and_a_repeat_records_nothing(
    api: TestClient,
) -> None:
    first = load_demo(api)
    second = load_demo(api)

    assert first["events"] == 5
    assert second == {
        "defined": 0,
        "redefined": 0,
        "assigned": 0,
        "unchanged": 5,
        "events": 0,
    }


def test_the_exported_tariffs_import_back_with_no_new_events(api: TestClient) -> None:
    load_demo(api)
    exported = api.get("/api/v1/tariffs", headers=auth("auditor"))

    again = api.post("/api/v1/tariffs", json=exported.json(), headers=auth("admin"))

    assert exported.status_code == 200
    assert exported.json()["rate_plans"]["SIMO10"] == "STD"
    assert again.json()["events"] == 0


def test_an_agent_prices_an_evening_call_across_the_peak_boundary(
    api: TestClient,
) -> None:
    load_demo(api)

    response = api.post(QUOTE, json=EVENING_CALL, headers=auth("agent"))

    assert response.status_code == 200, response.text
    rated = response.json()
    assert (rated["charge"], rated["currency"], rated["net"]) == (
        "0.2800",
        "GBP",
        "0.2800",
    )
    assert [(p["band"], p["cost"]) for p in rated["breakdown"]] == [
        ("PEAK", "0.10"),
        ("PEAK", "0.04"),
        ("OFF", "0.04"),
    ]
    assert api.get("/api/v1/tariffs", headers=auth("agent")).json()["tariffs"]


def test_roaming_data_is_priced_with_the_zone_of_the_serving_network(
    api: TestClient,
) -> None:
    load_demo(api)
    usage = {
        "usage_class": "DATA_ROAM",
        "start": "2026-03-02T10:00:00+01:00",
        "volume_bytes": 5_000_000,
        "mcc": "208",
        "mnc": "01",
    }

    rated = api.post(QUOTE, json=usage, headers=auth("auditor")).json()

    assert (rated["zone"], rated["charge"], rated["kind"]) == ("EU", "0.2384", "data")


def test_a_quote_records_nothing(api: TestClient) -> None:
    load_demo(api)
    tariffs = api.app.state.platform.tariffs  # type: ignore[attr-defined]
    before = tariffs.recorder.max_notification_id()

    api.post(QUOTE, json=EVENING_CALL, headers=auth("agent"))

    assert tariffs.recorder.max_notification_id() == before


def test_an_invalid_document_lists_every_problem_and_applies_nothing(
    api: TestClient,
) -> None:
    document = demo_tariffs()
    document["tariffs"][0]["currency"] = "pounds"
    document["tariffs"][0]["rates"][0]["connect_fee"] = 0.1
    document["rate_plans"]["GOLD"] = "GOLD"

    response = api.post("/api/v1/tariffs", json=document, headers=auth("admin"))

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["title"] == "Invalid tariffs"
    assert {
        "tariffs[0].currency",
        "tariffs[0].rates[0].connect_fee",
        "rate_plans.GOLD",
    } <= {error["path"] for error in problem["errors"]}
    exported = api.get("/api/v1/tariffs", headers=auth("admin")).json()
    assert exported["tariffs"] == []


def test_a_quote_with_an_unknown_tariff_is_not_found(api: TestClient) -> None:
    load_demo(api)

    response = api.post(
        "/api/v1/tariffs/GOLD/quote", json=EVENING_CALL, headers=auth("agent")
    )

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert "GOLD" in response.json()["detail"]


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"start": "2026-03-02T18:58:30"}, "body.start"),  # no offset
        ({"duration_seconds": -1}, "body.duration_seconds"),
        ({"duration_seconds": "60"}, "body.duration_seconds"),
        ({"units": 1}, "body.units"),  # a second quantity
        ({"called_number": "call me"}, "body.called_number"),
        ({"mcc": "2080"}, "body.mcc"),
        ({"colour": "red"}, "body.colour"),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    api: TestClient, change: dict[str, Any], path: str
) -> None:
    load_demo(api)

    response = api.post(QUOTE, json={**EVENING_CALL, **change}, headers=auth("agent"))

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert path in [error["path"] for error in response.json()["errors"]]


@pytest.mark.parametrize(
    ("change", "code", "path"),
    [
        ({"usage_class": "VOICE_ROAM"}, "no_rate", "body.usage_class"),
        ({"mcc": "505", "mnc": "01"}, "no_zone", "body.mcc"),
    ],
)
def test_a_usage_the_tariff_cannot_rate_is_a_problem_with_its_code(
    api: TestClient, change: dict[str, Any], code: str, path: str
) -> None:
    load_demo(api)

    response = api.post(QUOTE, json={**EVENING_CALL, **change}, headers=auth("agent"))

    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == f"/problems/{code.replace('_', '-')}"
    assert problem["errors"] == [
        {"path": path, "code": code, "message": problem["detail"]}
    ]


def test_only_an_administrator_imports_and_only_staff_read(api: TestClient) -> None:
    document = demo_tariffs()

    as_agent = api.post("/api/v1/tariffs", json=document, headers=auth("agent"))
    as_auditor = api.post("/api/v1/tariffs", json=document, headers=auth("auditor"))
    as_ingest = api.get("/api/v1/tariffs", headers=auth("ingest"))
    quote_ingest = api.post(QUOTE, json=EVENING_CALL, headers=auth("ingest"))
    anonymous = api.post(QUOTE, json=EVENING_CALL)

    assert [r.status_code for r in (as_agent, as_auditor, as_ingest, quote_ingest)] == [
        403,
        403,
        403,
        403,
    ]
    assert anonymous.status_code == 401
