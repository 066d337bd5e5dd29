"""Helpers for stored event classes declared at module level."""

from __future__ import annotations

from typing import Any, TypeVar

from eventsourcing.utils import register_topic

T = TypeVar("T", bound=type[Any])


def stored(cls: T) -> T:
    """Register a module-level event class under its own stable ``TOPIC``.

    Nested event classes are registered by the aggregate's metaclass; classes
    shared by several aggregates live at module level and come through here, so
    that their stored history resolves even after this module moves.
    """
    topic = cls.__dict__.get("TOPIC")
    if not isinstance(topic, str) or not isinstance(
        cls.__dict__.get("class_version"), int
    ):
        raise TypeError(
            f"{cls.__qualname__} must define its own TOPIC and class_version"
        )
    register_topic(topic, cls)
    return cls
