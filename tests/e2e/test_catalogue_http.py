"""The catalogue over HTTP, as an administrator, an agent and a stranger use it."""

from __future__ import annotations

import json

import yaml
from fastapi.testclient import TestClient

from api.cli import demo_catalogue
from tests.conftest import auth

PROBLEM = "application/problem+json"


def load_demo(api: TestClient) -> None:
    response = api.put(
        "/api/v1/catalogue", json=demo_catalogue(), headers=auth("admin")
    )
    assert response.status_code == 200, response.text


def test_health_and_openapi_are_served(api: TestClient) -> None:
    health = api.get("/health")
    spec = api.get("/openapi.json")

    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert spec.status_code == 200
    assert "/api/v1/catalogue/{kind}/{code}/history" in spec.json()["paths"]


def test_an_administrator_imports_yaml_and_a_second_import_records_nothing(
    api: TestClient,
) -> None:
    body = yaml.safe_dump(demo_catalogue())
    headers = {**auth("admin"), "Content-Type": "application/yaml"}

    first = api.put("/api/v1/catalogue", content=body, headers=headers)
    second = api.put("/api/v1/catalogue", content=body, headers=headers)

    assert first.status_code == 200
    assert first.json()["events"] > 40
    assert second.json()["events"] == 0


def test_an_exported_catalogue_reimports_with_no_new_events(api: TestClient) -> None:
    load_demo(api)
    exported = api.get("/api/v1/catalogue?format=yaml", headers=auth("auditor"))

    reimported = api.put(
        "/api/v1/catalogue",
        content=exported.text,
        headers={**auth("admin"), "Content-Type": "application/yaml"},
    )

    assert exported.headers["content-type"].startswith("application/yaml")
    assert reimported.json()["events"] == 0


def test_an_invalid_document_lists_every_error_with_its_path_and_applies_nothing(
    api: TestClient,
) -> None:
    document = demo_catalogue()
    document["event_types"][0]["code"] = "credit"
    document["action_codes"][0]["max_attempts"] = "five"
    document["event_codes"][0]["communications"][0]["template"] = "NOSUCH"

    response = api.put("/api/v1/catalogue", json=document, headers=auth("admin"))

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    paths = {error["path"] for error in problem["errors"]}
    assert {
        "event_types[0].code",
        "action_codes[0].max_attempts",
        "event_codes[0].communications[0].template",
    } <= paths
    assert problem["title"] == "Invalid catalogue"
    assert "nothing was applied" in problem["detail"]
    exported = api.get("/api/v1/catalogue", headers=auth("admin")).json()
    assert exported["event_types"] == []


def test_a_linked_event_cycle_is_refused_with_the_cycle_named(api: TestClient) -> None:
    load_demo(api)
    code = api.get(
        "/api/v1/catalogue/event-codes/CRED/DISC", headers=auth("admin")
    ).json()
    code.pop("active")
    code["linked_events"] = [{"type": "CRED", "code": "WARN", "sequence": 10}]

    response = api.put(
        "/api/v1/catalogue/event-codes/CRED/DISC", json=code, headers=auth("admin")
    )

    assert response.status_code == 422
    messages = [e["message"] for e in response.json()["errors"]]
    assert (
        "linked events form a cycle: CRED BOUT → CRED DISC → CRED WARN → CRED BOUT"
        in messages
    )


def test_unreadable_json_is_a_problem_response(api: TestClient) -> None:
    response = api.put(
        "/api/v1/catalogue",
        content=b"{not json",
        headers={**auth("admin"), "Content-Type": "application/json"},
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert "not valid JSON" in response.json()["detail"]


def test_one_item_is_put_read_deactivated_and_its_history_shown(
    api: TestClient,
) -> None:
    load_demo(api)
    item = {
        "type": "BAR",
        "description": "Bar roaming",
        "parameters": {"bar": "ROAMING"},
        "manual": True,
        "levels": ["subscription"],
    }

    created = api.put(
        "/api/v1/catalogue/action-codes/RBAR", json=item, headers=auth("admin")
    )
    read = api.get("/api/v1/catalogue/action-codes/RBAR", headers=auth("agent"))
    deactivated = api.post(
        "/api/v1/catalogue/action-codes/RBAR/deactivate",
        json={"reason": "roaming bars now automatic"},
        headers=auth("admin"),
    )
    history = api.get(
        "/api/v1/catalogue/action-codes/RBAR/history", headers=auth("auditor")
    )

    assert created.json()["defined"] == 1
    assert read.json()["parameters"] == {"bar": "ROAMING"}
    assert read.json()["max_attempts"] == 3
    assert deactivated.json() == {"outcome": "deactivated"}
    assert [(h["change"], h["actor"]) for h in history.json()] == [
        ("defined", "admin-user"),
        ("deactivated", "admin-user"),
    ]
    listed = api.get(
        "/api/v1/catalogue/action-codes?active=false", headers=auth("agent")
    ).json()
    assert [i["code"] for i in listed] == ["RBAR"]


def test_a_put_item_whose_code_differs_from_the_address_is_refused(
    api: TestClient,
) -> None:
    load_demo(api)
    response = api.put(
        "/api/v1/catalogue/templates/DBARSMS",
        json={"code": "OTHER", "channel": "sms", "body": "x"},
        headers=auth("admin"),
    )

    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "code"


def test_deleting_a_referenced_item_deactivates_it(api: TestClient) -> None:
    load_demo(api)

    response = api.delete("/api/v1/catalogue/action-codes/DBARA", headers=auth("admin"))
    read = api.get("/api/v1/catalogue/action-codes/DBARA", headers=auth("admin"))

    assert response.json() == {"outcome": "deactivated"}
    assert read.json()["active"] is False


def test_an_unknown_item_is_not_found(api: TestClient) -> None:
    response = api.get("/api/v1/catalogue/templates/NOPE", headers=auth("agent"))

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["detail"] == "template NOPE is not in the catalogue"


def test_a_missing_or_wrong_key_is_401_and_a_key_without_the_role_is_403(
    api: TestClient,
) -> None:
    missing = api.get("/api/v1/catalogue")
    wrong = api.get("/api/v1/catalogue", headers={"Authorization": "Bearer nope"})
    agent_writes = api.put("/api/v1/catalogue", json={}, headers=auth("agent"))
    auditor_deactivates = api.post(
        "/api/v1/catalogue/templates/X/deactivate", headers=auth("auditor")
    )
    ingest_reads = api.get("/api/v1/catalogue", headers=auth("ingest"))

    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.headers["www-authenticate"] == "Bearer"
    assert agent_writes.status_code == 403
    assert auditor_deactivates.status_code == 403
    assert ingest_reads.status_code == 403
    for response in (missing, wrong, agent_writes):
        assert response.headers["content-type"] == PROBLEM
    assert "admin" in json.loads(agent_writes.text)["detail"]


def test_metrics_show_the_queue_and_the_read_model_lag(api: TestClient) -> None:
    response = api.get("/metrics")

    assert response.status_code == 200
    assert 'monetise_actioned_items{status="dead"} 0' in response.text
    assert 'monetise_projection_lag{projection="actioned_items_v1"}' in response.text
