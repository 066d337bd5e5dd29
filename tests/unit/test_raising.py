"""Raising resolves an event code into what the workflow event will do.

The catalogue builders here (``workflow_view``, ``view_without``) are shared by
the workflow, subscription and account tests.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domain.catalogue.aggregate import Catalogue
from domain.catalogue.items import Kind, definition_of
from domain.raising import CatalogueView, RaiseRefused, due_time, plan_raise
from tests.unit.catalogue_documents import ACTOR, applied, demo_document

# What the demo catalogue lacks for these tests: an event an agent resolves by
# hand, an event with nothing to do on raise, a small top-up, and an event
# whose linked events are written out of sequence order.
EXTRA_EVENT_CODES: list[dict[str, Any]] = [
    {
        "type": "BFEA",
        "code": "HOLD",
        "description": "Data bar, resolved by an agent",
        "auto_resolve": False,
        "default_actions": [{"action": "DBARA", "sequence": 10}],
    },
    {
        "type": "CRED",
        "code": "PAID",
        "description": "Payment received",
        "auto_resolve": True,
        "communications": [
            {"channel": "sms", "template": "CCCLRSMS", "when": "resolve"}
        ],
    },
    {
        "type": "CRED",
        "code": "FINL",
        "description": "Final demand",
        "linked_events": [
            {"type": "CRED", "code": "DISC", "sequence": 30},
            {"type": "CRED", "code": "WARN", "sequence": 10},
            {"type": "CRED", "code": "BOUT", "sequence": 20},
        ],
    },
]
EXTRA_ACTION_CODES: list[dict[str, Any]] = [
    {
        "code": "TOP005",
        "type": "TOPU",
        "description": "Top up 0.05",
        "parameters": {"amount": "0.05"},
        "manual": True,
        "levels": ["subscription"],
    },
]

BASE = datetime(2025, 1, 31, 9, 30, tzinfo=UTC)


def workflow_document() -> dict[str, Any]:
    """The demo catalogue with the few extra codes these tests need."""
    document = demo_document()
    document["event_codes"] += EXTRA_EVENT_CODES
    document["action_codes"] += EXTRA_ACTION_CODES
    return document


def view_of(catalogue: Catalogue) -> CatalogueView:
    """The catalogue as raising sees it, built as the catalogue service does."""
    return CatalogueView(
        items=catalogue.items(),
        active=frozenset(
            (kind, key)
            for kind, entries in catalogue.entries.items()
            for key, entry in entries.items()
            if entry["active"]
        ),
    )


@functools.cache
def workflow_view() -> CatalogueView:
    return view_of(applied(workflow_document()))


def view_without(*deactivated: tuple[Kind, str]) -> CatalogueView:
    """The workflow catalogue after an admin deactivated some items."""
    catalogue = applied(workflow_document())
    for kind, key in deactivated:
        assert catalogue.deactivate(kind, key, ACTOR)
    return view_of(catalogue)


def refusal(
    view: CatalogueView,
    level: str,
    event_type: str,
    event_code: str,
    manual: list[str] | None = None,
) -> str:
    with pytest.raises(RaiseRefused) as refused:
        plan_raise(view, level, event_type, event_code, manual or [])
    return str(refused.value)


# --- refusals -----------------------------------------------------------------


def test_an_unknown_event_code_is_refused_naming_it() -> None:
    reason = refusal(workflow_view(), "subscription", "BFEA", "NOPE")

    assert reason == "event code BFEA NOPE is not in the catalogue"


def test_an_inactive_event_code_is_refused() -> None:
    view = view_without((Kind.EVENT_CODES, "BFEA DBAR"))

    reason = refusal(view, "subscription", "BFEA", "DBAR")

    assert reason == "event code BFEA DBAR is inactive"


def test_an_event_code_of_an_inactive_event_type_is_refused() -> None:
    view = view_without((Kind.EVENT_TYPES, "BFEA"))

    reason = refusal(view, "subscription", "BFEA", "DBAR")

    assert reason == "event type BFEA is inactive"


def test_an_account_event_raised_on_a_subscription_is_refused_naming_the_levels() -> (
    None
):
    reason = refusal(workflow_view(), "subscription", "ACCT", "BUSN")

    assert "ACCT BUSN" in reason
    assert "subscription" in reason
    assert reason.endswith("only on: account")


def test_a_wrong_level_refusal_reads_as_plain_english() -> None:
    on_subscription = refusal(workflow_view(), "subscription", "ACCT", "BUSN")
    on_account = refusal(workflow_view(), "account", "BFEA", "DBAR")

    assert "cannot be raised on a subscription" in on_subscription
    assert "cannot be raised on an account" in on_account


def test_a_manual_action_that_is_not_manual_is_refused() -> None:
    reason = refusal(workflow_view(), "subscription", "BFEA", "DBAR", ["CCBOUT"])

    assert reason == "action code CCBOUT cannot be added manually"


def test_a_manual_action_not_allowed_at_the_level_is_refused() -> None:
    reason = refusal(workflow_view(), "account", "ACCT", "BUSN", ["DBARA"])

    assert reason.startswith("action code DBARA is not allowed on an account")
    assert reason.endswith("only on: subscription")


def test_an_unknown_manual_action_is_refused() -> None:
    reason = refusal(workflow_view(), "subscription", "BFEA", "DBAR", ["NOPE"])

    assert reason == "action code NOPE is not in the catalogue"


def test_an_inactive_manual_action_is_refused() -> None:
    view = view_without((Kind.ACTION_CODES, "DBARA"))

    reason = refusal(view, "subscription", "CRED", "CLR", ["DBARA"])

    assert reason == "action code DBARA is inactive"


# --- the plan -----------------------------------------------------------------


def test_a_default_action_is_resolved_with_everything_its_item_needs() -> None:
    plan = plan_raise(workflow_view(), "subscription", "BFEA", "DBAR", [])

    assert (plan.event_type, plan.event_code) == ("BFEA", "DBAR")
    assert plan.description == "Add data bar"
    assert plan.auto_resolve is True
    assert plan.actions == [
        {
            "action_code": "DBARA",
            "action_type": "BAR",
            "handler": "bar",
            "description": "Bar data",
            "parameters": {"bar": "DATA"},
            "schedule": {"mode": "immediate"},
            "when": "raise",
            "sequence": 10,
            "manual": False,
            "max_attempts": 5,
            "ignore_network_errors": False,
        }
    ]
    assert plan.skipped_actions == []


def test_inactive_default_actions_are_skipped_and_listed() -> None:
    view = view_without((Kind.ACTION_CODES, "UNBALL"))

    plan = plan_raise(view, "subscription", "CRED", "CLR", [])

    assert [a["action_code"] for a in plan.actions] == ["UNBOUT"]
    assert plan.skipped_actions == [
        {"action_code": "UNBALL", "reason": "action code is inactive"}
    ]


def test_manual_actions_follow_the_default_actions_in_sequence() -> None:
    plan = plan_raise(
        workflow_view(), "subscription", "CRED", "CLR", ["DBARA", "ADD1GB"]
    )

    assert [(a["action_code"], a["sequence"], a["manual"]) for a in plan.actions] == [
        ("UNBOUT", 10, False),
        ("UNBALL", 20, False),
        ("DBARA", 30, True),
        ("ADD1GB", 40, True),
    ]
    assert all(a["when"] == "raise" for a in plan.actions)


def test_communications_carry_the_template_definition() -> None:
    view = workflow_view()

    plan = plan_raise(view, "subscription", "BFEA", "DBAR", [])

    assert plan.communications == [
        {
            "channel": "sms",
            "when": "resolve",
            "template": definition_of(view.items.templates["DBARSMS"]),
        }
    ]
    template = plan.communications[0]["template"]
    assert template["code"] == "DBARSMS"
    assert template["body"] == "Data on {subscription.msisdn} is now barred."


def test_a_communication_with_an_inactive_template_is_left_out() -> None:
    view = view_without((Kind.TEMPLATES, "DBARSMS"))

    plan = plan_raise(view, "subscription", "BFEA", "DBAR", [])

    assert plan.communications == []


def test_linked_events_are_listed_in_sequence_order() -> None:
    plan = plan_raise(workflow_view(), "subscription", "CRED", "FINL", [])

    assert plan.linked_events == [
        {"type": "CRED", "code": "WARN", "sequence": 10},
        {"type": "CRED", "code": "BOUT", "sequence": 20},
        {"type": "CRED", "code": "DISC", "sequence": 30},
    ]


def test_an_event_with_nothing_to_do_on_raise_plans_no_actions() -> None:
    plan = plan_raise(workflow_view(), "subscription", "CRED", "PAID", [])

    assert plan.actions == []
    assert [c["when"] for c in plan.communications] == ["resolve"]


# --- due times ----------------------------------------------------------------


def test_an_immediate_action_is_due_at_once() -> None:
    assert due_time({"mode": "immediate"}, BASE) == BASE
    assert due_time({}, BASE) == BASE


def test_an_action_after_p3d_is_due_three_days_later() -> None:
    assert due_time({"mode": "after", "offset": "P3D"}, BASE) == BASE + timedelta(
        days=3
    )


def test_the_scheduled_top_up_of_the_demo_is_due_three_days_after_raising() -> None:
    plan = plan_raise(workflow_view(), "subscription", "TOPU", "SCHD", [])

    [action] = plan.actions

    assert action["schedule"] == {"mode": "after", "offset": "P3D"}
    assert due_time(action["schedule"], BASE) == datetime(2025, 2, 3, 9, 30, tzinfo=UTC)


def test_an_action_after_p1m_at_month_end_is_due_at_the_end_of_next_month() -> None:
    due = due_time({"mode": "after", "offset": "P1M"}, BASE)

    assert due == datetime(2025, 2, 28, 9, 30, tzinfo=UTC)


def test_an_action_at_a_future_time_is_due_then() -> None:
    due = due_time({"mode": "at", "time": "2025-03-01T06:00:00Z"}, BASE)

    assert due == datetime(2025, 3, 1, 6, 0, tzinfo=UTC)


def test_an_action_at_a_past_time_is_due_at_once() -> None:
    due = due_time({"mode": "at", "time": "2024-12-25T06:00:00+00:00"}, BASE)

    assert due == BASE
