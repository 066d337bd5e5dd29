"""Rules that span catalogue items: references, parameters, placeholders, cycles."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.catalogue.fields import Problem, join
from domain.catalogue.items import (
    ACTION_TYPE_FORMAT,
    EVENT_CODE_FORMAT,
    ActionCode,
    ActionType,
    EventCode,
    EventType,
    Kind,
    Template,
    UsageClass,
)

BARS = ("OUTGOING", "INCOMING", "DATA", "ALL", "ROAMING", "PREMIUM")

# Fields a communication template may use, as {object.field}.
PLACEHOLDERS = {
    "customer": ("id", "name", "email", "phone", "language", "address"),
    "account": (
        "id",
        "number",
        "account_type",
        "currency",
        "balance",
        "bill_cycle_day",
        "credit_status",
    ),
    "subscription": (
        "id",
        "msisdn",
        "imsi",
        "status",
        "payment_type",
        "rate_plan",
        "prepaid_balance",
        "bars",
        "services",
    ),
    "event": ("id", "type", "code", "description", "note", "raised_at"),
    "action": (
        "code",
        "description",
        "amount",
        "currency",
        "service",
        "bar",
        "account_type",
        "command",
    ),
}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

_NO_PARAMETERS: tuple[str, ...] = ()
# handler -> (required, optional); None means any further parameter is allowed.
_PARAMETERS: dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]] = {
    "bar": (("bar",), _NO_PARAMETERS),
    "unbar": (("bar",), _NO_PARAMETERS),
    "connect": (_NO_PARAMETERS, _NO_PARAMETERS),
    "disconnect": (_NO_PARAMETERS, ("reason",)),
    "subscription_service": (("service",), ("operation",)),
    "top_up": (("amount",), ("currency",)),
    "account_type_movement": (("account_type",), _NO_PARAMETERS),
    "communication": (("template",), ("channel",)),
    "network": (("command",), None),
    "external": (_NO_PARAMETERS, None),
}


class Items:
    """The catalogue as a whole, by kind and key, for checking the rules."""

    def __init__(self) -> None:
        self.event_types: dict[str, EventType] = {}
        self.event_codes: dict[str, EventCode] = {}
        self.action_types: dict[str, ActionType] = {}
        self.action_codes: dict[str, ActionCode] = {}
        self.templates: dict[str, Template] = {}
        self.usage_classes: dict[str, UsageClass] = {}

    def of(self, kind: Kind) -> dict[str, Any]:
        return getattr(self, kind.value)  # type: ignore[no-any-return]

    def referrers(self, kind: Kind, key: str) -> list[str]:
        """Items that refer to the item ``kind``/``key``, as readable names."""
        found = []
        for code in self.event_codes.values():
            refs: list[tuple[Kind, str]] = [(Kind.EVENT_TYPES, code.type)]
            refs += [(Kind.ACTION_CODES, a.action) for a in code.default_actions]
            refs += [(Kind.TEMPLATES, c.template) for c in code.communications]
            refs += [(Kind.EVENT_CODES, link.key) for link in code.linked_events]
            if (kind, key) in refs:
                found.append(f"event code {code.key}")
        for action in self.action_codes.values():
            refs = [(Kind.ACTION_TYPES, action.type)]
            template = action.parameters.get("template")
            if isinstance(template, str):
                refs.append((Kind.TEMPLATES, template))
            if (kind, key) in refs:
                found.append(f"action code {action.code}")
        return found


Locate = Callable[[Kind, str], str]


def check(items: Items, locate: Locate) -> list[Problem]:
    """Every problem of the catalogue as a whole, each at the item's location."""
    problems: list[Problem] = []
    for code in items.event_codes.values():
        problems += _check_event_code(items, code, locate(Kind.EVENT_CODES, code.key))
    for action in items.action_codes.values():
        problems += _check_action_code(
            items, action, locate(Kind.ACTION_CODES, action.code)
        )
    for template in items.templates.values():
        problems += _check_template(template, locate(Kind.TEMPLATES, template.code))
    problems += _check_cycles(items, locate)
    return problems


