"""Catalogue documents for the unit tests, and the steps every test repeats."""

from __future__ import annotations

import copy
import functools
from importlib import resources
from typing import Any

import pytest
import yaml

from domain.catalogue.aggregate import Catalogue, ChangeSummary
from domain.catalogue.document import read_document
from domain.catalogue.fields import CatalogueRejected, Problem

ACTOR = "admin-user"


@functools.cache
def _demo_text() -> str:
    return (
        resources.files("application.demo")
        .joinpath("catalogue.yaml")
        .read_text(encoding="utf-8")
    )


def demo_document() -> dict[str, Any]:
    """The demo catalogue shipped with monetise, as a fresh mapping."""
    return yaml.safe_load(_demo_text())  # type: ignore[no-any-return]


def small_document() -> dict[str, Any]:
    """A small valid catalogue: one subscription type, one account type."""
    return copy.deepcopy(
        {
            "version": 1,
            "event_types": [
                {"code": "CRED", "description": "Credit", "levels": ["subscription"]},
                {"code": "ACCT", "description": "Account", "levels": ["account"]},
            ],
            "event_codes": [
                {
                    "type": "CRED",
                    "code": "WARN",
                    "description": "Credit warning",
                    "communications": [{"channel": "sms", "template": "WARNSMS"}],
                    "linked_events": [{"type": "CRED", "code": "BOUT", "sequence": 10}],
                },
                {
                    "type": "CRED",
                    "code": "BOUT",
                    "description": "Bar outgoing",
                    "default_actions": [{"action": "CCBOUT", "sequence": 10}],
                },
                {
                    "type": "ACCT",
                    "code": "BUSN",
                    "description": "Move to business",
                    "default_actions": [{"action": "MVBUSN", "sequence": 10}],
                },
            ],
            "action_types": [
                {"code": "BAR", "handler": "bar"},
                {"code": "ACMV", "handler": "account_type_movement"},
            ],
            "action_codes": [
                {
                    "code": "CCBOUT",
                    "type": "BAR",
                    "parameters": {"bar": "OUTGOING"},
                    "levels": ["subscription"],
                },
                {
                    "code": "MVBUSN",
                    "type": "ACMV",
                    "parameters": {"account_type": "BUSN"},
                    "levels": ["account"],
                },
            ],
            "templates": [
                {
                    "code": "WARNSMS",
                    "channel": "sms",
                    "body": "Account {account.number} is overdue.",
                },
                {
                    "code": "MOVEDMAIL",
                    "channel": "email",
                    "subject": "Your account {account.number}",
                    "body": "Dear {customer.name}, your account has moved.",
                },
            ],
        }
    )


def new_catalogue() -> Catalogue:
    """An empty catalogue whose creation event is already collected."""
    catalogue = Catalogue(actor=ACTOR)
    catalogue.collect_events()
    return catalogue


def apply(
    catalogue: Catalogue,
    document: object,
    actor: str = ACTOR,
    *,
    prune: bool = False,
) -> ChangeSummary:
    """Read a document and apply it, as an import does."""
    entries, problems = read_document(document)
    return catalogue.apply_entries(entries, actor, prune=prune, problems=problems)


def applied(document: object) -> Catalogue:
    """A catalogue holding ``document``, with its events collected."""
    catalogue = new_catalogue()
    apply(catalogue, document)
    catalogue.collect_events()
    return catalogue


def refusal(document: object, catalogue: Catalogue | None = None) -> list[Problem]:
    """Every problem reported when ``document`` is refused."""
    with pytest.raises(CatalogueRejected) as refused:
        apply(catalogue or new_catalogue(), document)
    return refused.value.problems


def reading_problems(document: object) -> list[Problem]:
    """The problems found by reading ``document``, before any rule across items."""
    _, problems = read_document(document)
    return problems
