"""Every read model, dropped and rebuilt from the events, gives back exactly
the rows that incremental processing built: the care views and the usage views
after a realistic day of an operator (lines, workflow events and their actions,
tariffs, rated and unrated files with rejections, a reprocessing run)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from application.platform import Platform
from projections.runner import ProjectionRunner
from projections.views import UnknownProjection
from tests.application.test_offline_allowances import TARIFFS as BUNDLE
from tests.application.test_offline_rating import TARIFFS, unrated
from tests.application.test_rerating import fixed_tariffs
from tests.application.test_usage_loading import drop, load, record, usage_file
from tests.application.workflow_fixtures import Line, Operator

Snapshot = dict[str, list[dict[str, Any]]]
LATE_MSISDN = "447799000101"  # in the files before anyone holds it

# Tables the history below must have filled, so that "identical" means something.
FILLED = (
    "view_actioned_items",
    "view_actioned_item_events",
    "view_workflow_events",
    "view_workflow_history",
    "view_workflow_items",
    "view_subscriptions",
    "view_accounts",
    "view_customers",
    "view_subscriber_identities",
    "view_usage_batches",
    "view_usage_errors",
    "view_rated_usage",
    "view_prepaid_usage",
    "view_rerate_runs",
    "view_charge_corrections",
    "view_allowance_uses",
)


def runners(platform: Platform) -> list[ProjectionRunner]:
    """Every projection of both facades: the care views and the usage views."""
    return [
        *platform.views.runners.values(),
        *platform.usage_views.runners.values(),
    ]


def snapshot(platform: Platform) -> Snapshot:
    """All rows of every table of every projection, and the tracking positions.

    Nothing is left out: every column of these views is derived from the
    events alone (times are the events' timestamps, positions their
    notification ids), so a rebuild must reproduce every value.
    """
    found: Snapshot = {}
    # Both facades keep their views in one database (one file on SQLite, the
    # default schema on PostgreSQL); either connection reads every table.
    with platform.views.db.read() as tx:
        for runner in runners(platform):
            for table in runner.projection.tables:
                rows = tx.fetchall(f"SELECT * FROM {table.name}")  # noqa: S608
                found[table.name] = sorted(rows, key=_order)
        found["view_tracking"] = sorted(
            tx.fetchall("SELECT * FROM view_tracking"), key=_order
        )
    return found


def _order(row: dict[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, default=str)


def relevant(platform: Platform) -> int:
    """How many events the projections read between them (one per reader)."""
    total = 0
    for runner in runners(platform):
        notifications = runner.app.recorder.select_notifications(
            start=None, limit=1_000_000, topics=list(runner.projection.topics)
        )
        total += len(notifications)
    return total


def workflow_day(operator: Operator) -> tuple[Line, Line]:
    """Bars, top-ups, an add-on, an account move, a connection, credit control
    through to a disconnection, and credit cleared in time (cancelled items)."""
    postpaid = operator.new_line()
    prepaid = operator.new_line(payment_type="prepaid")
    leaving = operator.new_line(email="leaving@example.com")
    paying = operator.new_line(email="paying@example.com")
    pending = operator.new_line(status="pending")
    operator.settle()

    operator.raise_on(postpaid, "BFEA DBAR", note="customer asked")
    operator.raise_on(postpaid, "SERV ADDO")
    operator.raise_on(prepaid, "TOPU AIRT")
    operator.raise_on(prepaid, "TOPU SCHD")  # due in three days
    operator.raise_on(pending, "CONN NEW")  # network, connect, linked welcome
    operator.care.raise_workflow_event(
        owner_id=postpaid.account_id,
        level="account",
        event_type="ACCT",
        event_code="BUSN",
        actor="agent-1",
    )
    operator.settle()
    operator.raise_on(postpaid, "BFEA DUNB")
    operator.raise_on(leaving, "CRED WARN")  # warn, bar outgoing, disconnect
    operator.raise_on(paying, "CRED WARN")
    operator.settle()
    operator.later(timedelta(days=3))  # the scheduled top-up
    operator.later(timedelta(days=7))  # the outgoing bars
    operator.raise_on(paying, "CRED CLR")  # cancels the pending disconnection
    operator.settle()
    operator.later(timedelta(days=14))  # the disconnection
    assert operator.subscription(leaving)["status"] == "disconnected"
    assert operator.subscription(paying)["bars"] == []
    assert operator.subscription(pending)["status"] == "active"
    return postpaid, prepaid


def usage_day(operator: Operator, postpaid: Line, prepaid: Line) -> None:
    """Rated and unrated files, rejections, a failed file, a reprocessing run,
    then a rerate after the voice tariff was fixed."""
    operator.platform.tariffs.import_document(TARIFFS, "pricing-team")
    drop(
        operator,
        "RATED-1.json",
        usage_file(
            "RATED-1",
            [
                record("R-1", msisdn=postpaid.msisdn, mcc="234", mnc="15"),
                record("R-2", msisdn=prepaid.msisdn, usage_class="SMS_NAT", units=2),
                record("R-3", msisdn=LATE_MSISDN),  # nobody holds it yet
                record("R-4", msisdn=postpaid.msisdn, start_time="yesterday"),
                record("R-5", msisdn=postpaid.msisdn, usage_class="HOLOGRAM"),
                record("R-1", msisdn=postpaid.msisdn),  # a duplicate
                record(
                    "R-6",
                    msisdn=postpaid.msisdn,
                    usage_class="DATA_ROAM",
                    duration_seconds=None,
                    volume_bytes=10485760,
                    mcc="208",
                    mnc="01",
                    discount={"amount": "0.0500"},
                ),
            ],
        ),
    )
    header = json.loads(usage_file("RATED-2", [record("F-1", msisdn=postpaid.msisdn)]))
    header["header"]["record_count"] = 2  # one record: the whole file fails
    drop(operator, "RATED-2.json", json.dumps(header))
    load(operator)
    drop(
        operator,
        "UNRATED-1.json",
        usage_file(
            "UNRATED-1",
            [
                unrated("U-1", postpaid.msisdn),
                unrated(
                    "U-2",
                    prepaid.msisdn,
                    usage_class="SMS_NAT",
                    duration_seconds=None,
                    units=3,
                ),
                unrated("U-3", LATE_MSISDN),
                unrated("U-4", postpaid.msisdn, start_time="not a time"),
            ],
            kind="unrated",
        ),
        "unrated",
    )
    load(operator, "unrated")

    operator.care.create_subscription(
        account_id=postpaid.account_id, msisdn=LATE_MSISDN, actor="agent-1"
    )
    operator.settle()
    batches = operator.platform.usage_views.batches.batches(None, None, 10, 0)
    assert sorted(b["status"] for b in batches) == ["completed", "completed", "failed"]
    for batch in batches:
        if batch["status"] == "completed":
            operator.platform.usage.reprocess(UUID(batch["id"]), "agent-1")

    operator.platform.tariffs.import_document(fixed_tariffs(), "pricing-team")
    rerated = operator.platform.rerater.rerate("VOICE_NAT", None, None, "ops-1")
    assert rerated["changed"] > 0

    # Free units, and a file with earlier usage than the one before it: the
    # rated-usage job gives them again in time order (an allowance-order run).
    operator.platform.tariffs.import_document(BUNDLE, "pricing-team")
    for name, start, seconds in (
        ("ALLOW-1", "2026-11-25T10:05:00Z", 200),
        ("ALLOW-2", "2026-11-25T10:00:00Z", 250),
    ):
        calls = [unrated(f"{name}-1", postpaid.msisdn, start_time=start)]
        calls[0]["duration_seconds"] = seconds
        content = usage_file(name, calls, kind="unrated")
        drop(operator, f"{name}.json", content, "unrated")
        load(operator, "unrated")
    runs = operator.platform.usage_views.batches.rerate_runs(10, 0)
    assert [r["reason"] for r in runs if r["changed"]] == [
        "allowance_order",
        "requested",
    ]


@pytest.fixture
def history(operator: Operator) -> Platform:
    postpaid, prepaid = workflow_day(operator)
    usage_day(operator, postpaid, prepaid)
    platform = operator.platform
    platform.views.catch_up()
    platform.usage_views.catch_up()
    status = {**platform.views.status(), **platform.usage_views.status()}
    assert [name for name, s in status.items() if not s["up_to_date"]] == []
    return platform


def test_rebuilding_every_projection_gives_back_identical_tables(
    history: Platform,
) -> None:
    before = snapshot(history)
    assert [name for name in FILLED if not before[name]] == []

    applied = history.views.rebuild() + history.usage_views.rebuild()

    assert applied == relevant(history)
    after = snapshot(history)
    assert after.keys() == before.keys()
    for table, rows in before.items():
        assert after[table] == rows, table


def test_rebuilding_one_projection_by_name_gives_back_identical_tables(
    history: Platform,
) -> None:
    before = snapshot(history)

    # With or without the version in the name.
    assert history.views.rebuild("workflow_events") > 0
    assert history.views.rebuild("subscriber_identities") > 0
    assert history.views.rebuild(history.views.accounts.name) > 0
    (usage,) = history.usage_views.runners.values()
    assert usage.rebuild(batch=4) > 0

    after = snapshot(history)
    for table, rows in before.items():
        assert after[table] == rows, table


def test_an_unknown_name_is_refused_with_the_names_there_are(
    history: Platform,
) -> None:
    with pytest.raises(UnknownProjection, match="subscriptions_v1"):
        history.views.rebuild("subscription")