def _check_event_code(items: Items, code: EventCode, at: str) -> list[Problem]:
    problems = []
    event_type = items.event_types.get(code.type)
    if event_type is None and code.type:
        problems.append(
            Problem(join(at, "type"), f"event type {code.type} is not in the catalogue")
        )
    levels = set(event_type.levels) if event_type else set()
    for index, default in enumerate(code.default_actions):
        path = join(join(at, "default_actions"), index)
        action = items.action_codes.get(default.action)
        if not default.action:  # unreadable: already reported where it was read
            continue
        if action is None:
            problems.append(
                Problem(
                    join(path, "action"),
                    f"action code {default.action} is not in the catalogue",
                )
            )
        elif levels - set(action.levels):
            # The event's actions run wherever it is raised: every level counts.
            problems.append(
                Problem(
                    join(path, "action"),
                    (
                        f"action code {action.code} is allowed at "
                        f"{', '.join(action.levels)} only, but {code.type} events are "
                        f"raised at {', '.join(sorted(levels))}"
                    ),
                )
            )
    for index, communication in enumerate(code.communications):
        path = join(join(at, "communications"), index)
        template = items.templates.get(communication.template)
        if not communication.template:
            continue
        if template is None:
            problems.append(
                Problem(
                    join(path, "template"),
                    f"template {communication.template} is not in the catalogue",
                )
            )
        elif template.channel != communication.channel:
            problems.append(
                Problem(
                    join(path, "template"),
                    (
                        f"template {template.code} is for {template.channel}, not "
                        f"{communication.channel}"
                    ),
                )
            )
    for index, ref in enumerate(code.cancels):
        if ref.type and ref.code and ref.key not in items.event_codes:
            problems.append(
                Problem(
                    join(join(at, "cancels"), index),
                    f"event code {ref.key} is not in the catalogue",
                )
            )
    for index, link in enumerate(code.linked_events):
        path = join(join(at, "linked_events"), index)
        linked = items.event_codes.get(link.key)
        if not (link.type and link.code):
            continue
        if linked is None:
            problems.append(
                Problem(path, f"event code {link.key} is not in the catalogue")
            )
            continue
        linked_type = items.event_types.get(linked.type)
        missing = levels - set(linked_type.levels if linked_type else ())
        if linked_type is not None and missing:
            problems.append(
                Problem(
                    path,
                    (
                        f"event code {link.key} cannot be raised at "
                        f"{', '.join(sorted(missing))}, where {code.key} is raised"
                    ),
                )
            )
    return problems


def _check_action_code(items: Items, action: ActionCode, at: str) -> list[Problem]:
    action_type = items.action_types.get(action.type)
    if action_type is None:
        if not action.type:
            return []
        return [
            Problem(
                join(at, "type"), f"action type {action.type} is not in the catalogue"
            )
        ]
    problems = []
    where = join(at, "parameters")
    if action_type.handler not in _PARAMETERS:  # reported where it was read
        return []
    required, optional = _PARAMETERS[action_type.handler]
    for name in required:
        if name not in action.parameters:
            problems.append(
                Problem(
                    join(where, name),
                    (
                        f"is required by the {action_type.handler} handler "
                        f"of action type {action_type.code}"
                    ),
                )
            )
    if optional is not None:
        allowed = set(required) | set(optional)
        for name in action.parameters:
            if name not in allowed:
                expected = ", ".join(sorted(allowed)) or "none"
                problems.append(
                    Problem(
                        join(where, name),
                        (
                            f"unknown parameter for the {action_type.handler} handler; "
                            f"expected: {expected}"
                        ),
                    )
                )
    problems += _check_parameter_values(
        items, action_type.handler, action.parameters, where
    )
    if action.ignore_network_errors and action_type.handler != "network":
        problems.append(
            Problem(
                join(at, "ignore_network_errors"),
                ("only applies to action types with the network handler"),
            )
        )
    return problems


