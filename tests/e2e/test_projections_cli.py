"""``monetise projections status|rebuild`` as an operator runs them.

The commands run in-process through typer's CliRunner against the database of
the test (SQLite or PostgreSQL), beside the platform that agents and the
worker use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from application.platform import Platform
from application.settings import Settings
from tests.application.test_projection_rebuild import relevant, snapshot
from tests.application.test_usage_loading import record, usage_file
from tests.application.workflow_fixtures import Operator, operator_for
from tests.e2e.test_usage_cli import monetise, ok, write

REBUILT = re.compile(
    r"^Rebuilt (\d+) projection\(s\): ([\d,]+) event\(s\) applied in [\d.]+ s$",
    re.MULTILINE,
)


@pytest.fixture
def operator(settings: Settings) -> Iterator[Operator]:
    """The platform with the demo catalogue, as agents and the worker use it."""
    yield from operator_for(settings)


@pytest.fixture
def worked(settings: Settings, operator: Operator, tmp_path: Path) -> Platform:
    """A day of work: lines, workflow events settled, a usage file loaded."""
    line = operator.new_line()
    prepaid = operator.new_line(payment_type="prepaid")
    operator.settle()
    operator.raise_on(line, "BFEA DBAR")
    operator.raise_on(prepaid, "TOPU SCHD")
    operator.settle()
    operator.later(timedelta(days=3))
    content = usage_file(
        "OCS1-0300",
        [
            record("P-1", msisdn=line.msisdn),
            record("P-2", msisdn=prepaid.msisdn, usage_class="SMS_NAT", units=1),
            record("P-3", msisdn="447799000030"),  # rejected: nobody holds it
        ],
    )
    ok(monetise(settings, "ingest", str(write(tmp_path, "p.json", content))))
    # What the worker does in the background: every view catches up.
    operator.platform.views.catch_up()
    operator.platform.usage_views.catch_up()
    return operator.platform


def names(platform: Platform) -> list[str]:
    return [*platform.views.runners, *platform.usage_views.runners]


def test_status_lists_every_projection_of_both_applications_up_to_date(
    settings: Settings, worked: Platform
) -> None:
    table = ok(monetise(settings, "projections", "status"))
    as_json = json.loads(ok(monetise(settings, "projections", "status", "--json")))

    assert [row["projection"] for row in as_json] == names(worked)
    assert {row["application"] for row in as_json} == {"care", "usage"}
    assert all(row["up_to_date"] and row["lag"] == 0 for row in as_json)
    assert all(row["position"] > 0 for row in as_json)
    care_end = worked.care.recorder.max_notification_id()
    usage_end = worked.usage_batches.recorder.max_notification_id()
    assert {row["max_notification_id"] for row in as_json} == {care_end, usage_end}
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["projection", "app", "position"]
    assert lines[0].endswith("up to date")
    assert sorted(line.split()[0] for line in lines[1:]) == sorted(names(worked))
    assert all(line.split()[-1] == "yes" for line in lines[1:])


def test_status_shows_a_view_behind_the_log_until_it_catches_up(
    settings: Settings, worked: Platform
) -> None:
    customer = worked.care.register_customer(name="Grace Hopper", actor="agent-1")
    worked.care.open_account(customer_id=customer, actor="agent-1")

    behind = json.loads(ok(monetise(settings, "projections", "status", "--json")))
    worked.views.catch_up()
    caught_up = json.loads(ok(monetise(settings, "projections", "status", "--json")))

    lagging = {row["projection"]: row["lag"] for row in behind if row["lag"]}
    assert set(lagging) == {"accounts_v1", "customers_v1"}
    assert all(row["up_to_date"] for row in caught_up)


def test_rebuild_all_replays_every_view_and_prints_the_count(
    settings: Settings, worked: Platform
) -> None:
    before = snapshot(worked)

    result = monetise(settings, "projections", "rebuild", "--all")

    output = ok(result)
    (count, applied) = REBUILT.findall(output)[0]
    assert int(count) == len(names(worked))
    assert int(applied.replace(",", "")) == relevant(worked)
    assert re.search(r"^usage_batches_v5: \d+ event\(s\) applied", output, re.M)
    assert "rebuilding care views" in result.stderr  # the progress line
    assert "rebuilding usage views" in result.stderr
    assert snapshot(worked) == before
    status = json.loads(ok(monetise(settings, "projections", "status", "--json")))
    assert all(row["up_to_date"] for row in status)


def test_rebuild_one_projection_by_name_with_or_without_its_version(
    settings: Settings, worked: Platform
) -> None:
    before = snapshot(worked)
    subscriptions = worked.views.subscriptions
    expected = len(
        worked.care.recorder.select_notifications(
            start=None, limit=100_000, topics=list(subscriptions.topics)
        )
    )

    short = ok(monetise(settings, "projections", "rebuild", "subscriptions"))
    full = ok(monetise(settings, "projections", "rebuild", "usage_batches_v5"))

    assert f"subscriptions_v1: {expected} event(s) applied in" in short
    assert REBUILT.findall(short) == [("1", str(expected))]
    assert "usage_batches_v5: " in full
    assert "subscriptions_v1" not in full
    assert REBUILT.findall(full)[0][0] == "1"
    assert int(REBUILT.findall(full)[0][1]) > 0
    assert snapshot(worked) == before


def test_an_unknown_name_exits_2_and_lists_the_names_there_are(
    settings: Settings, worked: Platform
) -> None:
    unknown = monetise(settings, "projections", "rebuild", "subscription_v9")
    neither = monetise(settings, "projections", "rebuild")
    both = monetise(settings, "projections", "rebuild", "subscriptions", "--all")

    assert unknown.exit_code == 2, unknown.output
    assert "No projection 'subscription_v9'" in unknown.stderr
    assert all(name in unknown.stderr for name in names(worked))
    assert (neither.exit_code, both.exit_code) == (2, 2)
    assert "Give a projection NAME or --all" in neither.stderr
    assert "Give a projection NAME or --all" in both.stderr
