"""Stored catalogue events keep their topics and versions across code moves."""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import CanMutateAggregate
from eventsourcing.utils import get_topic, resolve_topic

from domain.catalogue.aggregate import Catalogue
from domain.catalogue.items import Kind
from tests.unit.catalogue_documents import ACTOR, apply, small_document


def declared_by(cls: type, name: str) -> type:
    """The class in ``cls``'s MRO whose own ``__dict__`` sets ``name``.

    The eventsourcing metaclass redefines every nested event class as a
    subclass of the one written in the aggregate (same name and qualname), so
    the class written in the source is the nearest one of that qualname.
    """
    return next(klass for klass in cls.__mro__ if name in vars(klass))


def event_classes() -> list[type]:
    """The event classes of Catalogue whose instances are stored."""
    return [
        value
        for name, value in vars(Catalogue).items()
        if isinstance(value, type)
        and issubclass(value, CanMutateAggregate)
        and name != "Event"  # the base class: never stored itself
    ]


def every_kind_of_event() -> list[Any]:
    """One catalogue's history using every command, as its stored events."""
    catalogue = Catalogue(actor=ACTOR)
    apply(catalogue, small_document())
    change = small_document()
    change["templates"][0]["body"] = "Pay {account.number} today."
    apply(catalogue, change)
    catalogue.deactivate(Kind.TEMPLATES, "MOVEDMAIL", ACTOR)
    catalogue.reactivate(Kind.TEMPLATES, "MOVEDMAIL", ACTOR)
    catalogue.remove(Kind.TEMPLATES, "MOVEDMAIL", ACTOR)
    return list(catalogue.collect_events())


def test_the_event_classes_found_are_those_a_catalogue_records() -> None:
    recorded = {type(event) for event in every_kind_of_event()}

    assert recorded == set(event_classes())
    assert len(recorded) == 6


def test_the_catalogue_declares_its_own_topic_and_version() -> None:
    assert vars(Catalogue)["TOPIC"] == "monetise.catalogue:Catalogue"
    assert type(vars(Catalogue)["class_version"]) is int


def test_every_stored_event_class_declares_its_own_topic() -> None:
    for cls in event_classes():
        owner = declared_by(cls, "TOPIC")

        assert owner.__qualname__ == cls.__qualname__, cls
        assert owner.__module__ == cls.__module__, cls
        assert vars(owner)["TOPIC"] == f"monetise.catalogue:{cls.__qualname__}"


def test_every_stored_event_class_declares_its_own_integer_class_version() -> None:
    for cls in event_classes():
        owner = declared_by(cls, "class_version")

        assert owner.__qualname__ == cls.__qualname__, cls
        assert type(vars(owner)["class_version"]) is int, cls


def test_the_topics_of_the_stored_event_classes_are_unique() -> None:
    topics = [cls.TOPIC for cls in event_classes()]  # type: ignore[attr-defined]

    assert len(set(topics)) == len(topics)


def test_stored_events_are_recorded_under_their_explicit_topics() -> None:
    for event in every_kind_of_event():
        cls = type(event)

        assert get_topic(cls) == cls.TOPIC
        assert resolve_topic(cls.TOPIC) is cls
