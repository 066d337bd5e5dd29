"""Rerating over HTTP: an agent reruns the pricing of a usage class after a
tariff fix and reads the run's corrections; the CLI does the same."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from application.platform import Platform
from ingest.daemons import daemon
from tests.application.test_offline_rating import TARIFFS, unrated
from tests.application.test_rerating import fixed_tariffs
from tests.application.test_usage_loading import usage_file
from tests.conftest import auth
from tests.e2e.test_usage_http import upload, usage_api  # noqa: F401
from tests.e2e.test_workflow_http import API, PROBLEM, new_line

ADMIN = auth("admin")
AGENT = auth("agent")


def loaded_usage(api: TestClient, platform: Platform) -> str:
    assert api.post(f"{API}/tariffs", json=TARIFFS, headers=ADMIN).status_code == 200
    line = new_line(api)
    content = usage_file(
        "U-H", [unrated("H-1", line.msisdn), unrated("H-2", line.msisdn)], "unrated"
    )
    assert upload(api, "U-H.json", content, "unrated").status_code == 202
    platform.views.catch_up()
    (handled,) = daemon("load-unrated-usage", platform).scan_once()
    assert handled.outcome == "archived"
    return str(line.subscription_id)


def test_an_agent_reruns_pricing_and_reads_each_correction(
    usage_api: TestClient,  # noqa: F811
    platform: Platform,
) -> None:
    subscription = loaded_usage(usage_api, platform)
    fixed = usage_api.post(f"{API}/tariffs", json=fixed_tariffs(), headers=ADMIN)
    assert fixed.status_code == 200

    response = usage_api.post(
        f"{API}/rerating-jobs",
        json={"usage_class": "VOICE_NAT", "from": "2026-11-21T00:00:00Z"},
        headers=AGENT,
    )

    assert response.status_code == 201, response.text
    run = response.json()
    assert (run["status"], run["selected"], run["changed"]) == ("completed", 2, 2)
    assert [(c["record_id"], c["delta"]) for c in run["corrections"]] == [
        ("H-1", "0.2084"),
        ("H-2", "0.2084"),
    ]
    usage = usage_api.get(
        f"{API}/subscriptions/{subscription}/rated-usage", headers=AGENT
    ).json()
    assert [row["charge"] for row in usage["usage"]] == ["0.4667", "0.4667"]
    again = usage_api.get(f"{API}/rerating-jobs/{run['id']}", headers=auth("auditor"))
    assert again.json()["corrections"] == run["corrections"]


def test_a_rerate_request_is_refused_with_the_field_named(
    usage_api: TestClient,  # noqa: F811
) -> None:
    bad = usage_api.post(
        f"{API}/rerating-jobs",
        json={
            "usage_class": "VOICE_NAT",
            "from": "2026-11-22T00:00:00Z",
            "to": "2026-11-21T00:00:00Z",
        },
        headers=AGENT,
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == PROBLEM
    assert bad.json()["errors"][0]["path"] == "body.from"
    auditor = usage_api.post(
        f"{API}/rerating-jobs",
        json={"usage_class": "VOICE_NAT"},
        headers=auth("auditor"),
    )
    assert auditor.status_code == 403


def test_monetise_rerate_prints_the_counts(
    usage_api: TestClient,  # noqa: F811
    platform: Platform,
) -> None:
    loaded_usage(usage_api, platform)
    usage_api.post(f"{API}/tariffs", json=fixed_tariffs(), headers=ADMIN)
    env = {"MONETISE_HOME": str(platform.settings.home)}
    if platform.settings.database_url:
        env["MONETISE_DATABASE_URL"] = platform.settings.database_url

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "api.cli",
            "rerate",
            "--usage-class",
            "VOICE_NAT",
            "--json",
            "--actor",
            "ops-1",
        ],
        capture_output=True,
        text=True,
        env={**env, "PATH": "/usr/bin:/bin"},
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["selected"], result["changed"], result["unchanged"]) == (2, 2, 0)
