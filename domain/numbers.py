"""The number allocation: an MSISDN belongs to one live subscription at a time."""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

_NAMESPACE = uuid5(NAMESPACE_URL, "monetise:msisdn")


class MsisdnInUse(Exception):
    """The MSISDN is held by a subscription that is not disconnected (409)."""


class NumberAllocation(Aggregate):
    """One per MSISDN ever used; its id is derived from the MSISDN, so two
    concurrent allocations of one number collide in the event store."""

    TOPIC = "monetise.numbers:NumberAllocation"
    class_version = 1

    class Created(Aggregate.Created):
        """The number was first allocated."""

        TOPIC = "monetise.numbers:NumberAllocation.Created"
        class_version = 1
        msisdn: str
        subscription_id: UUID

    class Reallocated(Aggregate.Event):
        TOPIC = "monetise.numbers:NumberAllocation.Reallocated"
        class_version = 1
        subscription_id: UUID

    class Released(Aggregate.Event):
        TOPIC = "monetise.numbers:NumberAllocation.Released"
        class_version = 1
        subscription_id: UUID

    @staticmethod
    def create_id(msisdn: str, **_: Any) -> UUID:
        return allocation_id(msisdn)

    @event(Created)
    def __init__(self, msisdn: str, subscription_id: UUID) -> None:
        self.msisdn = msisdn
        self.subscription_id: UUID | None = subscription_id

    def allocate(self, subscription_id: UUID) -> None:
        if self.subscription_id is not None:
            raise MsisdnInUse(
                f"MSISDN {self.msisdn} belongs to subscription {self.subscription_id}"
            )
        self._reallocate(subscription_id)

    @event(Reallocated)
    def _reallocate(self, subscription_id: UUID) -> None:
        self.subscription_id = subscription_id

    def release(self, subscription_id: UUID) -> None:
        if self.subscription_id == subscription_id:
            self._release(subscription_id)

    @event(Released)
    def _release(self, subscription_id: UUID) -> None:
        self.subscription_id = None


def allocation_id(msisdn: str) -> UUID:
    return uuid5(_NAMESPACE, msisdn)