def _check_parameter_values(
    items: Items, handler: str, parameters: Mapping[str, Any], where: str
) -> list[Problem]:
    problems = []

    def bad(name: str, message: str) -> None:
        problems.append(Problem(join(where, name), message))

    bar = parameters.get("bar")
    if handler in ("bar", "unbar") and "bar" in parameters and bar not in BARS:
        bad("bar", f"{bar!r} is not a bar; use one of: {', '.join(BARS)}")
    if handler == "top_up" and "amount" in parameters:
        amount = parameters["amount"]
        try:
            value = Decimal(str(amount)) if isinstance(amount, str | int) else None
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite() or value <= 0:
            bad(
                "amount",
                f"{amount!r} is not a positive amount; write it as a "
                'string such as "10.00"',
            )
    currency = parameters.get("currency")
    if currency is not None and not (
        isinstance(currency, str) and re.fullmatch(r"[A-Z]{3}", currency)
    ):
        bad("currency", f"{currency!r} is not an ISO 4217 code such as GBP")
    operation = parameters.get("operation", "add")
    if handler == "subscription_service" and operation not in ("add", "remove"):
        bad("operation", f"{operation!r} is not one of: add, remove")
    target = parameters.get("account_type")
    if (
        handler == "account_type_movement"
        and "account_type" in parameters
        and not (isinstance(target, str) and ACTION_TYPE_FORMAT.fullmatch(target))
    ):
        bad(
            "account_type",
            f"{target!r} is not an account type (3 to 4 upper-case letters or digits)",
        )
    for name in ("service", "command"):
        if name in parameters and not (
            isinstance(parameters[name], str) and parameters[name]
        ):
            bad(name, "must be a non-empty string")
    if handler == "communication" and "template" in parameters:
        template = items.templates.get(str(parameters["template"]))
        channel = parameters.get("channel")
        if template is None:
            bad(
                "template", f"template {parameters['template']} is not in the catalogue"
            )
        elif channel is not None and channel != template.channel:
            bad(
                "channel",
                f"template {template.code} is for {template.channel}, not {channel}",
            )
    return problems


def _check_template(template: Template, at: str) -> list[Problem]:
    problems = []
    if template.subject is not None and template.channel != "email":
        problems.append(
            Problem(join(at, "subject"), "only e-mail templates have a subject")
        )
    texts = {"body": template.body}
    texts.update(
        {f"translations.{lang}": body for lang, body in template.translations.items()}
    )
    if template.subject:
        texts["subject"] = template.subject
    for name, text in texts.items():
        for placeholder in _PLACEHOLDER.findall(text):
            obj, _, attribute = placeholder.partition(".")
            if attribute not in PLACEHOLDERS.get(obj, ()):
                known = ", ".join(
                    f"{{{o}.{a}}}"
                    for o, attrs in PLACEHOLDERS.items()
                    for a in attrs
                    if o == obj
                ) or ", ".join(f"{{{o}.…}}" for o in PLACEHOLDERS)
                problems.append(
                    Problem(
                        join(at, name),
                        (f"unknown placeholder {{{placeholder}}}; known: {known}"),
                    )
                )
    return problems


def _check_cycles(items: Items, locate: Locate) -> list[Problem]:
    """A linked-event cycle would raise events forever: name it, once."""
    graph = {
        key: [link.key for link in code.linked_events]
        for key, code in items.event_codes.items()
    }
    problems = []
    reported: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1 = on the path, 2 = done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for successor in graph.get(node, ()):
            if successor not in graph:
                continue
            if state.get(successor) == 1:
                cycle = [*path[path.index(successor) :], successor]
                members = frozenset(cycle)
                if members not in reported:
                    reported.add(members)
                    problems.append(
                        Problem(
                            join(locate(Kind.EVENT_CODES, successor), "linked_events"),
                            "linked events form a cycle: " + " → ".join(cycle),
                        )
                    )
            elif successor not in state:
                visit(successor)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return problems


__all__ = ["BARS", "EVENT_CODE_FORMAT", "PLACEHOLDERS", "Items", "check"]
