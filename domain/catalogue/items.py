"""The kinds of catalogue item, read from documents into canonical values."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from domain.catalogue.fields import Problem, Reader, join
from domain.durations import parse_duration

LEVELS = ("account", "subscription")
HANDLERS = (
    "network",
    "subscription_service",
    "account_type_movement",
    "bar",
    "unbar",
    "connect",
    "disconnect",
    "top_up",
    "communication",
    "external",
)
CHANNELS = ("email", "sms", "letter", "push")
TRIGGERS = ("raise", "resolve")
SCHEDULE_MODES = ("immediate", "after", "at")

EVENT_CODE_FORMAT = re.compile(r"[A-Z0-9]{3,4}")
ACTION_TYPE_FORMAT = re.compile(r"[A-Z0-9]{3,4}")
ACTION_CODE_FORMAT = re.compile(r"[A-Z0-9]{1,6}")
TEMPLATE_CODE_FORMAT = re.compile(r"[A-Z0-9_]{1,16}")
USAGE_CLASS_FORMAT = re.compile(r"[A-Z0-9_]{1,32}")
USAGE_UNITS = ("seconds", "bytes", "units")
LANGUAGE_FORMAT = re.compile(r"[a-z]{2}(-[A-Z]{2})?")

CODE_RULE_3_4 = "3 to 4 upper-case letters or digits"
CODE_RULE_1_6 = "1 to 6 upper-case letters or digits"
TEMPLATE_RULE = "1 to 16 upper-case letters, digits or underscores"


class Kind(StrEnum):
    """The kinds of catalogue item, named as in the catalogue document."""

    EVENT_TYPES = "event_types"
    EVENT_CODES = "event_codes"
    ACTION_TYPES = "action_types"
    ACTION_CODES = "action_codes"
    TEMPLATES = "templates"
    USAGE_CLASSES = "usage_classes"

    @property
    def singular(self) -> str:
        return self.value[:-1].replace("_", " ")


@dataclass(frozen=True)
class EventType:
    code: str
    description: str
    levels: tuple[str, ...]

    @property
    def key(self) -> str:
        return self.code


@dataclass(frozen=True)
class DefaultAction:
    action: str
    sequence: int
    when: str


@dataclass(frozen=True)
class Communication:
    channel: str
    template: str
    when: str


@dataclass(frozen=True)
class LinkedEvent:
    type: str
    code: str
    sequence: int

    @property
    def key(self) -> str:
        return f"{self.type} {self.code}"


@dataclass(frozen=True)
class EventRef:
    """An event code referred to by its type and code."""

    type: str
    code: str

    @property
    def key(self) -> str:
        return f"{self.type} {self.code}"


@dataclass(frozen=True)
class EventCode:
    type: str
    code: str
    description: str
    auto_resolve: bool = False
    default_actions: tuple[DefaultAction, ...] = ()
    communications: tuple[Communication, ...] = ()
    linked_events: tuple[LinkedEvent, ...] = ()
    # Open events of these codes on the same account or subscription are
    # cancelled when this one is raised (a payment clears credit control).
    cancels: tuple[EventRef, ...] = ()

    @property
    def key(self) -> str:
        """Event codes are shown and referred to as ``TYPE CODE``."""
        return f"{self.type} {self.code}"


@dataclass(frozen=True)
class ActionType:
    code: str
    description: str
    handler: str

    @property
    def key(self) -> str:
        return self.code


@dataclass(frozen=True)
class Schedule:
    mode: str = "immediate"
    offset: str | None = None
    time: str | None = None


@dataclass(frozen=True)
class ActionCode:
    code: str
    type: str
    description: str
    parameters: dict[str, Any] = field(default_factory=dict)
    schedule: Schedule = Schedule()
    manual: bool = False
    levels: tuple[str, ...] = LEVELS
    max_attempts: int = 3
    ignore_network_errors: bool = False

    @property
    def key(self) -> str:
        return self.code


@dataclass(frozen=True)
class Template:
    code: str
    channel: str
    body: str
    language: str = "en"
    subject: str | None = None
    description: str = ""
    translations: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.code


@dataclass(frozen=True)
class UsageClass:
    """A usage class code that usage records may carry (``VOICE_NAT``), with the
    unit its quantity is counted in; usage of an unknown or inactive class is a
    configuration error of the batch that brought it."""

    code: str
    description: str
    unit: str  # seconds (voice), bytes (data) or units (SMS, events)

    @property
    def key(self) -> str:
        return self.code


Item = EventType | EventCode | ActionType | ActionCode | Template | UsageClass


def definition_of(item: Item) -> dict[str, Any]:
    """The canonical, JSON-ready definition of an item as stored in events."""
    raw = asdict(item)
    return _listify(raw)  # type: ignore[no-any-return]


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _listify(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_listify(v) for v in value]
    return value


def parse_item(kind: Kind, raw: object, path: str, problems: list[Problem]) -> Item:
    """Read one item of ``kind``; problems are appended, never raised."""
    parser = _PARSERS[kind]
    return parser(raw, path, problems)


def _levels(reader: Reader, default: tuple[str, ...] | None) -> tuple[str, ...]:
    raw = reader.raw.get("levels")
    entries = reader.items("levels", required=default is None)
    if not entries:
        if isinstance(raw, list):  # present but empty; other shapes are reported
            reader.fail(join(reader.path, "levels"), "must name at least one level")
        return default or ()
    levels = []
    for path, value in entries:
        if value not in LEVELS:
            reader.fail(
                path, f"{value!r} is not a level; use one of: account, subscription"
            )
        elif value in levels:
            reader.fail(path, f"level {value!r} is listed twice")
        else:
            levels.append(value)
    return tuple(levels)


def _parse_event_type(raw: object, path: str, problems: list[Problem]) -> EventType:
    r = Reader(raw, path, problems)
    r.reject_unknown(["code", "description", "levels", "active"])
    return EventType(
        code=r.text("code", pattern=EVENT_CODE_FORMAT, rule=CODE_RULE_3_4),
        description=r.text("description", default=""),
        levels=_levels(r, None),
    )


def _sequence_checked(
    reader: Reader, seen: dict[tuple[str, int], str], path: str, group: str, seq: int
) -> None:
    previous = seen.get((group, seq))
    if previous is not None:
        reader.fail(
            join(path, "sequence"), f"sequence {seq} is also used by {previous}"
        )
    seen[(group, seq)] = path


def _parse_event_code(raw: object, path: str, problems: list[Problem]) -> EventCode:
    r = Reader(raw, path, problems)
    r.reject_unknown(
        [
            "type",
            "code",
            "description",
            "auto_resolve",
            "default_actions",
            "communications",
            "linked_events",
            "cancels",
            "active",
        ]
    )
    seen: dict[tuple[str, int], str] = {}
    actions = []
    for item_path, element in r.items("default_actions"):
        a = Reader(element, item_path, problems)
        a.reject_unknown(["action", "sequence", "when"])
        action = DefaultAction(
            action=a.text("action", pattern=ACTION_CODE_FORMAT, rule=CODE_RULE_1_6),
            sequence=a.integer("sequence", None, 0, 1_000_000),
            when=a.text("when", default="raise", choices=TRIGGERS),
        )
        if a.ok:
            _sequence_checked(a, seen, item_path, "action", action.sequence)
        actions.append(action)
    communications = []
    for item_path, element in r.items("communications"):
        c = Reader(element, item_path, problems)
        c.reject_unknown(["channel", "template", "when"])
        communications.append(
            Communication(
                channel=c.text("channel", choices=CHANNELS),
                template=c.text(
                    "template", pattern=TEMPLATE_CODE_FORMAT, rule=TEMPLATE_RULE
                ),
                when=c.text("when", default="raise", choices=TRIGGERS),
            )
        )
    linked = []
    for item_path, element in r.items("linked_events"):
        link = Reader(element, item_path, problems)
        link.reject_unknown(["type", "code", "sequence"])
        linked_event = LinkedEvent(
            type=link.text("type", pattern=EVENT_CODE_FORMAT, rule=CODE_RULE_3_4),
            code=link.text("code", pattern=EVENT_CODE_FORMAT, rule=CODE_RULE_3_4),
            sequence=link.integer("sequence", None, 0, 1_000_000),
        )
        if link.ok:
            _sequence_checked(link, seen, item_path, "linked", linked_event.sequence)
        linked.append(linked_event)
    cancels = []
    for item_path, element in r.items("cancels"):
        ref = Reader(element, item_path, problems)
        ref.reject_unknown(["type", "code"])
        cancels.append(
            EventRef(
                type=ref.text("type", pattern=EVENT_CODE_FORMAT, rule=CODE_RULE_3_4),
                code=ref.text("code", pattern=EVENT_CODE_FORMAT, rule=CODE_RULE_3_4),
            )
        )
    return EventCode(
        type=r.text("type", pattern=EVENT_CODE_FORMAT, rule=CODE_RULE_3_4),
        code=r.text("code", pattern=EVENT_CODE_FORMAT, rule=CODE_RULE_3_4),
        description=r.text("description", default=""),
        auto_resolve=r.flag("auto_resolve", False),
        default_actions=tuple(sorted(actions, key=lambda a: a.sequence)),
        communications=tuple(communications),
        linked_events=tuple(sorted(linked, key=lambda e: e.sequence)),
        cancels=tuple(cancels),
    )


def _parse_action_type(raw: object, path: str, problems: list[Problem]) -> ActionType:
    r = Reader(raw, path, problems)
    r.reject_unknown(["code", "description", "handler", "active"])
    return ActionType(
        code=r.text("code", pattern=ACTION_TYPE_FORMAT, rule=CODE_RULE_3_4),
        description=r.text("description", default=""),
        handler=r.text("handler", choices=HANDLERS),
    )


def _parse_schedule(r: Reader) -> Schedule:
    path, raw = r.mapping("schedule")
    if not raw:
        return Schedule()
    s = Reader(raw, path, r.problems)
    s.reject_unknown(["mode", "offset", "time"])
    mode = s.text("mode", default="immediate", choices=SCHEDULE_MODES)
    # A field of another mode would be silently ignored: refuse it instead.
    for extra, owner in (("offset", "after"), ("time", "at")):
        if extra in raw and mode != owner:
            s.fail(join(path, extra), f"only allowed with mode {owner}")
    if mode == "after":
        offset = s.text("offset")
        if offset:
            try:
                parse_duration(offset)
            except ValueError as error:
                s.fail(join(path, "offset"), str(error))
        return Schedule(mode=mode, offset=offset)
    if mode == "at":
        raw_time = s.raw.get("time")
        if isinstance(raw_time, datetime):  # YAML reads timestamps itself
            raw_time = raw_time.isoformat()
        time = raw_time if isinstance(raw_time, str) else s.text("time")
        if isinstance(raw_time, str):
            try:
                moment = datetime.fromisoformat(raw_time)
            except ValueError:
                s.fail(join(path, "time"), f"{raw_time!r} is not an ISO 8601 time")
            else:
                if moment.tzinfo is None:
                    s.fail(join(path, "time"), "must carry a time zone, e.g. Z")
        return Schedule(mode=mode, time=time)
    return Schedule(mode=mode)


def _parse_action_code(raw: object, path: str, problems: list[Problem]) -> ActionCode:
    r = Reader(raw, path, problems)
    r.reject_unknown(
        [
            "code",
            "type",
            "description",
            "parameters",
            "schedule",
            "manual",
            "levels",
            "max_attempts",
            "ignore_network_errors",
            "active",
        ]
    )
    _, parameters = r.mapping("parameters")
    return ActionCode(
        code=r.text("code", pattern=ACTION_CODE_FORMAT, rule=CODE_RULE_1_6),
        type=r.text("type", pattern=ACTION_TYPE_FORMAT, rule=CODE_RULE_3_4),
        description=r.text("description", default=""),
        parameters={str(k): v for k, v in parameters.items()},
        schedule=_parse_schedule(r),
        manual=r.flag("manual", False),
        levels=_levels(r, LEVELS),
        max_attempts=r.integer("max_attempts", 3, 1, 100),
        ignore_network_errors=r.flag("ignore_network_errors", False),
    )


def _parse_template(raw: object, path: str, problems: list[Problem]) -> Template:
    r = Reader(raw, path, problems)
    r.reject_unknown(
        [
            "code",
            "channel",
            "language",
            "subject",
            "body",
            "description",
            "translations",
            "active",
        ]
    )
    channel = r.text("channel", choices=CHANNELS)
    subject = r.raw.get("subject")
    if subject is not None and not isinstance(subject, str):
        r.fail(join(path, "subject"), "must be a string")
        subject = None
    translations_path, translations = r.mapping("translations")
    for language, body in translations.items():
        if not isinstance(language, str) or not LANGUAGE_FORMAT.fullmatch(language):
            r.fail(join(translations_path, str(language)), "is not a language code")
        if not isinstance(body, str) or not body:
            r.fail(join(translations_path, str(language)), "must be a non-empty text")
    body = r.text("body")
    if not body and "body" in r.raw:
        r.fail(join(path, "body"), "must not be empty")
    return Template(
        code=r.text("code", pattern=TEMPLATE_CODE_FORMAT, rule=TEMPLATE_RULE),
        channel=channel,
        body=body,
        language=r.text(
            "language",
            default="en",
            pattern=LANGUAGE_FORMAT,
            rule="a language code such as en or pt-BR",
        ),
        subject=subject,
        description=r.text("description", default=""),
        translations={str(k): str(v) for k, v in translations.items()},
    )


def _parse_usage_class(raw: object, path: str, problems: list[Problem]) -> UsageClass:
    r = Reader(raw, path, problems)
    r.reject_unknown(["code", "description", "unit", "active"])
    return UsageClass(
        code=r.text(
            "code",
            pattern=USAGE_CLASS_FORMAT,
            rule="1 to 32 upper-case letters, digits or underscores",
        ),
        description=r.text("description", default=""),
        unit=r.text("unit", choices=USAGE_UNITS),
    )


_PARSERS: dict[Kind, Callable[[object, str, list[Problem]], Item]] = {
    Kind.EVENT_TYPES: _parse_event_type,
    Kind.EVENT_CODES: _parse_event_code,
    Kind.ACTION_TYPES: _parse_action_type,
    Kind.ACTION_CODES: _parse_action_code,
    Kind.TEMPLATES: _parse_template,
    Kind.USAGE_CLASSES: _parse_usage_class,
}


def item_from_definition(kind: Kind, definition: dict[str, Any]) -> Item:
    """Rebuild an item from its stored canonical definition."""
    problems: list[Problem] = []
    item = parse_item(kind, definition, kind.value, problems)
    if problems:  # stored definitions were valid when recorded
        raise ValueError(f"stored {kind.singular} is invalid: {problems}")
    return item
