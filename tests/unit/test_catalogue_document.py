"""Reading catalogue documents: formats, types, schedules and every problem found."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from domain.catalogue.document import read_document, write_document
from domain.catalogue.fields import Problem
from domain.catalogue.items import ActionCode, Schedule
from tests.unit.catalogue_documents import (
    ACTOR,
    applied,
    apply,
    demo_document,
    new_catalogue,
    reading_problems,
    small_document,
)

CODE_RULE_3_4 = "3 to 4 upper-case letters or digits"
CODE_RULE_1_6 = "1 to 6 upper-case letters or digits"
DEMO_ITEMS = 6 + 15 + 8 + 15 + 11 + 8  # as counted in application/demo/catalogue.yaml


def paths(problems: list[Problem]) -> set[str]:
    return {problem.path for problem in problems}


def action_code(**fields: Any) -> dict[str, Any]:
    return {"action_codes": [{"code": "PROV", "type": "NET", **fields}]}


def schedule_of(raw_schedule: object) -> tuple[Schedule, list[Problem]]:
    entries, problems = read_document(action_code(schedule=raw_schedule))
    item = entries[0].item
    assert isinstance(item, ActionCode)
    return item.schedule, problems


# --- the demo catalogue and round trips -------------------------------------


def test_the_demo_catalogue_reads_with_no_problems() -> None:
    entries, problems = read_document(demo_document())

    assert problems == []
    assert len(entries) == DEMO_ITEMS


def test_the_demo_catalogue_applies_and_records_one_event_per_item() -> None:
    catalogue = new_catalogue()

    summary = apply(catalogue, demo_document())

    assert summary.defined == DEMO_ITEMS
    assert summary.events == DEMO_ITEMS
    assert len(catalogue.collect_events()) == DEMO_ITEMS


def test_an_exported_catalogue_reads_back_with_no_problems_and_records_no_events() -> (
    None
):
    catalogue = applied(demo_document())
    exported = write_document(catalogue)

    entries, problems = read_document(exported)
    summary = catalogue.apply_entries(entries, ACTOR, problems=problems)

    assert problems == []
    assert summary.events == 0
    assert summary.unchanged == DEMO_ITEMS
    assert catalogue.collect_events() == []
    assert write_document(catalogue) == exported


def test_reapplying_the_same_document_records_no_events() -> None:
    document = small_document()
    catalogue = applied(document)

    summary = apply(catalogue, document)

    assert summary.events == 0
    assert catalogue.collect_events() == []


def test_an_inactive_item_is_exported_as_inactive_and_reimports_with_no_events() -> (
    None
):
    document = small_document()
    document["templates"][1]["active"] = False
    catalogue = applied(document)
    exported = write_document(catalogue)

    summary = apply(catalogue, exported)

    assert exported["templates"][0]["code"] == "MOVEDMAIL"
    assert exported["templates"][0]["active"] is False
    assert summary.events == 0
    assert catalogue.collect_events() == []


def test_a_yaml_document_with_a_scheduled_time_reimports_with_no_events() -> None:
    document = yaml.safe_load(
        """
        action_types: [{code: NET, handler: network}]
        action_codes:
          - {code: PROV, type: NET, parameters: {command: CREATE},
             schedule: {mode: at, time: 2025-03-01T10:00:00Z}}
        """
    )
    catalogue = applied(document)

    again = apply(catalogue, document)
    exported = apply(catalogue, write_document(catalogue))

    assert again.events == 0
    assert exported.events == 0
    assert catalogue.collect_events() == []


# --- code formats ------------------------------------------------------------


@pytest.mark.parametrize("code", ["CRED", "ACC", "A1B2", "123"])
def test_an_event_type_code_of_three_or_four_upper_case_characters_is_accepted(
    code: str,
) -> None:
    document = {"event_types": [{"code": code, "levels": ["account"]}]}

    assert reading_problems(document) == []


@pytest.mark.parametrize("code", ["CR", "CREDIT", "cred", "CR-D", "CR D", ""])
def test_an_event_type_code_of_another_format_is_refused_naming_the_rule(
    code: str,
) -> None:
    document = {"event_types": [{"code": code, "levels": ["account"]}]}

    assert reading_problems(document) == [
        Problem("event_types[0].code", f"{code!r} is not valid: {CODE_RULE_3_4}")
    ]


@pytest.mark.parametrize("field", ["type", "code"])
@pytest.mark.parametrize("value", ["WA", "WARNS", "warn"])
def test_an_event_code_with_a_type_or_code_of_another_format_is_refused(
    field: str, value: str
) -> None:
    event_code = {"type": "CRED", "code": "WARN", field: value}

    assert reading_problems({"event_codes": [event_code]}) == [
        Problem(f"event_codes[0].{field}", f"{value!r} is not valid: {CODE_RULE_3_4}")
    ]


@pytest.mark.parametrize("code", ["BAR", "ACMV", "NET1"])
def test_an_action_type_code_of_three_or_four_characters_is_accepted(
    code: str,
) -> None:
    document = {"action_types": [{"code": code, "handler": "bar"}]}

    assert reading_problems(document) == []


@pytest.mark.parametrize("code", ["BA", "BARRS", "bar"])
def test_an_action_type_code_of_another_format_is_refused_naming_the_rule(
    code: str,
) -> None:
    document = {"action_types": [{"code": code, "handler": "bar"}]}

    assert reading_problems(document) == [
        Problem("action_types[0].code", f"{code!r} is not valid: {CODE_RULE_3_4}")
    ]


@pytest.mark.parametrize("code", ["A", "PROV", "CCBOUT", "TOP10L"])
def test_an_action_code_of_up_to_six_upper_case_characters_is_accepted(
    code: str,
) -> None:
    document = {"action_codes": [{"code": code, "type": "NET"}]}

    assert reading_problems(document) == []


@pytest.mark.parametrize("code", ["", "CCBOUTX", "ccbout", "TOP_10"])
def test_an_action_code_of_another_format_is_refused_naming_the_rule(
    code: str,
) -> None:
    document = {"action_codes": [{"code": code, "type": "NET"}]}

    assert reading_problems(document) == [
        Problem("action_codes[0].code", f"{code!r} is not valid: {CODE_RULE_1_6}")
    ]


def test_an_action_code_whose_action_type_has_another_format_is_refused() -> None:
    document = {"action_codes": [{"code": "PROV", "type": "NETWORK"}]}

    assert reading_problems(document) == [
        Problem("action_codes[0].type", f"'NETWORK' is not valid: {CODE_RULE_3_4}")
    ]


def test_a_default_action_naming_an_action_code_of_another_format_is_refused() -> None:
    event_code = {
        "type": "CRED",
        "code": "WARN",
        "default_actions": [{"action": "TOOLONG", "sequence": 10}],
    }

    assert reading_problems({"event_codes": [event_code]}) == [
        Problem(
            "event_codes[0].default_actions[0].action",
            f"'TOOLONG' is not valid: {CODE_RULE_1_6}",
        )
    ]


def test_a_linked_event_naming_a_code_of_another_format_is_refused() -> None:
    event_code = {
        "type": "CRED",
        "code": "WARN",
        "linked_events": [{"type": "cred", "code": "B", "sequence": 10}],
    }

    assert reading_problems({"event_codes": [event_code]}) == [
        Problem(
            "event_codes[0].linked_events[0].type",
            f"'cred' is not valid: {CODE_RULE_3_4}",
        ),
        Problem(
            "event_codes[0].linked_events[0].code",
            f"'B' is not valid: {CODE_RULE_3_4}",
        ),
    ]


def test_a_template_code_of_another_format_is_refused_naming_the_rule() -> None:
    document = {"templates": [{"code": "warn-sms", "channel": "sms", "body": "Hi"}]}

    assert reading_problems(document) == [
        Problem(
            "templates[0].code",
            "'warn-sms' is not valid: "
            "1 to 16 upper-case letters, digits or underscores",
        )
    ]


def test_a_code_written_as_a_number_is_refused_as_not_a_string() -> None:
    document = yaml.safe_load("event_types: [{code: 1234, levels: [account]}]")

    assert reading_problems(document) == [
        Problem("event_types[0].code", "must be a string, not a number")
    ]


def test_a_missing_code_is_reported_as_required() -> None:
    document = {"event_types": [{"levels": ["account"]}]}

    assert reading_problems(document) == [Problem("event_types[0].code", "is required")]


# --- unknown fields, shapes and types -----------------------------------------


def test_an_unknown_field_of_an_item_is_reported_with_its_path() -> None:
    document = {"event_types": [{"code": "CRED", "levels": ["account"], "colour": 1}]}

    assert reading_problems(document) == [
        Problem(
            "event_types[0].colour",
            "unknown field; expected one of: active, code, description, levels",
        )
    ]


def test_an_unknown_field_inside_a_default_action_is_reported_with_its_path() -> None:
    event_code = {
        "type": "CRED",
        "code": "WARN",
        "default_actions": [{"action": "CCBOUT", "sequence": 10, "delay": "P1D"}],
    }

    assert reading_problems({"event_codes": [event_code]}) == [
        Problem(
            "event_codes[0].default_actions[0].delay",
            "unknown field; expected one of: action, sequence, when",
        )
    ]


def test_an_unknown_field_of_a_schedule_is_reported_with_its_path() -> None:
    _, problems = schedule_of({"mode": "immediate", "every": "P1D"})

    assert problems == [
        Problem(
            "action_codes[0].schedule.every",
            "unknown field; expected one of: mode, offset, time",
        )
    ]


def test_an_unknown_section_of_the_document_is_reported() -> None:
    assert reading_problems({"actions": []}) == [
        Problem(
            "actions",
            "unknown section; expected one of: event_types, event_codes, "
            "action_types, action_codes, templates, usage_classes",
        )
    ]


def test_a_document_that_is_not_a_mapping_is_refused() -> None:
    assert reading_problems(["event_types"]) == [
        Problem("", "the document must be a mapping, not a list")
    ]


def test_a_section_that_is_not_a_list_is_refused() -> None:
    assert reading_problems({"templates": {"code": "WARNSMS"}}) == [
        Problem("templates", "must be a list, not a mapping")
    ]


def test_an_item_that_is_not_a_mapping_is_reported_once_at_its_path() -> None:
    document = {"event_types": ["CRED", 5, {"code": "ACCT", "levels": ["account"]}]}

    assert reading_problems(document) == [
        Problem("event_types[0]", "must be a mapping, not a string"),
        Problem("event_types[1]", "must be a mapping, not a number"),
    ]


def test_a_default_action_that_is_not_a_mapping_is_reported_at_its_path() -> None:
    event_code = {"type": "CRED", "code": "WARN", "default_actions": ["CCBOUT"]}

    assert reading_problems({"event_codes": [event_code]}) == [
        Problem("event_codes[0].default_actions[0]", "must be a mapping, not a string")
    ]


def test_event_type_levels_that_are_not_a_list_are_refused() -> None:
    document = {"event_types": [{"code": "CRED", "levels": "account"}]}

    assert reading_problems(document) == [
        Problem("event_types[0].levels", "must be a list, not a string")
    ]


def test_action_code_levels_that_are_not_a_list_are_refused_once() -> None:
    problems = reading_problems(action_code(levels="account"))

    assert problems == [
        Problem("action_codes[0].levels", "must be a list, not a string")
    ]


def test_a_level_that_does_not_exist_is_refused() -> None:
    problems = reading_problems(action_code(levels=["customer"]))

    assert problems == [
        Problem(
            "action_codes[0].levels[0]",
            "'customer' is not a level; use one of: account, subscription",
        )
    ]


def test_an_event_type_with_an_empty_list_of_levels_is_refused() -> None:
    document = {"event_types": [{"code": "CRED", "levels": []}]}

    assert reading_problems(document) == [
        Problem("event_types[0].levels", "must name at least one level")
    ]


def test_an_action_code_with_an_empty_list_of_levels_is_refused() -> None:
    assert reading_problems(action_code(levels=[])) == [
        Problem("action_codes[0].levels", "must name at least one level")
    ]


def test_max_attempts_written_as_a_word_is_refused() -> None:
    assert reading_problems(action_code(max_attempts="five")) == [
        Problem("action_codes[0].max_attempts", "must be a whole number, not 'five'")
    ]


@pytest.mark.parametrize("attempts", [0, 101])
def test_max_attempts_out_of_range_is_refused(attempts: int) -> None:
    assert reading_problems(action_code(max_attempts=attempts)) == [
        Problem(
            "action_codes[0].max_attempts",
            f"must be between 1 and 100, not {attempts}",
        )
    ]


def test_manual_written_as_yes_in_quotes_is_refused() -> None:
    assert reading_problems(action_code(manual="yes")) == [
        Problem("action_codes[0].manual", "must be true or false, not 'yes'")
    ]


def test_active_that_is_not_true_or_false_is_refused() -> None:
    document = {"event_types": [{"code": "CRED", "levels": ["account"], "active": 0}]}

    assert reading_problems(document) == [
        Problem("event_types[0].active", "must be true or false, not 0")
    ]


def test_an_unknown_handler_is_refused_naming_the_handlers() -> None:
    document = {"action_types": [{"code": "SMS", "handler": "sms"}]}

    assert reading_problems(document) == [
        Problem(
            "action_types[0].handler",
            "'sms' is not one of: network, subscription_service, "
            "account_type_movement, bar, unbar, connect, disconnect, top_up, "
            "communication, external",
        )
    ]


def test_two_default_actions_with_the_same_sequence_are_refused() -> None:
    event_code = {
        "type": "CRED",
        "code": "WARN",
        "default_actions": [
            {"action": "CCBOUT", "sequence": 10},
            {"action": "CCDISC", "sequence": 10},
        ],
    }

    assert reading_problems({"event_codes": [event_code]}) == [
        Problem(
            "event_codes[0].default_actions[1].sequence",
            "sequence 10 is also used by event_codes[0].default_actions[0]",
        )
    ]


def test_every_problem_of_a_document_is_reported_with_its_path() -> None:
    document = small_document()
    document["event_types"][0]["code"] = "CR"
    document["event_types"][1]["levels"] = "account"
    document["event_codes"][0]["auto_resolve"] = "yes"
    document["event_codes"][1]["default_actions"][0]["sequence"] = "ten"
    document["action_types"][0]["handler"] = "barring"
    document["action_codes"][0]["max_attempts"] = "five"
    document["action_codes"][1]["manual"] = "yes"
    document["action_codes"][1]["schedule"] = {"mode": "after", "offset": "3 days"}
    document["templates"][0]["channel"] = "fax"
    document["templates"][1]["colour"] = "red"
    document["extras"] = []

    assert paths(reading_problems(document)) == {
        "event_types[0].code",
        "event_types[1].levels",
        "event_codes[0].auto_resolve",
        "event_codes[1].default_actions[0].sequence",
        "action_types[0].handler",
        "action_codes[0].max_attempts",
        "action_codes[1].manual",
        "action_codes[1].schedule.offset",
        "templates[0].channel",
        "templates[1].colour",
        "extras",
    }


# --- schedules ---------------------------------------------------------------


def test_an_action_code_with_no_schedule_is_done_immediately() -> None:
    entries, problems = read_document(action_code())

    assert problems == []
    assert entries[0].item == ActionCode(code="PROV", type="NET", description="")


def test_an_immediate_schedule_is_accepted() -> None:
    assert schedule_of({"mode": "immediate"}) == (Schedule(mode="immediate"), [])


def test_a_schedule_after_an_iso_8601_duration_is_accepted() -> None:
    assert schedule_of({"mode": "after", "offset": "P3D"}) == (
        Schedule(mode="after", offset="P3D"),
        [],
    )


@pytest.mark.parametrize("offset", ["3 days", "P", "3D", "P1.5D"])
def test_a_schedule_after_an_offset_that_is_not_a_duration_is_refused(
    offset: str,
) -> None:
    _, problems = schedule_of({"mode": "after", "offset": offset})

    assert problems == [
        Problem(
            "action_codes[0].schedule.offset",
            f"{offset!r} is not an ISO 8601 duration such as P3D, PT12H or P1M",
        )
    ]


def test_a_schedule_after_with_no_offset_is_refused() -> None:
    _, problems = schedule_of({"mode": "after"})

    assert problems == [Problem("action_codes[0].schedule.offset", "is required")]


@pytest.mark.parametrize("time", ["2025-03-01T10:00:00Z", "2025-03-01T10:00:00+01:00"])
def test_a_schedule_at_a_time_with_a_time_zone_is_accepted(time: str) -> None:
    assert schedule_of({"mode": "at", "time": time}) == (
        Schedule(mode="at", time=time),
        [],
    )


def test_a_schedule_at_a_time_without_a_time_zone_is_refused() -> None:
    _, problems = schedule_of({"mode": "at", "time": "2025-03-01T10:00:00"})

    assert problems == [
        Problem("action_codes[0].schedule.time", "must carry a time zone, e.g. Z")
    ]


def test_a_schedule_at_something_that_is_not_a_time_is_refused() -> None:
    _, problems = schedule_of({"mode": "at", "time": "next tuesday"})

    assert problems == [
        Problem(
            "action_codes[0].schedule.time", "'next tuesday' is not an ISO 8601 time"
        )
    ]


def test_a_schedule_at_with_no_time_is_refused() -> None:
    _, problems = schedule_of({"mode": "at"})

    assert problems == [Problem("action_codes[0].schedule.time", "is required")]


def test_a_yaml_timestamp_with_a_time_zone_is_accepted_as_a_scheduled_time() -> None:
    raw = yaml.safe_load("{mode: at, time: 2025-03-01T10:00:00Z}")

    assert schedule_of(raw) == (
        Schedule(mode="at", time="2025-03-01T10:00:00+00:00"),
        [],
    )


def test_a_yaml_timestamp_without_a_time_zone_is_refused() -> None:
    raw = yaml.safe_load("{mode: at, time: 2025-03-01 10:00:00}")

    _, problems = schedule_of(raw)

    assert problems == [
        Problem("action_codes[0].schedule.time", "must carry a time zone, e.g. Z")
    ]


def test_an_unknown_schedule_mode_is_refused() -> None:
    _, problems = schedule_of({"mode": "later"})

    assert problems == [
        Problem(
            "action_codes[0].schedule.mode",
            "'later' is not one of: immediate, after, at",
        )
    ]


def test_a_schedule_that_is_not_a_mapping_is_refused() -> None:
    _, problems = schedule_of("P3D")

    assert problems == [
        Problem("action_codes[0].schedule", "must be a mapping, not a string")
    ]


@pytest.mark.parametrize(
    ("schedule", "field", "message"),
    [
        (
            {"mode": "immediate", "offset": "P3D"},
            "offset",
            "only allowed with mode after",
        ),
        (
            {"mode": "immediate", "time": "2025-03-01T10:00:00Z"},
            "time",
            "only allowed with mode at",
        ),
        (
            {"mode": "after", "offset": "P3D", "time": "2025-03-01T10:00:00Z"},
            "time",
            "only allowed with mode at",
        ),
        (
            {"mode": "at", "time": "2025-03-01T10:00:00Z", "offset": "P3D"},
            "offset",
            "only allowed with mode after",
        ),
    ],
    ids=["immediate-offset", "immediate-time", "after-time", "at-offset"],
)
def test_a_schedule_field_that_does_not_belong_to_its_mode_is_refused(
    schedule: dict[str, str], field: str, message: str
) -> None:
    _, problems = schedule_of(schedule)

    assert problems == [Problem(f"action_codes[0].schedule.{field}", message)]


def test_a_usage_class_names_the_unit_its_quantity_is_counted_in() -> None:
    entries, problems = read_document(
        {"usage_classes": [{"code": "VOICE_NAT", "unit": "seconds"}]}
    )
    assert problems == []
    assert entries[0].item.key == "VOICE_NAT"
    assert reading_problems(
        {"usage_classes": [{"code": "voice nat", "unit": "minutes"}]}
    ) == [
        Problem(
            "usage_classes[0].code",
            "'voice nat' is not valid: 1 to 32 upper-case letters, digits or "
            "underscores",
        ),
        Problem(
            "usage_classes[0].unit",
            "'minutes' is not one of: seconds, bytes, units",
        ),
    ]
