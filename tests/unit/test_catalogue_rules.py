"""Rules across catalogue items: references, parameters, cycles, and the lifecycle."""

from __future__ import annotations

from typing import Any

import pytest

from domain.catalogue.aggregate import Catalogue, ItemNotFound
from domain.catalogue.document import write_document
from domain.catalogue.fields import Problem
from domain.catalogue.items import Kind
from domain.catalogue.rules import BARS
from tests.unit.catalogue_documents import (
    ACTOR,
    applied,
    apply,
    new_catalogue,
    refusal,
    small_document,
)

BAR_LIST = ", ".join(BARS)


def messages(problems: list[Problem]) -> list[tuple[str, str]]:
    return [(problem.path, problem.message) for problem in problems]


def with_action_code(handler: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """The small document plus action code ACT of a type with ``handler``."""
    document = small_document()
    document["action_types"].append({"code": "HND", "handler": handler})
    document["action_codes"].append(
        {"code": "ACT", "type": "HND", "parameters": parameters}
    )
    return document


ACT = "action_codes[2]"  # where with_action_code puts ACT


def linked_codes(links: dict[str, list[str]]) -> dict[str, Any]:
    """A document of CRED event codes linked as ``links`` says, in that order."""
    return {
        "event_types": [{"code": "CRED", "levels": ["subscription"]}],
        "event_codes": [
            {
                "type": "CRED",
                "code": code,
                "linked_events": [
                    {"type": "CRED", "code": target, "sequence": 10 * (n + 1)}
                    for n, target in enumerate(targets)
                ],
            }
            for code, targets in links.items()
        ],
    }


def recorded(catalogue: Catalogue) -> list[Any]:
    return list(catalogue.collect_events())


# --- references ----------------------------------------------------------------


def test_the_small_catalogue_is_accepted() -> None:
    summary = apply(new_catalogue(), small_document())

    assert summary.defined == 11


def test_an_event_code_referring_to_a_missing_event_type_is_refused() -> None:
    document = small_document()
    document["event_codes"][2]["type"] = "NONE"

    assert messages(refusal(document)) == [
        ("event_codes[2].type", "event type NONE is not in the catalogue")
    ]


def test_an_event_code_referring_to_a_missing_action_code_is_refused() -> None:
    document = small_document()
    document["event_codes"][1]["default_actions"][0]["action"] = "NOPE"

    assert messages(refusal(document)) == [
        (
            "event_codes[1].default_actions[0].action",
            "action code NOPE is not in the catalogue",
        )
    ]


def test_an_action_code_referring_to_a_missing_action_type_is_refused() -> None:
    document = small_document()
    document["action_codes"][0]["type"] = "NOPE"

    assert messages(refusal(document)) == [
        ("action_codes[0].type", "action type NOPE is not in the catalogue")
    ]


def test_a_communication_with_a_template_of_another_channel_is_refused() -> None:
    document = small_document()
    document["event_codes"][0]["communications"][0]["channel"] = "email"

    assert messages(refusal(document)) == [
        (
            "event_codes[0].communications[0].template",
            "template WARNSMS is for sms, not email",
        )
    ]


def test_a_communication_with_a_missing_template_is_refused() -> None:
    document = small_document()
    document["event_codes"][0]["communications"][0]["template"] = "GONE"

    assert messages(refusal(document)) == [
        (
            "event_codes[0].communications[0].template",
            "template GONE is not in the catalogue",
        )
    ]


def test_a_linked_event_that_is_not_in_the_catalogue_is_refused() -> None:
    document = small_document()
    document["event_codes"][0]["linked_events"][0]["code"] = "GONE"

    assert messages(refusal(document)) == [
        (
            "event_codes[0].linked_events[0]",
            "event code CRED GONE is not in the catalogue",
        )
    ]


def test_a_linked_event_that_cannot_be_raised_at_the_same_level_is_refused() -> None:
    document = small_document()
    document["event_codes"][0]["linked_events"][0]["type"] = "ACCT"
    document["event_codes"][0]["linked_events"][0]["code"] = "BUSN"

    assert messages(refusal(document)) == [
        (
            "event_codes[0].linked_events[0]",
            "event code ACCT BUSN cannot be raised at subscription, "
            "where CRED WARN is raised",
        )
    ]


def test_an_action_code_not_allowed_at_the_levels_of_the_event_is_refused() -> None:
    document = small_document()
    document["event_codes"][1]["default_actions"][0]["action"] = "MVBUSN"

    assert messages(refusal(document)) == [
        (
            "event_codes[1].default_actions[0].action",
            "action code MVBUSN is allowed at account only, "
            "but CRED events are raised at subscription",
        )
    ]


def test_a_reference_to_an_item_already_in_the_catalogue_resolves() -> None:
    catalogue = applied(small_document())
    addition = {
        "event_codes": [
            {
                "type": "CRED",
                "code": "BOU2",
                "default_actions": [{"action": "CCBOUT", "sequence": 10}],
                "communications": [{"channel": "sms", "template": "WARNSMS"}],
            }
        ]
    }

    summary = apply(catalogue, addition)

    assert summary.defined == 1


def test_a_problem_in_an_item_already_in_the_catalogue_is_reported_by_key() -> None:
    catalogue = applied(small_document())
    replacement = {"templates": [{"code": "WARNSMS", "channel": "email", "body": "x"}]}

    assert messages(refusal(replacement, catalogue)) == [
        (
            "event_codes[CRED WARN].communications[0].template",
            "template WARNSMS is for email, not sms",
        )
    ]


# --- handler parameters ------------------------------------------------------------


def test_a_bar_action_with_a_bar_type_that_does_not_exist_is_refused() -> None:
    document = small_document()
    document["action_codes"][0]["parameters"] = {"bar": "SMS"}

    assert messages(refusal(document)) == [
        (
            "action_codes[0].parameters.bar",
            f"'SMS' is not a bar; use one of: {BAR_LIST}",
        )
    ]


def test_a_bar_action_with_no_bar_is_refused() -> None:
    document = small_document()
    document["action_codes"][0]["parameters"] = {}

    assert messages(refusal(document)) == [
        (
            "action_codes[0].parameters.bar",
            "is required by the bar handler of action type BAR",
        )
    ]


def test_an_unknown_parameter_of_a_handler_is_refused() -> None:
    document = small_document()
    document["action_codes"][0]["parameters"]["colour"] = "red"

    assert messages(refusal(document)) == [
        (
            "action_codes[0].parameters.colour",
            "unknown parameter for the bar handler; expected: bar",
        )
    ]


def test_a_parameter_of_a_handler_that_takes_none_is_refused() -> None:
    document = with_action_code("connect", {"bar": "ALL"})

    assert messages(refusal(document)) == [
        (
            f"{ACT}.parameters.bar",
            "unknown parameter for the connect handler; expected: none",
        )
    ]


def test_a_network_action_takes_any_further_parameter() -> None:
    document = with_action_code("network", {"command": "CREATE", "profile": "5G"})

    assert apply(new_catalogue(), document).defined == 13


def test_a_network_action_with_no_command_is_refused() -> None:
    document = with_action_code("network", {})

    assert messages(refusal(document)) == [
        (
            f"{ACT}.parameters.command",
            "is required by the network handler of action type HND",
        )
    ]


@pytest.mark.parametrize("amount", ["10.00", "0.01", 10])
def test_a_top_up_of_a_positive_amount_is_accepted(amount: object) -> None:
    document = with_action_code("top_up", {"amount": amount, "currency": "GBP"})

    assert apply(new_catalogue(), document).defined == 13


@pytest.mark.parametrize(
    "amount", ["0", 0, "-5.00", -5, "ten", "NaN", "Infinity", 10.5, True, None]
)
def test_a_top_up_of_an_amount_that_is_not_positive_or_not_a_number_is_refused(
    amount: object,
) -> None:
    document = with_action_code("top_up", {"amount": amount})

    assert messages(refusal(document)) == [
        (
            f"{ACT}.parameters.amount",
            f"{amount!r} is not a positive amount; "
            'write it as a string such as "10.00"',
        )
    ]


def test_a_top_up_in_a_currency_that_is_not_an_iso_code_is_refused() -> None:
    document = with_action_code("top_up", {"amount": "10.00", "currency": "gbp"})

    assert messages(refusal(document)) == [
        (f"{ACT}.parameters.currency", "'gbp' is not an ISO 4217 code such as GBP")
    ]


def test_an_account_type_movement_to_a_malformed_account_type_is_refused() -> None:
    document = small_document()
    document["action_codes"][1]["parameters"] = {"account_type": "business"}

    assert messages(refusal(document)) == [
        (
            "action_codes[1].parameters.account_type",
            "'business' is not an account type (3 to 4 upper-case letters or digits)",
        )
    ]


def test_an_account_type_movement_with_no_account_type_is_refused() -> None:
    document = small_document()
    document["action_codes"][1]["parameters"] = {}

    assert messages(refusal(document)) == [
        (
            "action_codes[1].parameters.account_type",
            "is required by the account_type_movement handler of action type ACMV",
        )
    ]


@pytest.mark.parametrize("operation", ["add", "remove"])
def test_a_subscription_service_may_be_added_or_removed(operation: str) -> None:
    document = with_action_code(
        "subscription_service", {"service": "DATA1GB", "operation": operation}
    )

    assert apply(new_catalogue(), document).defined == 13


def test_a_subscription_service_operation_other_than_add_or_remove_is_refused() -> None:
    document = with_action_code(
        "subscription_service", {"service": "DATA1GB", "operation": "toggle"}
    )

    assert messages(refusal(document)) == [
        (f"{ACT}.parameters.operation", "'toggle' is not one of: add, remove")
    ]


def test_a_subscription_service_with_an_empty_service_is_refused() -> None:
    document = with_action_code("subscription_service", {"service": ""})

    assert messages(refusal(document)) == [
        (f"{ACT}.parameters.service", "must be a non-empty string")
    ]


def test_a_communication_action_with_a_template_in_the_catalogue_is_accepted() -> None:
    document = with_action_code(
        "communication", {"template": "WARNSMS", "channel": "sms"}
    )

    assert apply(new_catalogue(), document).defined == 13


def test_a_communication_action_with_a_missing_template_is_refused() -> None:
    document = with_action_code("communication", {"template": "GONE"})

    assert messages(refusal(document)) == [
        (f"{ACT}.parameters.template", "template GONE is not in the catalogue")
    ]


def test_a_communication_action_on_a_channel_its_template_is_not_for_is_refused() -> (
    None
):
    document = with_action_code(
        "communication", {"template": "WARNSMS", "channel": "email"}
    )

    assert messages(refusal(document)) == [
        (f"{ACT}.parameters.channel", "template WARNSMS is for sms, not email")
    ]


def test_ignoring_network_errors_is_refused_without_the_network_handler() -> None:
    document = small_document()
    document["action_codes"][0]["ignore_network_errors"] = True

    assert messages(refusal(document)) == [
        (
            "action_codes[0].ignore_network_errors",
            "only applies to action types with the network handler",
        )
    ]


def test_an_action_type_with_an_unknown_handler_is_refused_with_its_path() -> None:
    document = with_action_code("sms", {"template": "WARNSMS"})

    assert messages(refusal(document)) == [
        (
            "action_types[2].handler",
            "'sms' is not one of: network, subscription_service, "
            "account_type_movement, bar, unbar, connect, disconnect, top_up, "
            "communication, external",
        )
    ]


# --- templates ---------------------------------------------------------------------


def test_a_template_with_an_unknown_field_of_a_known_object_is_refused() -> None:
    document = small_document()
    document["templates"][0]["body"] = "Hello {customer.nickname}"

    assert messages(refusal(document)) == [
        (
            "templates[0].body",
            "unknown placeholder {customer.nickname}; known: {customer.id}, "
            "{customer.name}, {customer.email}, {customer.phone}, "
            "{customer.language}, {customer.address}",
        )
    ]


def test_a_template_with_a_placeholder_of_an_unknown_object_is_refused() -> None:
    document = small_document()
    document["templates"][1]["subject"] = "Invoice {invoice.total}"

    assert messages(refusal(document)) == [
        (
            "templates[1].subject",
            "unknown placeholder {invoice.total}; known: {customer.…}, {account.…}, "
            "{subscription.…}, {event.…}, {action.…}",
        )
    ]


def test_a_translation_with_an_unknown_placeholder_is_refused_at_its_language() -> None:
    document = small_document()
    document["templates"][0]["translations"] = {"pt": "Conta {account.numero}"}

    problems = refusal(document)

    assert [p.path for p in problems] == ["templates[0].translations.pt"]
    assert problems[0].message.startswith("unknown placeholder {account.numero}")


def test_a_subject_on_a_template_that_is_not_an_email_is_refused() -> None:
    document = small_document()
    document["templates"][0]["subject"] = "Overdue"

    assert messages(refusal(document)) == [
        ("templates[0].subject", "only e-mail templates have a subject")
    ]


# --- linked-event cycles -----------------------------------------------------------


def test_an_event_code_linked_to_itself_is_refused_as_a_cycle() -> None:
    document = linked_codes({"AAA": ["AAA"]})

    assert messages(refusal(document)) == [
        (
            "event_codes[0].linked_events",
            "linked events form a cycle: CRED AAA → CRED AAA",
        )
    ]


def test_two_event_codes_linked_to_each_other_are_refused_as_a_cycle() -> None:
    document = linked_codes({"AAA": ["BBB"], "BBB": ["AAA"]})

    assert messages(refusal(document)) == [
        (
            "event_codes[0].linked_events",
            "linked events form a cycle: CRED AAA → CRED BBB → CRED AAA",
        )
    ]


def test_three_event_codes_linked_in_a_ring_are_refused_as_a_cycle() -> None:
    document = linked_codes({"AAA": ["BBB"], "BBB": ["CCC"], "CCC": ["AAA"]})

    assert messages(refusal(document)) == [
        (
            "event_codes[0].linked_events",
            "linked events form a cycle: CRED AAA → CRED BBB → CRED CCC → CRED AAA",
        )
    ]


def test_a_cycle_reachable_from_several_event_codes_is_reported_once() -> None:
    document = linked_codes(
        {"AAA": ["CCC"], "BBB": ["CCC"], "CCC": ["DDD"], "DDD": ["CCC"]}
    )

    assert messages(refusal(document)) == [
        (
            "event_codes[2].linked_events",
            "linked events form a cycle: CRED CCC → CRED DDD → CRED CCC",
        )
    ]


def test_event_codes_linked_without_a_cycle_are_accepted() -> None:
    document = linked_codes(
        {"AAA": ["BBB", "CCC"], "BBB": ["DDD"], "CCC": ["DDD"], "DDD": []}
    )

    assert apply(new_catalogue(), document).defined == 5


def test_a_link_that_closes_a_cycle_with_the_catalogue_is_refused() -> None:
    catalogue = applied(small_document())
    change = {
        "event_codes": [
            {
                "type": "CRED",
                "code": "BOUT",
                "default_actions": [{"action": "CCBOUT", "sequence": 10}],
                "linked_events": [{"type": "CRED", "code": "WARN", "sequence": 10}],
            }
        ]
    }

    assert messages(refusal(change, catalogue)) == [
        (
            "event_codes[0].linked_events",
            "linked events form a cycle: CRED BOUT → CRED WARN → CRED BOUT",
        )
    ]


# --- all or nothing, duplicates ------------------------------------------------------


def test_a_refused_change_leaves_the_catalogue_unchanged_and_records_nothing() -> None:
    catalogue = applied(small_document())
    before = write_document(catalogue)
    change = small_document()
    change["templates"][0]["body"] = "Your balance is {account.balance}."
    change["templates"].append({"code": "NEWSMS", "channel": "sms", "body": "Hi"})
    change["event_codes"][0]["linked_events"][0]["code"] = "GONE"

    refusal(change, catalogue)

    assert write_document(catalogue) == before
    assert not catalogue.has(Kind.TEMPLATES, "NEWSMS")
    assert recorded(catalogue) == []


def test_a_refused_first_import_defines_nothing() -> None:
    catalogue = new_catalogue()
    document = small_document()
    document["action_codes"][0]["parameters"] = {"bar": "SMS"}

    refusal(document, catalogue)

    assert write_document(catalogue) == {
        "version": 1,
        **{kind.value: [] for kind in Kind},
    }
    assert recorded(catalogue) == []


def test_an_item_defined_twice_in_one_document_is_refused() -> None:
    document = small_document()
    document["event_types"].append({"code": "CRED", "levels": ["subscription"]})
    document["event_codes"].append({"type": "CRED", "code": "WARN"})

    assert messages(refusal(document)) == [
        ("event_types[2]", "event type CRED is already defined at event_types[0]"),
        ("event_codes[3]", "event code CRED WARN is already defined at event_codes[0]"),
    ]


def test_items_whose_codes_cannot_be_read_are_not_reported_as_duplicates() -> None:
    document = small_document()
    document["event_types"] += [{"levels": ["account"]}, "ACCT"]

    assert messages(refusal(document)) == [
        ("event_types[2].code", "is required"),
        ("event_types[3]", "must be a mapping, not a string"),
    ]


# --- removing, deactivating, redefining ---------------------------------------------


def test_removing_an_item_that_is_referenced_deactivates_it() -> None:
    catalogue = applied(small_document())

    outcome = catalogue.remove(Kind.ACTION_CODES, "CCBOUT", "bob")

    events = recorded(catalogue)
    assert outcome == "deactivated"
    assert catalogue.has(Kind.ACTION_CODES, "CCBOUT")
    assert not catalogue.is_active(Kind.ACTION_CODES, "CCBOUT")
    assert [type(e) for e in events] == [Catalogue.ItemDeactivated]
    assert events[0].actor == "bob"
    assert events[0].reason == "referenced by event code CRED BOUT; deactivated"


def test_removing_a_referenced_item_that_is_inactive_records_nothing() -> None:
    catalogue = applied(small_document())
    catalogue.deactivate(Kind.EVENT_TYPES, "CRED", ACTOR)
    catalogue.collect_events()

    outcome = catalogue.remove(Kind.EVENT_TYPES, "CRED", ACTOR)

    assert outcome == "deactivated"
    assert recorded(catalogue) == []


def test_removing_an_item_that_is_not_referenced_removes_it() -> None:
    catalogue = applied(small_document())

    outcome = catalogue.remove(Kind.TEMPLATES, "MOVEDMAIL", "bob")

    events = recorded(catalogue)
    assert outcome == "removed"
    assert not catalogue.has(Kind.TEMPLATES, "MOVEDMAIL")
    assert [type(e) for e in events] == [Catalogue.ItemRemoved]
    assert (events[0].kind, events[0].key, events[0].actor) == (
        "templates",
        "MOVEDMAIL",
        "bob",
    )


def test_removing_an_item_that_is_not_in_the_catalogue_says_so() -> None:
    catalogue = applied(small_document())

    with pytest.raises(ItemNotFound) as missing:
        catalogue.remove(Kind.TEMPLATES, "NOPE", ACTOR)

    assert str(missing.value) == "template NOPE is not in the catalogue"


def test_deactivating_an_active_item_returns_true_and_an_inactive_one_false() -> None:
    catalogue = applied(small_document())

    first = catalogue.deactivate(Kind.TEMPLATES, "MOVEDMAIL", ACTOR, "retired")
    second = catalogue.deactivate(Kind.TEMPLATES, "MOVEDMAIL", ACTOR)

    events = recorded(catalogue)
    assert (first, second) == (True, False)
    assert [type(e) for e in events] == [Catalogue.ItemDeactivated]
    assert events[0].reason == "retired"


def test_reactivating_an_inactive_item_returns_true_and_an_active_one_false() -> None:
    catalogue = applied(small_document())
    catalogue.deactivate(Kind.TEMPLATES, "MOVEDMAIL", ACTOR)
    catalogue.collect_events()

    first = catalogue.reactivate(Kind.TEMPLATES, "MOVEDMAIL", ACTOR)
    second = catalogue.reactivate(Kind.TEMPLATES, "MOVEDMAIL", ACTOR)

    assert (first, second) == (True, False)
    assert catalogue.is_active(Kind.TEMPLATES, "MOVEDMAIL")
    assert [type(e) for e in recorded(catalogue)] == [Catalogue.ItemReactivated]


def test_deactivating_an_item_that_is_not_in_the_catalogue_says_so() -> None:
    catalogue = applied(small_document())

    with pytest.raises(ItemNotFound) as missing:
        catalogue.deactivate(Kind.EVENT_CODES, "CRED NOPE", ACTOR)

    assert str(missing.value) == "event code CRED NOPE is not in the catalogue"


def test_redefining_an_item_records_item_redefined_with_the_actor() -> None:
    catalogue = applied(small_document())
    change = small_document()
    change["templates"][0]["body"] = "Please pay account {account.number}."

    summary = apply(catalogue, change, "carol")

    events = recorded(catalogue)
    assert (summary.redefined, summary.unchanged) == (1, 10)
    assert [type(e) for e in events] == [Catalogue.ItemRedefined]
    assert (events[0].kind, events[0].key, events[0].actor) == (
        "templates",
        "WARNSMS",
        "carol",
    )
    assert events[0].definition["body"] == "Please pay account {account.number}."


def test_an_item_marked_inactive_in_the_document_is_deactivated_and_back_again() -> (
    None
):
    catalogue = applied(small_document())
    change = small_document()
    change["templates"][1]["active"] = False

    off = apply(catalogue, change)
    off_events = recorded(catalogue)
    on = apply(catalogue, small_document())

    assert off.deactivated == 1
    assert off_events[0].reason == "deactivated in the document"
    assert on.reactivated == 1
    assert catalogue.is_active(Kind.TEMPLATES, "MOVEDMAIL")


def test_pruning_deactivates_the_items_absent_from_the_document() -> None:
    catalogue = applied(small_document())
    change = small_document()
    del change["templates"][1]
    del change["event_codes"][2]

    summary = apply(catalogue, change, prune=True)

    events = recorded(catalogue)
    assert summary.deactivated == 2
    assert summary.unchanged == 9
    assert not catalogue.is_active(Kind.TEMPLATES, "MOVEDMAIL")
    assert not catalogue.is_active(Kind.EVENT_CODES, "ACCT BUSN")
    assert catalogue.has(Kind.TEMPLATES, "MOVEDMAIL")
    assert {(e.key, e.reason) for e in events} == {
        ("MOVEDMAIL", "not in the imported document"),
        ("ACCT BUSN", "not in the imported document"),
    }


def test_without_pruning_items_absent_from_the_document_stay_active() -> None:
    catalogue = applied(small_document())
    change = small_document()
    del change["templates"][1]

    summary = apply(catalogue, change)

    assert summary.events == 0
    assert catalogue.is_active(Kind.TEMPLATES, "MOVEDMAIL")
