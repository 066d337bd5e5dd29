"""Resolving an event code into the actions a workflow event will carry.

What a workflow event will do is fixed when it is raised: later catalogue
changes do not rewrite it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.catalogue.items import ActionCode, EventCode, Kind, definition_of
from domain.catalogue.rules import Items
from domain.durations import parse_duration

INTERNAL_HANDLERS = (
    "bar",
    "unbar",
    "connect",
    "disconnect",
    "subscription_service",
    "top_up",
    "account_type_movement",
)


class RaiseRefused(Exception):
    """The event cannot be raised as asked (unknown code, level, manual action)."""


@dataclass(frozen=True)
class CatalogueView:
    """What raising needs of the catalogue: its items and which are active."""

    items: Items
    active: frozenset[tuple[str, str]]

    def is_active(self, kind: Kind, key: str) -> bool:
        return (kind.value, key) in self.active


@dataclass
class RaisePlan:
    """Fields of a WorkflowEventRaised, as resolved from the catalogue."""

    event_type: str
    event_code: str
    description: str
    auto_resolve: bool
    actions: list[dict[str, Any]] = field(default_factory=list)
    communications: list[dict[str, Any]] = field(default_factory=list)
    linked_events: list[dict[str, Any]] = field(default_factory=list)
    skipped_actions: list[dict[str, Any]] = field(default_factory=list)
    cancels: list[str] = field(default_factory=list)


def plan_raise(
    catalogue: CatalogueView,
    level: str,
    event_type: str,
    event_code: str,
    manual_actions: list[str],
) -> RaisePlan:
    """Resolve ``TYPE CODE`` at ``level``; raises RaiseRefused saying why."""
    key = f"{event_type} {event_code}"
    code: EventCode | None = catalogue.items.event_codes.get(key)
    if code is None:
        raise RaiseRefused(f"event code {key} is not in the catalogue")
    if not catalogue.is_active(Kind.EVENT_CODES, key):
        raise RaiseRefused(f"event code {key} is inactive")
    if not catalogue.is_active(Kind.EVENT_TYPES, event_type):
        raise RaiseRefused(f"event type {event_type} is inactive")
    levels = catalogue.items.event_types[event_type].levels
    if level not in levels:
        raise RaiseRefused(
            f"{key} cannot be raised on {_a(level)}; only on: {', '.join(levels)}"
        )
    plan = RaisePlan(event_type, event_code, code.description, code.auto_resolve)
    for default in code.default_actions:
        action = catalogue.items.action_codes[default.action]
        if not catalogue.is_active(Kind.ACTION_CODES, action.code):
            plan.skipped_actions.append(
                {"action_code": action.code, "reason": "action code is inactive"}
            )
            continue
        plan.actions.append(
            resolve_action(catalogue, action, default.when, default.sequence)
        )
    next_sequence = max((a["sequence"] for a in plan.actions), default=0)
    for offset, code_name in enumerate(manual_actions, start=1):
        action_code = manual_action(catalogue, level, code_name)
        plan.actions.append(
            resolve_action(
                catalogue,
                action_code,
                "raise",
                next_sequence + 10 * offset,
                manual=True,
            )
        )
    for communication in code.communications:
        template = catalogue.items.templates[communication.template]
        if not catalogue.is_active(Kind.TEMPLATES, template.code):
            plan.skipped_actions.append(
                {
                    "communication": f"{communication.channel} {template.code}",
                    "reason": "template is inactive",
                }
            )
            continue
        plan.communications.append(
            {
                "channel": communication.channel,
                "when": communication.when,
                "template": definition_of(template),
            }
        )
    plan.cancels = [ref.key for ref in code.cancels]
    plan.linked_events = [
        {"type": link.type, "code": link.code, "sequence": link.sequence}
        for link in code.linked_events
    ]
    return plan


def manual_action(catalogue: CatalogueView, level: str, code: str) -> ActionCode:
    """The action code an agent adds by hand, if it may be added at ``level``."""
    action = catalogue.items.action_codes.get(code)
    if action is None:
        raise RaiseRefused(f"action code {code} is not in the catalogue")
    if not catalogue.is_active(Kind.ACTION_CODES, code):
        raise RaiseRefused(f"action code {code} is inactive")
    if not action.manual:
        raise RaiseRefused(f"action code {code} cannot be added manually")
    if level not in action.levels:
        raise RaiseRefused(
            f"action code {code} is not allowed on {_a(level)}; only on: "
            f"{', '.join(action.levels)}"
        )
    return action


def resolve_action(
    catalogue: CatalogueView,
    action: ActionCode,
    when: str,
    sequence: int,
    manual: bool = False,
) -> dict[str, Any]:
    action_type = catalogue.items.action_types[action.type]
    return {
        "action_code": action.code,
        "action_type": action_type.code,
        "handler": action_type.handler,
        "description": action.description,
        "parameters": dict(action.parameters),
        "schedule": definition_of(action)["schedule"],
        "when": when,
        "sequence": sequence,
        "manual": manual,
        "max_attempts": action.max_attempts,
        "ignore_network_errors": action.ignore_network_errors,
    }


def due_time(schedule: dict[str, Any], base: datetime) -> datetime:
    """When an action with ``schedule`` falls due, counted from ``base``."""
    mode = schedule.get("mode", "immediate")
    if mode == "after":
        return parse_duration(str(schedule["offset"])).after(base)
    if mode == "at":
        return max(datetime.fromisoformat(str(schedule["time"])), base)
    return base


def _a(level: str) -> str:
    return f"an {level}" if level[0] in "aeiou" else f"a {level}"
