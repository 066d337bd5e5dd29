"""An MSISDN belongs to one live subscription at a time."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.numbers import MsisdnInUse, NumberAllocation, allocation_id

MSISDN = "447700900123"


def test_allocating_a_number_gives_it_to_the_subscription() -> None:
    subscription_id = uuid4()

    allocation = NumberAllocation(msisdn=MSISDN, subscription_id=subscription_id)

    assert allocation.id == allocation_id(MSISDN)
    assert (allocation.msisdn, allocation.subscription_id) == (MSISDN, subscription_id)


def test_allocating_a_number_in_use_is_refused_naming_its_holder() -> None:
    holder = uuid4()
    allocation = NumberAllocation(msisdn=MSISDN, subscription_id=holder)
    allocation.collect_events()

    with pytest.raises(MsisdnInUse) as refused:
        allocation.allocate(uuid4())

    assert str(refused.value) == f"MSISDN {MSISDN} belongs to subscription {holder}"
    assert allocation.subscription_id == holder
    assert allocation.collect_events() == []


def test_a_released_number_can_be_allocated_again() -> None:
    first, second = uuid4(), uuid4()
    allocation = NumberAllocation(msisdn=MSISDN, subscription_id=first)
    allocation.collect_events()

    allocation.release(first)
    allocation.allocate(second)

    assert allocation.subscription_id == second
    released, reallocated = allocation.collect_events()
    assert (type(released).__name__, released.subscription_id) == ("Released", first)
    assert (type(reallocated).__name__, reallocated.subscription_id) == (
        "Reallocated",
        second,
    )


def test_a_release_by_another_subscription_leaves_the_number_with_its_holder() -> None:
    holder = uuid4()
    allocation = NumberAllocation(msisdn=MSISDN, subscription_id=holder)
    allocation.collect_events()

    allocation.release(uuid4())

    assert allocation.subscription_id == holder
    assert allocation.collect_events() == []


def test_the_allocation_id_is_derived_from_the_msisdn_alone() -> None:
    assert allocation_id(MSISDN) == allocation_id(MSISDN)
    assert allocation_id(MSISDN) != allocation_id("447700900124")
    assert allocation_id(MSISDN).version == 5
    assert (
        NumberAllocation(msisdn=MSISDN, subscription_id=uuid4()).id
        == NumberAllocation(msisdn=MSISDN, subscription_id=uuid4()).id
    )
