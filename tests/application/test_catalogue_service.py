"""The catalogue service on SQLite and PostgreSQL: import, export, history."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest

from api.cli import demo_catalogue
from application.catalogue import CatalogueService
from application.platform import Platform
from domain.catalogue.fields import CatalogueRejected


def events_recorded(catalogue: CatalogueService) -> int:
    return len(list(catalogue.recorder.select_notifications(start=None, limit=10_000)))


def test_the_demo_catalogue_exports_and_reimports_with_no_new_events(
    platform: Platform,
) -> None:
    catalogue = platform.catalogue
    first = catalogue.import_document(demo_catalogue(), "admin-user")
    recorded = events_recorded(catalogue)

    again = catalogue.import_document(catalogue.export_document(), "admin-user")

    assert first["defined"] > 40
    assert again["events"] == 0
    assert again["unchanged"] == first["defined"]
    assert events_recorded(catalogue) == recorded


def test_an_import_is_read_back_from_a_new_process(platform: Platform) -> None:
    platform.catalogue.import_document(demo_catalogue(), "admin-user")

    reopened = Platform(platform.settings)
    try:
        assert reopened.catalogue.export_document() == (
            platform.catalogue.export_document()
        )
        assert reopened.catalogue.get_item("action-codes", "DBARA")["parameters"] == {
            "bar": "DATA"
        }
    finally:
        reopened.close()


def test_a_document_with_a_linked_event_cycle_is_refused_and_nothing_is_applied(
    platform: Platform,
) -> None:
    document = demo_catalogue()
    welcome = next(c for c in document["event_codes"] if c["code"] == "WELC")
    welcome["linked_events"] = [{"type": "CONN", "code": "NEW", "sequence": 10}]
    document["templates"][0]["body"] = "Hello {customer.nickname}"

    with pytest.raises(CatalogueRejected) as refused:
        platform.catalogue.import_document(document, "admin-user")

    messages = [p.message for p in refused.value.problems]
    assert "linked events form a cycle: CONN NEW → CONN WELC → CONN NEW" in messages
    assert any("{customer.nickname}" in m for m in messages)  # every error, not one
    assert platform.catalogue.export_document()["event_codes"] == []
    assert events_recorded(platform.catalogue) == 0


def test_the_history_of_an_action_code_shows_each_change_with_actor_and_time(
    platform: Platform,
) -> None:
    catalogue = platform.catalogue
    catalogue.import_document(demo_catalogue(), "alice")
    changed = catalogue.get_item("action-codes", "DBARA")
    changed.pop("active")
    changed["max_attempts"] = 7
    catalogue.put_item("action-codes", "DBARA", changed, "bob")
    catalogue.deactivate("action-codes", "DBARA", "carol", "retired")
    catalogue.reactivate("action-codes", "DBARA", "dave")

    history = catalogue.history("action-codes", "DBARA")

    assert [(h["change"], h["actor"]) for h in history] == [
        ("defined", "alice"),
        ("redefined", "bob"),
        ("deactivated", "carol"),
        ("reactivated", "dave"),
    ]
    assert history[1]["fields"] == ["max_attempts"]
    assert history[2]["reason"] == "retired"
    assert all(h["at"].endswith("+00:00") for h in history)
    assert [h["version"] for h in history] == sorted(h["version"] for h in history)


def test_a_referenced_item_is_deactivated_not_removed(platform: Platform) -> None:
    catalogue = platform.catalogue
    catalogue.import_document(demo_catalogue(), "admin-user")

    outcome = catalogue.remove("templates", "DBARSMS", "admin-user")

    assert outcome == "deactivated"
    assert catalogue.get_item("templates", "DBARSMS")["active"] is False
    exported = catalogue.export_document()
    assert {"code": "DBARSMS", "active": False}.items() <= next(
        t for t in exported["templates"] if t["code"] == "DBARSMS"
    ).items()


def test_concurrent_administrators_lose_no_change(platform: Platform) -> None:
    catalogue = platform.catalogue
    catalogue.import_document(demo_catalogue(), "admin-user")
    codes = [c["code"] for c in catalogue.list_items("action-codes")]
    errors: list[BaseException] = []

    def change(code: str) -> None:
        try:
            item: dict[str, Any] = copy.deepcopy(
                catalogue.get_item("action-codes", code)
            )
            item.pop("active")
            item["description"] += " (reviewed)"
            catalogue.put_item("action-codes", code, item, f"admin-{code}")
        except BaseException as error:  # surfaced below, in the test thread
            errors.append(error)

    threads = [threading.Thread(target=change, args=(code,)) for code in codes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    for code in codes:
        assert catalogue.get_item("action-codes", code)["description"].endswith(
            "(reviewed)"
        )
        assert catalogue.history("action-codes", code)[-1]["actor"] == f"admin-{code}"
