"""Customer care decodes each stored event once per process, and never hands
out an event that is not the one stored (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from application.catalogue import CatalogueService
from application.customer_care import CustomerCare
from application.live import events_after, load_many
from application.persistence import database
from application.settings import Settings
from domain.customer import Customer


def open_care(settings: Settings) -> CustomerCare:
    env = database(settings).eventsourcing_env("customer_care")
    catalogue = CatalogueService(env=database(settings).eventsourcing_env("catalogue"))
    return CustomerCare(env, catalogue=catalogue)


@pytest.fixture
def cares(settings: Settings) -> Iterator[list[CustomerCare]]:
    """Two processes' customer care over one database."""
    opened = [open_care(settings), open_care(settings)]
    yield opened
    for care in opened:
        care.catalogue.close()
        care.close()


def customer() -> Customer:
    return Customer(
        name="Ada Lovelace",
        email="ada@example.com",
        phone="",
        language="en",
        address="",
        registered_by="agent-1",
    )


def counting_decodes(care: CustomerCare) -> list[int]:
    transcoder: Any = care.mapper.transcoder
    decode = transcoder.decode
    calls = [0]

    def counted(data: bytes) -> Any:
        calls[0] += 1
        return decode(data)

    transcoder.decode = counted
    return calls


def test_an_event_saved_is_read_back_as_the_event_that_was_saved(
    cares: list[CustomerCare],
) -> None:
    care = cares[0]
    ada = customer()
    [created] = ada.pending_events
    decodes = counting_decodes(care)

    care.save(ada)

    assert list(care.events.get(ada.id)) == [created]
    assert next(iter(care.events.get(ada.id))) is created
    assert decodes == [0]


def test_a_stored_event_is_decoded_once_however_often_it_is_read(
    cares: list[CustomerCare],
) -> None:
    writer, reader = cares
    ada = customer()
    ada.change_contact_details({"email": "ada@example.org"}, "agent-1")
    writer.save(ada)
    decodes = counting_decodes(reader)

    first = list(reader.events.get(ada.id))
    again = list(reader.events.get(ada.id))

    assert decodes == [2]
    assert [a is b for a, b in zip(first, again, strict=True)] == [True, True]
    assert reader.repository.get(ada.id).email == "ada@example.org"


def test_a_snapshot_is_not_taken_for_the_event_at_its_version(
    cares: list[CustomerCare],
) -> None:
    care = cares[0]
    ada = customer()
    care.save(ada)
    assert care.snapshots is not None

    care.take_snapshot(ada.id)
    [snapshot] = care.snapshots.get(ada.id)

    assert type(snapshot).__name__ == "Snapshot"
    assert snapshot.originator_version == 1
    assert care.repository.get(ada.id).name == "Ada Lovelace"


def test_an_event_whose_save_failed_is_not_read_back(
    cares: list[CustomerCare],
) -> None:
    # Given two processes holding the same customer
    first, second = cares
    ada = customer()
    first.save(ada)
    theirs, ours = first.repository.get(ada.id), second.repository.get(ada.id)

    # When the first records a change and the second a different one
    theirs.change_contact_details({"email": "first@example.org"}, "agent-1")
    first.save(theirs)
    ours.change_contact_details({"email": "second@example.org"}, "agent-2")
    with pytest.raises(IntegrityError):
        second.save(ours)

    # Then the second reads the change that was stored, not its own
    stored = list(second.events.get(ada.id))
    assert stored[-1].changes == {"email": "first@example.org"}
    assert second.repository.get(ada.id).email == "first@example.org"


def test_many_aggregates_read_again_take_only_the_events_not_remembered(
    cares: list[CustomerCare],
) -> None:
    # Given customers this process saved, one of them since changed elsewhere
    writer, reader = cares
    customers = [customer() for _ in range(4)]
    for each in customers:
        each.change_contact_details({"phone": "447700900001"}, "agent-1")
    reader.save(*customers)
    changed = writer.repository.get(customers[0].id)
    changed.change_contact_details({"email": "ada@example.org"}, "agent-2")
    writer.save(changed)
    decodes = counting_decodes(reader)

    # When this process reads them all again from the store
    read = load_many(reader, [each.id for each in customers])

    # Then only the change made elsewhere was decoded, and each reads as stored
    assert decodes == [1]
    assert read[changed.id].email == "ada@example.org"
    assert read[changed.id].version == 3
    assert [read[each.id].phone for each in customers] == ["447700900001"] * 4
    assert [read[each.id].version for each in customers[1:]] == [2, 2, 2]


def test_aggregates_new_to_a_process_are_read_whole(
    cares: list[CustomerCare],
) -> None:
    writer, reader = cares
    customers = [customer() for _ in range(3)]
    writer.save(*customers)
    decodes = counting_decodes(reader)

    read = load_many(reader, [each.id for each in customers])
    again = events_after(reader, {each.id: 0 for each in customers})

    assert decodes == [3]  # each decoded once, the second read remembered
    assert sorted(c.name for c in read.values()) == ["Ada Lovelace"] * 3
    assert {i: [e.originator_version for e in es] for i, es in again.items()} == {
        each.id: [1] for each in customers
    }
